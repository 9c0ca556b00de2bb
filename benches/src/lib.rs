//! Benchmarks live in benches/; this library holds what they share: the deterministic record
//! values every benchmark encodes, decodes or compresses.

/// A small deterministic generator (xorshift64*) so every run benchmarks the same bytes.
pub struct Rng(pub u64);

impl Rng {
    /// The next pseudo-random number.
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Text of `len` bytes made of words from a small vocabulary: compresses like typical JSON-ish
/// payloads (roughly 2-4x), not like all-zero or random bytes.
pub fn value(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "\"user\":",
        "\"id\":",
        "\"event\":",
        "click",
        "view",
        "purchase",
        "{",
        "}",
        ",",
        "\"ts\":",
        "1700000",
        "true",
        "false",
        "\"amount\":",
        "42.50",
        "session",
    ];
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        v.extend_from_slice(w.as_bytes());
        if rng.next().is_multiple_of(4) {
            v.extend_from_slice(format!("{}", rng.next() % 100_000).as_bytes());
        }
    }
    v.truncate(len);
    v
}
