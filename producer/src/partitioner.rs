//! Choosing a record's partition.

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
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
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
