//! Record batch decoding: kafkawire vs the `kafka-protocol` crate vs a bare CRC-32C pass.
//!
//! Cases (one magic-2 batch each, built with kafkawire's `RecordBatchBuilder`):
//! (a) ~1 MiB of records with 10-byte keys and 100-byte values, uncompressed;
//! (b) ~1 MiB of records with 1 KiB values, uncompressed;
//! (c) (a) compressed with LZ4; (d) (a) compressed with zstd.
//!
//! "kafkawire" decodes the batch (CRC check, decompression) and iterates every record, touching
//! offsets and key/value lengths; "kafka-protocol" runs `RecordBatchDecoder::decode` (which also
//! checks the CRC and materialises every record) and touches the same fields; "crc32c" is
//! `crc32c::crc32c` over the batch bytes. Throughput counts the batch's bytes on the wire.
//!
//! After the criterion groups, each case is timed once more with `Instant` and a ratio table is
//! printed. Run: `cargo bench -p kafkawire-benches --bench record_decode`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use kafka_protocol::records::RecordBatchDecoder;
use kafkawire_benches::{Rng, value};
use kafkawire_protocol::records::{Compression, RecordBatchBuilder, RecordSet};

/// One benchmark input.
struct Case {
    name: &'static str,
    bytes: Bytes,
    records: usize,
    uncompressed: usize,
}

fn build(name: &'static str, value_len: usize, codec: Compression) -> Case {
    const TARGET: usize = 1 << 20;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut b = RecordBatchBuilder::new();
    b.compression(codec).producer(1_000, 0, 0);
    let mut i = 0u64;
    while b.estimated_size() < TARGET {
        let key = format!("key-{:06}", i % 1_000_000);
        let v = value(&mut rng, value_len);
        b.push(
            1_700_000_000_000 + i as i64,
            Some(key.as_bytes()),
            Some(&v),
            &[],
        )
        .unwrap();
        i += 1;
    }
    let bytes = b.build().unwrap();
    Case {
        name,
        records: b.len(),
        uncompressed: b.estimated_size(),
        bytes,
    }
}

fn cases() -> Vec<Case> {
    vec![
        build("a_100B_values_none", 100, Compression::None),
        build("b_1KiB_values_none", 1024, Compression::None),
        build("c_100B_values_lz4", 100, Compression::Lz4),
        build("d_100B_values_zstd", 100, Compression::Zstd),
    ]
}

/// kafkawire: decode (CRC, decompress) and walk every record.
fn ours(bytes: &Bytes) -> u64 {
    let mut sum = 0u64;
    for batch in RecordSet::new(bytes.clone()) {
        let batch = batch.expect("kafkawire decodes");
        for r in batch.records() {
            let r = r.expect("kafkawire record");
            sum = sum
                .wrapping_add(r.offset() as u64)
                .wrapping_add(r.key().map_or(0, <[u8]>::len) as u64)
                .wrapping_add(r.value().map_or(0, <[u8]>::len) as u64);
        }
    }
    sum
}

/// kafka-protocol: decode the batch into its record structs and walk them.
fn theirs(bytes: &Bytes) -> u64 {
    let mut buf = bytes.clone();
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes");
    let mut sum = 0u64;
    for r in &set.records {
        sum = sum
            .wrapping_add(r.offset as u64)
            .wrapping_add(r.key.as_ref().map_or(0, Bytes::len) as u64)
            .wrapping_add(r.value.as_ref().map_or(0, Bytes::len) as u64);
    }
    sum
}

/// A bare CRC-32C pass over the batch.
fn crc(bytes: &Bytes) -> u32 {
    crc32c::crc32c(bytes)
}

fn bench(c: &mut Criterion, case: &Case) {
    let mut g = c.benchmark_group(case.name);
    g.throughput(Throughput::Bytes(case.bytes.len() as u64));
    g.bench_function("kafkawire", |b| b.iter(|| ours(black_box(&case.bytes))));
    g.bench_function("kafka-protocol", |b| {
        b.iter(|| theirs(black_box(&case.bytes)))
    });
    g.bench_function("crc32c", |b| b.iter(|| crc(black_box(&case.bytes))));
    g.finish();
}

/// Median over 7 rounds of the mean time of `f`, each round filling about `budget / 7`.
fn time<R>(budget: Duration, mut f: impl FnMut() -> R) -> Duration {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget / 70 {
        black_box(f());
        n += 1;
    }
    let iters = (n * 10).max(3);
    let mut rounds: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            start.elapsed() / iters
        })
        .collect();
    rounds.sort();
    rounds[3]
}

fn mib_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / t.as_secs_f64()
}

fn ratio_table(cases: &[Case]) {
    let mut lines = vec![];
    println!();
    println!(
        "| case | wire bytes | decompressed bytes | records | kafkawire MiB/s | kafka-protocol MiB/s | crc32c MiB/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for case in cases {
        let budget = Duration::from_secs(2);
        let t_ours = time(budget, || ours(&case.bytes));
        let t_theirs = time(budget, || theirs(&case.bytes));
        let t_crc = time(budget, || crc(&case.bytes));
        let n = case.bytes.len();
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            case.name,
            n,
            case.uncompressed,
            case.records,
            mib_s(n, t_ours),
            mib_s(n, t_theirs),
            mib_s(n, t_crc),
        );
        lines.push(format!(
            "{}: ratio kafka-protocol/kafkawire = {:.1}x, ratio kafkawire/crc32c = {:.1}x",
            case.name,
            t_theirs.as_secs_f64() / t_ours.as_secs_f64(),
            t_ours.as_secs_f64() / t_crc.as_secs_f64(),
        ));
    }
    println!();
    for l in lines {
        println!("{l}");
    }
}

fn main() {
    let cases = cases();
    for case in &cases {
        // Both decoders agree before anything is timed.
        assert_eq!(ours(&case.bytes), theirs(&case.bytes), "{}", case.name);
    }
    let args: Vec<String> = std::env::args().collect();
    let mut c = Criterion::default().configure_from_args();
    for case in &cases {
        bench(&mut c, case);
    }
    c.final_summary();
    // `cargo test --benches` runs each benchmark once in test mode; skip the timing table there.
    if !args
        .iter()
        .any(|a| a == "--test" || a == "--list" || a == "--profile-time")
    {
        ratio_table(&cases);
    }
}
