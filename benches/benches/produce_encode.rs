//! The in-memory produce path: records into ~16 KiB record batches, kafkawire vs the
//! `kafka-protocol` crate, per codec (none, lz4, zstd, gzip, snappy).
//!
//! Input: 4,096 records with 10-byte keys and 100-byte values (word-salad JSON-like text, the
//! generator of `record_decode.rs`, so they compress like typical payloads), CreateTime
//! timestamps one millisecond apart, an idempotent producer id, epoch and sequences.
//!
//! - Batch boundaries are fixed when the input is made: a batch is closed when the next record
//!   would take it past 16 KiB (`RecordBatchBuilder::estimated_size_with`, uncompressed sizes,
//!   as a producer's `batch.size`), giving 31 batches of ~132 records.
//! - "kafkawire" encodes each batch as kafkawire's producer does when it sends it: a new
//!   `RecordBatchBuilder` (codec, producer id, epoch, base sequence), `push` of every record from
//!   borrowed key/value slices, then `build` (compression, header, CRC-32C).
//! - "kafka-protocol" runs `RecordBatchEncoder::encode` (magic 2, same codec) over the same
//!   records cut at the same boundaries. Its `Record` structs are built once, outside the
//!   timed loop, so it is not charged for turning a producer's records into its input type:
//!   a conservative comparison for kafka-protocol's side. The ratio table adds a column where
//!   they are built per batch from the records (`Bytes` clones), as a producer would have to.
//!
//! Throughput counts records. Both outputs are decoded with kafkawire's `RecordSet` and checked
//! equal before anything is timed. Note that kafka-protocol compresses LZ4 with liblz4 (C) at
//! level 4 (LZ4HC) and kafkawire with `lz4_flex` (the fast, non-HC compressor); gzip (level 6),
//! zstd (level 3) and snappy use the same libraries and levels in both.
//!
//! After the criterion groups, each case is timed once more with `Instant` (the contenders take
//! turns within each of 9 rounds; medians) and a ratio table is printed.
//! Run: `cargo bench -p kafkawire-benches --bench produce_encode`.

use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression as KpCompression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafkawire_benches::{Rng, value};
use kafkawire_protocol::records::{Compression, RecordBatchBuilder, RecordSet};

/// Records per benchmark iteration.
const RECORDS: usize = 4096;
/// `batch.size`: a batch is closed when the next record would take it past this.
const BATCH_SIZE: usize = 16 * 1024;
const PRODUCER_ID: i64 = 1_000;
const PRODUCER_EPOCH: i16 = 0;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

const CODECS: [(&str, Compression, KpCompression); 5] = [
    ("none", Compression::None, KpCompression::None),
    ("lz4", Compression::Lz4, KpCompression::Lz4),
    ("zstd", Compression::Zstd, KpCompression::Zstd),
    ("gzip", Compression::Gzip, KpCompression::Gzip),
    ("snappy", Compression::Snappy, KpCompression::Snappy),
];

/// The records to produce, in both libraries' input forms.
struct Workload {
    /// (timestamp, key, value): what a producer hands kafkawire's builder.
    records: Vec<(i64, Bytes, Bytes)>,
    /// kafka-protocol's input: one `Record` per record, built ahead of time.
    kp_records: Vec<Record>,
    /// Batch boundaries (as kafkawire's 16 KiB rule cuts them), for kafka-protocol.
    batches: Vec<Range<usize>>,
}

