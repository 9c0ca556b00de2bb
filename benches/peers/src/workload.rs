//! The records both clients send, and the check both consumers apply to what they read back.
//!
//! Record `i` (counting from 0) has
//! - key: the 8 bytes of `i` as a big-endian `u64`;
//! - value: `value_size` bytes, the 8 little-endian bytes of [`mix`]`(i)` repeated (the last
//!   copy cut short), so every record's value differs from its neighbours' and can be checked
//!   from its key alone.
//!
//! The generator is cheap (one multiply, three shifts, a memcpy-sized fill) and identical for
//! both clients, so it adds the same small cost to both produce phases.
//!
//! Before its clock starts, each producer also sends one warm-up record (key [`WARMUP_KEY`],
//! empty value, partition 0) and waits for its acknowledgement, so that connections, metadata
//! and the idempotent producer id are in place for both clients (librdkafka otherwise acquires
//! its producer id about 500 ms after start). Consumers read it like any other record; the
//! [`Tally`] counts it apart.

/// The key of the warm-up record (not 8 bytes long, so it cannot be mistaken for a record).
pub const WARMUP_KEY: &[u8] = b"peers-warm-up";

/// A 64-bit xorshift step over `i` scrambled by a multiply (so that consecutive `i` give
/// unrelated values); never 0.
pub fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The key of record `i`.
pub fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Writes the value of record `i` into `out` (its length is the value size).
pub fn fill_value(i: u64, out: &mut [u8]) {
    let pattern = mix(i).to_le_bytes();
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&pattern[..chunk.len()]);
    }
}

/// The wrapping sum of the keys of records `0..n`, i.e. n(n-1)/2 modulo 2^64.
pub fn expected_key_sum(n: u64) -> u64 {
    // n(n-1)/2 without overflow: halve whichever factor is even first.
    let (a, b) = if n.is_multiple_of(2) {
        (n / 2, n.wrapping_sub(1))
    } else {
        (n, n.wrapping_sub(1) / 2)
    };
    a.wrapping_mul(b)
}

/// What a consumer has read so far, and the first thing that was wrong with it.
///
/// Every record is checked cheaply (key length, value length, the value's first 8 bytes
/// against the generator); the totals are compared with the expected ones by [`Tally::verify`].
#[derive(Debug)]
pub struct Tally {
    value_size: usize,
    /// Records counted (warm-up records apart).
    pub count: u64,
    /// Warm-up records seen (one per produce phase).
    pub warmups: u64,
    /// Wrapping sum of the keys, read as big-endian `u64`.
    pub key_sum: u64,
    /// Total bytes of the values.
    pub value_bytes: u64,
    /// The first malformed record, described.
    pub first_problem: Option<String>,
}

impl Tally {
    /// An empty tally for records whose values should be `value_size` bytes long.
    pub fn new(value_size: usize) -> Tally {
        Tally {
            value_size,
            count: 0,
            warmups: 0,
            key_sum: 0,
            value_bytes: 0,
            first_problem: None,
        }
    }

    /// Records seen, warm-up records included.
    pub fn seen(&self) -> u64 {
        self.count + self.warmups
    }

    /// Counts one record read back (`where_` names it for the failure message).
    pub fn add(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, where_: impl Fn() -> String) {
        if key == Some(WARMUP_KEY) {
            self.warmups += 1;
            return;
        }
        self.count += 1;
        let value = value.unwrap_or_default();
        self.value_bytes += value.len() as u64;
        let Some(k) = key.and_then(|k| <[u8; 8]>::try_from(k).ok()) else {
            self.problem(|| format!("{}: the key is not 8 bytes: {key:?}", where_()));
            return;
        };
        let i = u64::from_be_bytes(k);
        self.key_sum = self.key_sum.wrapping_add(i);
        let expected = self.value_size;
        if value.len() != expected {
            self.problem(|| {
                format!(
                    "{}: record {i} has a {}-byte value, expected {}",
                    where_(),
                    value.len(),
                    expected
                )
            });
            return;
        }
        let head = value.len().min(8);
        if value[..head] != mix(i).to_le_bytes()[..head] {
            self.problem(|| format!("{}: record {i} has the wrong value", where_()));
        }
    }

    fn problem(&mut self, describe: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(describe());
        }
    }

    /// Checks the totals for `n` records and one warm-up record: count, key sum and value
    /// bytes, and that no record was malformed. The error lists every mismatch.
    pub fn verify(&self, n: u64) -> Result<(), String> {
        let mut wrong = Vec::new();
        if self.count != n {
            wrong.push(format!("read {} records, expected {n}", self.count));
        }
        if self.warmups != 1 {
            wrong.push(format!("read {} warm-up records, expected 1", self.warmups));
        }
        let sum = expected_key_sum(n);
        if self.key_sum != sum {
            wrong.push(format!("key sum {}, expected {sum}", self.key_sum));
        }
        let bytes = n * self.value_size as u64;
        if self.value_bytes != bytes {
            wrong.push(format!(
                "{} value bytes, expected {bytes}",
                self.value_bytes
            ));
        }
        if let Some(p) = &self.first_problem {
            wrong.push(format!("first bad record: {p}"));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_sum_matches_a_plain_sum() {
        for n in [0u64, 1, 2, 3, 10, 1001, 1_000_000] {
            assert_eq!(expected_key_sum(n), (0..n).sum::<u64>(), "n = {n}");
        }
        // Wraps instead of overflowing.
        let _ = expected_key_sum(u64::MAX);
    }

    #[test]
    fn values_follow_the_key_and_fill_odd_sizes() {
        let mut a = [0u8; 13];
        fill_value(7, &mut a);
        assert_eq!(a[..8], mix(7).to_le_bytes());
        assert_eq!(a[8..], mix(7).to_le_bytes()[..5]);
        let mut b = [0u8; 13];
        fill_value(8, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn a_tally_of_the_generated_records_verifies() {
        let mut t = Tally::new(100);
        t.add(Some(WARMUP_KEY), Some(b""), String::new);
        let mut v = vec![0u8; 100];
        for i in (0..500).rev() {
            fill_value(i, &mut v);
            t.add(Some(&key(i)), Some(&v), String::new);
        }
        assert_eq!(t.verify(500), Ok(()));
        assert_eq!((t.count, t.warmups, t.seen()), (500, 1, 501));
        assert!(
            t.verify(501)
                .unwrap_err()
                .contains("read 500 records, expected 501")
        );
    }

    #[test]
    fn a_tally_names_the_first_bad_record() {
        let mut t = Tally::new(4);
        t.add(Some(&key(0)), Some(&[0, 0, 0, 0]), || "p0@0".into());
        t.add(Some(b"short"), Some(&[1]), || "p0@1".into());
        let e = t.verify(2).unwrap_err();
        assert!(e.contains("p0@0: record 0 has the wrong value"), "{e}");
        assert!(e.contains("read 0 warm-up records, expected 1"), "{e}");
    }
}
