//! Runs the golden-vector tests of `protocol/tests` (copied by `build.rs`) with a `golden`
//! helper that also writes each vector as a seed, then writes the generated seeds.
//! A golden test that fails here (the protocol crate changed under it) still contributes the
//! vectors it reached; its failure is the protocol tests' business.

mod capture {
    use kafkawire_protocol::messages::Message;

    /// A corrupt input some test decodes: a round-trip and (for responses) a response seed.
    pub(crate) fn body<M: Message>(version: i16, bytes: &[u8]) {
        kafkawire_fuzz_seeds::message::<M>(version, bytes, false);
    }
}

#[allow(dead_code, unused_imports, clippy::all)]
mod golden {
    include!(concat!(env!("OUT_DIR"), "/golden_helper.rs"));

    /// Records the vector, then checks it as the original helper does.
    pub(crate) fn golden<M: Message>(value: &M, version: i16, expected: &[u8]) {
        kafkawire_fuzz_seeds::message::<M>(version, expected, true);
        golden_checked(value, version, expected);
    }
}

include!(concat!(env!("OUT_DIR"), "/golden_modules.rs"));

#[test]
fn generated_seeds() {
    kafkawire_fuzz_seeds::generated();
}