fn workload() -> Workload {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let records: Vec<(i64, Bytes, Bytes)> = (0..RECORDS)
        .map(|i| {
            let key = Bytes::from(format!("key-{:06}", i % 1_000_000));
            assert_eq!(key.len(), 10);
            let v = Bytes::from(value(&mut rng, 100));
            (BASE_TIMESTAMP + i as i64, key, v)
        })
        .collect();

    // Where kafkawire's builder closes batches (independent of the codec: the rule compares
    // uncompressed sizes, as a producer's `batch.size` does).
    let mut batches = vec![];
    let mut b = RecordBatchBuilder::new();
    let mut start = 0;
    for (i, (ts, k, v)) in records.iter().enumerate() {
        if !b.is_empty() && b.estimated_size_with(*ts, Some(k), Some(v), &[]) > BATCH_SIZE {
            batches.push(start..i);
            start = i;
            b.clear();
        }
        b.push(*ts, Some(k), Some(v), &[]).unwrap();
    }
    batches.push(start..records.len());

    let mut kp_records = Vec::with_capacity(records.len());
    for range in &batches {
        for i in range.clone() {
            let (ts, k, v) = &records[i];
            kp_records.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: PRODUCER_ID,
                producer_epoch: PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                // Offsets start at 0 in every batch a producer sends; sequences run on.
                offset: (i - range.start) as i64,
                sequence: i as i32,
                timestamp: *ts,
                key: Some(k.clone()),
                value: Some(v.clone()),
                headers: IndexMap::new(),
            });
        }
    }
    Workload {
        records,
        kp_records,
        batches,
    }
}

/// kafkawire, as the producer's sender encodes a batch: a new `RecordBatchBuilder` per batch
/// (codec, producer id, epoch, base sequence), `push` of every record, `build`.
fn ours(w: &Workload, codec: Compression) -> Vec<Bytes> {
    w.batches
        .iter()
        .map(|range| {
            let mut b = RecordBatchBuilder::new();
            b.compression(codec)
                .producer(PRODUCER_ID, PRODUCER_EPOCH, range.start as i32);
            for (ts, k, v) in &w.records[range.clone()] {
                b.push(*ts, Some(k), Some(v), &[]).expect("kafkawire push");
            }
            b.build().expect("kafkawire encodes")
        })
        .collect()
}

/// kafka-protocol: `RecordBatchEncoder::encode` per batch of prebuilt `Record`s.
fn theirs(w: &Workload, codec: KpCompression) -> Vec<Bytes> {
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    w.batches
        .iter()
        .map(|range| {
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(&mut buf, &w.kp_records[range.clone()], &options)
                .expect("kafka-protocol encodes");
            buf.freeze()
        })
        .collect()
}

/// kafka-protocol as a producer would use it: build each batch's `Record` structs from the
/// records (reference-counted `Bytes`, no copies) and encode them. Only in the ratio table.
fn theirs_with_records(w: &Workload, codec: KpCompression) -> Vec<Bytes> {
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    let mut batch = Vec::new();
    w.batches
        .iter()
        .map(|range| {
            batch.clear();
            batch.extend(
                w.records[range.clone()]
                    .iter()
                    .enumerate()
                    .map(|(j, (ts, k, v))| Record {
                        transactional: false,
                        control: false,
                        delete_horizon: false,
                        partition_leader_epoch: -1,
                        producer_id: PRODUCER_ID,
                        producer_epoch: PRODUCER_EPOCH,
                        timestamp_type: TimestampType::Creation,
                        offset: j as i64,
                        sequence: (range.start + j) as i32,
                        timestamp: *ts,
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                        headers: IndexMap::new(),
                    }),
            );
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(&mut buf, &batch, &options).expect("kafka-protocol encodes");
            buf.freeze()
        })
        .collect()
}

/// Decodes batches with kafkawire: (record count per batch, every (timestamp, key, value),
/// base sequences).
type Decoded = (Vec<usize>, Vec<(i64, Vec<u8>, Vec<u8>)>, Vec<i32>);

fn decode(batches: &[Bytes]) -> Decoded {
    let (mut counts, mut recs, mut seqs) = (vec![], vec![], vec![]);
    for bytes in batches {
        for batch in RecordSet::new(bytes.clone()) {
            let batch = batch.expect("decodes");
            assert_eq!(batch.producer_id(), PRODUCER_ID);
            seqs.push(batch.as_v2().expect("magic 2").base_sequence());
            let mut n = 0;
            for r in batch.records() {
                let r = r.expect("record");
                recs.push((
                    r.timestamp(),
                    r.key().unwrap_or_default().to_vec(),
                    r.value().unwrap_or_default().to_vec(),
                ));
                n += 1;
            }
            counts.push(n);
        }
    }
    (counts, recs, seqs)
}

