//! zstd in pure Rust (`ruzstd`, kafkawire's default) against the C library libzstd (the `zstd`
//! crate, kafkawire's `zstd-c` feature): compressed size and speed on record batch payloads.
//!
//! Payloads: the uncompressed records section (everything after the 61-byte batch header) of
//! - `batch_1MiB`: the ~1 MiB batch of `record_decode.rs` case (a) (10-byte keys, 100-byte
//!   word-salad values, same generator and seed);
//! - `batch_16KiB`: the first ~16 KiB batch of `produce_encode.rs` (a producer's `batch.size`).
//!
//! Codecs, called as kafkawire's `records::compression` calls them:
//! - compression: `ruzstd` at its only level, "Fastest" (kafkawire without `zstd-c`, whatever
//!   level is configured); libzstd at level 1 (the level ruzstd's Fastest is modelled on) and at
//!   level 3 (the default of kafkawire with `zstd-c` and of the Java client), size pledged;
//! - decompression of the libzstd level-3 frame and of the ruzstd frame, by `ruzstd`
//!   (`FrameDecoder`, 128 KiB at a time into a vector) and by libzstd (its streaming decoder
//!   read to the end).
//!
//! Throughput counts uncompressed bytes. After the criterion groups, each case is timed once
//! more with `Instant` (median of 7 rounds) and a table of sizes, ratios and MiB/s is printed.
//! Run: `cargo bench -p kafkawire-benches --bench zstd_codecs`.

use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kafkawire_benches::{Rng, value};
use kafkawire_protocol::records::{Compression, RecordBatchBuilder};

/// Size of the fixed magic-2 batch header.
const HEADER: usize = 61;

/// The records section of an uncompressed batch of 10-byte keys and 100-byte values (same
/// seed as the other benches). `up_to`: records are added while the batch would stay within
/// `target` bytes (the producer's `batch.size` rule of `produce_encode.rs`); otherwise until it
/// reaches `target` (the rule of `record_decode.rs`).
fn records_section(target: usize, up_to: bool) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut b = RecordBatchBuilder::new();
    b.compression(Compression::None).producer(1_000, 0, 0);
    let mut i = 0u64;
    loop {
        let ts = 1_700_000_000_000 + i as i64;
        let key = format!("key-{:06}", i % 1_000_000);
        let v = value(&mut rng, 100);
        let full = if up_to {
            !b.is_empty() && b.estimated_size_with(ts, Some(key.as_bytes()), Some(&v), &[]) > target
        } else {
            b.estimated_size() >= target
        };
        if full {
            break;
        }
        b.push(ts, Some(key.as_bytes()), Some(&v), &[]).unwrap();
        i += 1;
    }
    b.build().unwrap()[HEADER..].to_vec()
}

/// A compressor under test.
#[derive(Clone, Copy)]
enum Encoder {
    /// `ruzstd` at its Fastest level.
    Ruzstd,
    /// libzstd at this level, the input size pledged.
    Libzstd(i32),
}

impl Encoder {
    fn name(self) -> String {
        match self {
            Encoder::Ruzstd => "ruzstd fastest".into(),
            Encoder::Libzstd(l) => format!("libzstd {l}"),
        }
    }

    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Encoder::Ruzstd => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
            Encoder::Libzstd(level) => zstd::bulk::compress(data, level).unwrap(),
        }
    }
}

const ENCODERS: [Encoder; 3] = [Encoder::Ruzstd, Encoder::Libzstd(1), Encoder::Libzstd(3)];

/// `ruzstd`'s decoder as kafkawire drives it: blocks decoded up to 128 KiB at a time and moved
/// into the output vector.
fn ruzstd_decompress(frame: &[u8], size: usize) -> Vec<u8> {
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    let mut out = Vec::with_capacity(size);
    let mut rest = frame;
    let mut d = FrameDecoder::new();
    d.init(&mut rest).unwrap();
    loop {
        d.decode_blocks(&mut rest, BlockDecodingStrategy::UptoBytes(128 << 10))
            .unwrap();
        d.collect_to_writer(&mut out).unwrap();
        if d.is_finished() && d.can_collect() == 0 {
            break;
        }
    }
    out
}

