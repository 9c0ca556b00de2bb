//! Choosing a record's partition.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Kafka's murmur2 hash of a key, bit for bit as the Java client's default partitioner computes
/// it (seed `0x9747b28c`, m = `0x5bd1e995`, r = 24, tail bytes little-endian), so a key lands
/// on the same partition whichever client wrote it.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for a non-null key among
/// `partitions` partitions: `(murmur2(key) & 0x7fffffff) % partitions`.
///
/// # Panics
/// Never; returns 0 when `partitions` is 0 or negative.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Chooses the partition of records that do not name one.
pub trait Partitioner: Send + Sync {
    /// The partition for a record with `key` (`None`: null key) of `topic`, which has
    /// `partitions` partitions (at least 1).
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32;

    /// Called after a record of `bytes` bytes was appended to `partition` (sticky partitioners
    /// use it to decide when to move on). The default does nothing.
    fn on_append(&self, topic: &str, partition: i32, bytes: usize) {
        let _ = (topic, partition, bytes);
    }

    /// Called once when a producer starts with this partitioner, with its `batch_size` in
    /// bytes (sticky partitioners switch after about a batch, KIP-794). The default does
    /// nothing.
    fn configure(&self, batch_size: usize) {
        let _ = batch_size;
    }
}

/// The Java client's default: murmur2 of the key for keyed records; for null keys, uniform
/// sticky partitioning (KIP-794): all null-key records of a topic go to one partition until
/// about `switch_bytes` have been sent there, then to another one chosen at random, so batches
/// fill up instead of being spread thin.
#[derive(Debug)]
pub struct DefaultPartitioner {
    /// Bytes after which a sticky partition switches; 0 until a producer configures it.
    switch_bytes: AtomicUsize,
    /// Set by [`DefaultPartitioner::new`]: `configure` leaves `switch_bytes` alone.
    fixed: bool,
    sticky: Mutex<HashMap<String, (i32, usize)>>,
}

impl Default for DefaultPartitioner {
    /// Switches after about the producer's `batch_size` (set when the producer starts; 16 KiB
    /// until then).
    fn default() -> Self {
        DefaultPartitioner {
            switch_bytes: AtomicUsize::new(16 * 1024),
            fixed: false,
            sticky: Mutex::new(HashMap::new()),
        }
    }
}

impl DefaultPartitioner {
    /// Sticky partitions switch after about `switch_bytes` bytes, whatever the producer's
    /// `batch_size`.
    pub fn new(switch_bytes: usize) -> Self {
        DefaultPartitioner {
            switch_bytes: AtomicUsize::new(switch_bytes.max(1)),
            fixed: true,
            sticky: Mutex::new(HashMap::new()),
        }
    }
}

fn random_below(n: i32) -> i32 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..n.max(1))
}

impl Partitioner for DefaultPartitioner {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        if let Some(k) = key {
            return partition_for_key(k, partitions);
        }
        let Ok(mut sticky) = self.sticky.lock() else {
            return random_below(partitions);
        };
        // Looked up by `&str` first: the name is copied once per topic, not per record.
        if let Some(entry) = sticky.get_mut(topic) {
            if !(0..partitions).contains(&entry.0) {
                *entry = (random_below(partitions), 0);
            }
            return entry.0;
        }
        let p = random_below(partitions);
        sticky.insert(topic.to_owned(), (p, 0));
        p
    }

    fn configure(&self, batch_size: usize) {
        if !self.fixed {
            self.switch_bytes
                .store(batch_size.max(1), Ordering::Relaxed);
        }
    }

    fn on_append(&self, topic: &str, partition: i32, bytes: usize) {
        let Ok(mut sticky) = self.sticky.lock() else {
            return;
        };
        if let Some(entry) = sticky.get_mut(topic)
            && entry.0 == partition
        {
            entry.1 += bytes;
            if entry.1 >= self.switch_bytes.load(Ordering::Relaxed) {
                // Pick again at the next record; the partition count is known then.
                *entry = (-1, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Java client's own murmur2 test (org.apache.kafka.common.utils.UtilsTest):
    // these are facts about the function's output.
    #[test]
    fn murmur2_matches_java() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, want) in cases {
            assert_eq!(
                murmur2(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn null_keys_stick_then_move_on() {
        let p = DefaultPartitioner::new(100);
        let first = p.partition("t", None, 1000);
        for _ in 0..9 {
            assert_eq!(p.partition("t", None, 1000), first);
            p.on_append("t", first, 10);
        }
        p.on_append("t", first, 10);
        // 100 bytes reached: a new choice (random among 1000, so almost surely another).
        let seen: std::collections::HashSet<i32> = (0..20)
            .map(|_| {
                let q = p.partition("t", None, 1000);
                p.on_append("t", q, 100);
                q
            })
            .collect();
        assert!(seen.len() > 1);
        assert_eq!(
            p.partition("t", Some(b"21"), 7),
            partition_for_key(b"21", 7)
        );
    }

    #[test]
    fn partition_is_non_negative_and_stable() {
        for key in [&b"user-1"[..], b"", b"\xff\xff\xff\xff\xff"] {
            let p = partition_for_key(key, 7);
            assert!((0..7).contains(&p));
            assert_eq!(p, partition_for_key(key, 7));
        }
        assert_eq!(partition_for_key(b"x", 0), 0);
    }
}