fn wire_bytes(batches: &[Bytes]) -> usize {
    batches.iter().map(Bytes::len).sum()
}

fn bench(c: &mut Criterion, w: &Workload) {
    for (name, ours_codec, their_codec) in CODECS {
        let mut g = c.benchmark_group(format!("produce_encode_{name}"));
        g.throughput(Throughput::Elements(w.records.len() as u64));
        g.sample_size(20);
        g.bench_function("kafkawire", |b| b.iter(|| ours(black_box(w), ours_codec)));
        g.bench_function("kafka-protocol", |b| {
            b.iter(|| theirs(black_box(w), their_codec))
        });
        g.finish();
    }
}

/// Median over 9 rounds of the mean time of each of `fs`. The functions take turns within
/// every round, so a burst of load from elsewhere on the machine hits all of them alike.
fn time_each(budget: Duration, fs: &mut [&mut dyn FnMut() -> Vec<Bytes>]) -> Vec<Duration> {
    const ROUNDS: usize = 9;
    let iters: Vec<u32> = fs
        .iter_mut()
        .map(|f| {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < budget / (ROUNDS as u32 * 10) {
                black_box(f());
                n += 1;
            }
            (n * 10).max(3)
        })
        .collect();
    let mut rounds = vec![Vec::with_capacity(ROUNDS); fs.len()];
    for _ in 0..ROUNDS {
        for (i, f) in fs.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..iters[i] {
                black_box(f());
            }
            rounds[i].push(start.elapsed() / iters[i]);
        }
    }
    rounds
        .into_iter()
        .map(|mut r| {
            r.sort();
            r[ROUNDS / 2]
        })
        .collect()
}

fn ratio_table(w: &Workload) {
    let records = w.records.len();
    let mut lines = vec![];
    println!();
    println!(
        "| codec | records | batches | kafkawire wire bytes | kafka-protocol wire bytes | kafkawire records/s | kafka-protocol records/s | kafka-protocol incl. Record structs records/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, ours_codec, their_codec) in CODECS {
        let t = time_each(
            Duration::from_secs(2),
            &mut [
                &mut || ours(w, ours_codec),
                &mut || theirs(w, their_codec),
                &mut || theirs_with_records(w, their_codec),
            ],
        );
        let (t_ours, t_theirs, t_theirs_rec) = (t[0], t[1], t[2]);
        println!(
            "| {name} | {records} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            w.batches.len(),
            wire_bytes(&ours(w, ours_codec)),
            wire_bytes(&theirs(w, their_codec)),
            records as f64 / t_ours.as_secs_f64(),
            records as f64 / t_theirs.as_secs_f64(),
            records as f64 / t_theirs_rec.as_secs_f64(),
        );
        lines.push(format!(
            "{name}: ratio kafka-protocol/kafkawire = {:.2}x ({:.0} ns vs {:.0} ns per record); incl. Record structs {:.2}x",
            t_theirs.as_secs_f64() / t_ours.as_secs_f64(),
            t_theirs.as_secs_f64() * 1e9 / records as f64,
            t_ours.as_secs_f64() * 1e9 / records as f64,
            t_theirs_rec.as_secs_f64() / t_ours.as_secs_f64(),
        ));
    }
    println!();
    for l in lines {
        println!("{l}");
    }
}

fn main() {
    let w = workload();
    for (name, ours_codec, their_codec) in CODECS {
        // Both encoders produce the same batches (records, boundaries, sequences) before
        // anything is timed.
        let a = decode(&ours(&w, ours_codec));
        let b = decode(&theirs(&w, their_codec));
        assert_eq!(a, b, "{name}: the encoders disagree");
        assert_eq!(b, decode(&theirs_with_records(&w, their_codec)), "{name}");
        assert_eq!(a.1.len(), w.records.len(), "{name}");
        assert_eq!(a.0.len(), w.batches.len(), "{name}");
    }
    let args: Vec<String> = std::env::args().collect();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &w);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once in test mode; skip the timing table there.
    if !args
        .iter()
        .any(|a| a == "--test" || a == "--list" || a == "--profile-time")
    {
        ratio_table(&w);
    }
}