/// libzstd's streaming decoder read to the end, as kafkawire's `zstd-c` path does.
fn libzstd_decompress(frame: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    zstd::stream::read::Decoder::with_buffer(frame)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A payload and its frames.
struct Case {
    name: &'static str,
    data: Vec<u8>,
    /// (encoder, frame) for every encoder of [`ENCODERS`].
    frames: Vec<(Encoder, Vec<u8>)>,
}

fn cases() -> Vec<Case> {
    [
        ("batch_1MiB", 1 << 20, false),
        ("batch_16KiB", 16 << 10, true),
    ]
    .into_iter()
    .map(|(name, target, up_to)| {
        let data = records_section(target, up_to);
        let frames = ENCODERS.iter().map(|&e| (e, e.compress(&data))).collect();
        Case { name, data, frames }
    })
    .collect()
}

/// The frames that are decompressed: libzstd level 3's and ruzstd's.
fn decode_inputs(case: &Case) -> Vec<(String, &[u8])> {
    case.frames
        .iter()
        .filter(|(e, _)| matches!(e, Encoder::Ruzstd | Encoder::Libzstd(3)))
        .map(|(e, f)| (e.name(), &f[..]))
        .collect()
}

fn bench(c: &mut Criterion, case: &Case) {
    let n = case.data.len();
    let mut g = c.benchmark_group(format!("zstd_compress/{}", case.name));
    g.throughput(Throughput::Bytes(n as u64));
    for e in ENCODERS {
        g.bench_function(e.name(), |b| b.iter(|| e.compress(black_box(&case.data))));
    }
    g.finish();
    let mut g = c.benchmark_group(format!("zstd_decompress/{}", case.name));
    g.throughput(Throughput::Bytes(n as u64));
    for (from, frame) in decode_inputs(case) {
        g.bench_function(format!("ruzstd, frame of {from}"), |b| {
            b.iter(|| ruzstd_decompress(black_box(frame), n))
        });
        g.bench_function(format!("libzstd, frame of {from}"), |b| {
            b.iter(|| libzstd_decompress(black_box(frame), n))
        });
    }
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

fn table(cases: &[Case]) {
    let budget = Duration::from_secs(2);
    println!();
    println!(
        "| payload | compressor | compressed bytes | ratio | compress MiB/s | ruzstd decompress MiB/s | libzstd decompress MiB/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for case in cases {
        let n = case.data.len();
        for (e, frame) in &case.frames {
            let t_c = time(budget, || e.compress(&case.data));
            let t_r = time(budget, || ruzstd_decompress(frame, n));
            let t_l = time(budget, || libzstd_decompress(frame, n));
            println!(
                "| {} ({n} B) | {} | {} | {:.2} | {:.0} | {:.0} | {:.0} |",
                case.name,
                e.name(),
                frame.len(),
                n as f64 / frame.len() as f64,
                mib_s(n, t_c),
                mib_s(n, t_r),
                mib_s(n, t_l),
            );
        }
    }
}

fn main() {
    let cases = cases();
    for case in &cases {
        // Every frame decodes to its payload with both decoders before anything is timed.
        for (e, frame) in &case.frames {
            let n = case.data.len();
            assert!(ruzstd_decompress(frame, n) == case.data, "{}", e.name());
            assert!(libzstd_decompress(frame, n) == case.data, "{}", e.name());
        }
    }
    let args: Vec<String> = std::env::args().collect();
    let mut c = Criterion::default().configure_from_args();
    for case in &cases {
        bench(&mut c, case);
    }
    c.final_summary();
    // `cargo test --benches` runs each benchmark once in test mode; skip the table there.
    if !args
        .iter()
        .any(|a| a == "--test" || a == "--list" || a == "--profile-time")
    {
        table(&cases);
    }
}
