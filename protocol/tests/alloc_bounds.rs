//! Memory bounded by input: every decoder is run on crafted hostile inputs under a counting
//! global allocator, and its peak allocation (above what was allocated before it started) must
//! stay within `4 x input + SLACK`, or, where decompression is involved, within the configured
//! decompression cap or budget.
//!
//! Each test holds one lock for its whole run, so the tests of this binary never measure each
//! other. Run with `--nocapture` to see the numbers.
#![cfg(all(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]

use std::sync::Mutex;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_protocol::frame::{DEFAULT_MAX_FRAME_SIZE, FrameDecoder, decode_response};
use kafkawire_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition,
};
use kafkawire_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkawire_protocol::messages::{ApiKey, ApiVisitor, Message, Request};
use kafkawire_protocol::primitives::default_decode_budget;
use kafkawire_protocol::records::{
    Compression, DecodeOptions, DecompressionBudget, RecordBatchBuilder, RecordSet,
};
use kafkawire_protocol::{DecodeError, DecodeErrorKind, Reader};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Serialises the tests of this binary (each measures the whole process's allocations).
static SERIAL: Mutex<()> = Mutex::new(());

/// The "small constant" of the bound: bookkeeping that does not grow with the input (an array
/// reserves at most 32 KiB before its elements arrive, nested arrays a few of those; the frame
/// decoder reserves 64 KiB steps; codec state).
const SLACK: usize = 256 << 10;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes allocated at the peak of `f`, above what was allocated when it started. What `f`
/// returns is dropped after the measurement (it counts while it is alive).
fn peak_of<R>(f: impl FnOnce() -> R) -> usize {
    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let r = f();
    let peak = ALLOC.peak_usage().saturating_sub(before);
    drop(r);
    peak
}

/// The largest peak over many measurements, each checked against `factor x input + SLACK`.
#[derive(Debug)]
struct Worst {
    factor: usize,
    cases: usize,
    peak: usize,
    input: usize,
    what: String,
}

impl Worst {
    fn new(factor: usize) -> Self {
        Worst {
            factor,
            cases: 0,
            peak: 0,
            input: 0,
            what: String::new(),
        }
    }

    fn record(&mut self, peak: usize, input: usize, what: impl Fn() -> String) {
        self.cases += 1;
        let bound = self.factor * input + SLACK;
        assert!(
            peak <= bound,
            "{}: peak {peak} bytes for {input} bytes of input (bound {bound})",
            what()
        );
        if peak > self.peak {
            self.peak = peak;
            self.input = input;
            self.what = what();
        }
    }
}

/// A response frame (without its size prefix): a valid response header, then `body`.
fn response_frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut f = BytesMut::new();
    f.put_i32(7); // correlation id
    if key.response_header_version(version) >= 1 {
        f.put_u8(0); // no tagged fields
    }
    f.put_slice(body);
    f.freeze()
}

fn decode_frame<M: Message>(frame: Bytes, key: ApiKey, version: i16) -> Result<M, DecodeError> {
    decode_response::<M>(frame, key, version).map(|(_, m)| m)
}

/// Array lengths no input can back: int32 `i32::MAX`, compact `u32::MAX - 1` (varint of
/// `u32::MAX`), and the int16 string length `i16::MAX`.
const HUGE_LENGTHS: [&[u8]; 3] = [
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x7f, 0xff],
];

/// For every response type and version: the default response's encoding cut at every byte,
/// then a huge length, then 0 or 4 KiB of padding, decoded as a whole response frame.
struct HugeCounts<'a>(&'a mut Worst);

impl ApiVisitor for HugeCounts<'_> {
    type Output = ();
    fn visit<R: Request>(self, key: ApiKey) {
        for version in R::Response::MIN_VERSION..=R::Response::MAX_VERSION {
            let body = R::Response::default()
                .encode_bytes(version)
                .unwrap_or_else(|e| panic!("{key} v{version}: {e}"));
            for cut in 0..=body.len() {
                for huge in HUGE_LENGTHS {
                    for pad in [0usize, 4096] {
                        let mut b = body[..cut].to_vec();
                        b.extend_from_slice(huge);
                        b.resize(b.len() + pad, 0);
                        let frame = response_frame(key, version, &b);
                        let n = frame.len();
                        let peak =
                            peak_of(|| decode_frame::<R::Response>(frame.clone(), key, version));
                        self.0.record(peak, n, || {
                            format!("{key} v{version} cut {cut} length {huge:02x?} pad {pad}")
                        });
                    }
                }
            }
        }
    }
}

#[test]
fn huge_array_counts_in_every_response_cost_a_small_constant() {
    let _serial = serial();
    let mut worst = Worst::new(4);
    for key in ApiKey::ALL {
        key.visit(HugeCounts(&mut worst));
    }
    println!("huge counts: {worst:?}");
    assert!(worst.cases > 10_000, "{}", worst.cases);
}

/// For every response type and version: after each cut of the default encoding, a length as
/// large as the padding can back at one byte per element, then 64 KiB of padding (zeros, or
/// 0x01 bytes, which read as empty compact strings and arrays), so that elements really decode:
/// the densest input there is. The worst ratio per API goes to `per_api`.
struct DenseCounts<'a>(&'a mut Worst, u8, &'a mut Vec<(f64, String)>);

impl ApiVisitor for DenseCounts<'_> {
    type Output = ();
    fn visit<R: Request>(self, key: ApiKey) {
        const PAD: usize = 64 << 10;
        let mut api_worst = (0f64, String::new());
        for version in R::Response::MIN_VERSION..=R::Response::MAX_VERSION {
            let body = R::Response::default()
                .encode_bytes(version)
                .unwrap_or_else(|e| panic!("{key} v{version}: {e}"));
            for cut in 0..=body.len() {
                for compact in [false, true] {
                    let mut b = body[..cut].to_vec();
                    if compact {
                        let mut v = PAD as u64 + 1;
                        while v >= 0x80 {
                            b.push(v as u8 | 0x80);
                            v >>= 7;
                        }
                        b.push(v as u8);
                    } else {
                        b.extend_from_slice(&(PAD as i32).to_be_bytes());
                    }
                    b.resize(b.len() + PAD, self.1);
                    let frame = response_frame(key, version, &b);
                    let n = frame.len();
                    let peak = peak_of(|| decode_frame::<R::Response>(frame.clone(), key, version));
                    let fill = self.1;
                    let what =
                        || format!("{key} v{version} cut {cut} compact {compact} fill {fill:#04x}");
                    self.0.record(peak, n, what);
                    let ratio = peak as f64 / n as f64;
                    if ratio > api_worst.0 {
                        api_worst = (ratio, what());
                    }
                }
            }
        }
        self.2.push(api_worst);
    }
}

/// Dense input (elements that really decode, each as small as the format allows) costs what the
/// decoded types cost: a `Vec<String>` of empty compact strings is 24 bytes per input byte (and
/// a vector's last doubling is counted with both its old and new buffer). This is bounded by
/// the decoded representation (every element is read from at least its smallest encoding), not
/// by what a length claims; the bound asserted here is 48x. (Padding makes top-level arrays
/// dense; `dense_structs_cost_what_their_representation_costs` measures nested structs.)
#[test]
fn dense_arrays_in_every_response_cost_what_their_elements_cost() {
    let _serial = serial();
    let mut per_api = Vec::new();
    for fill in [0x00, 0x01] {
        let mut worst = Worst::new(48);
        for key in ApiKey::ALL {
            key.visit(DenseCounts(&mut worst, fill, &mut per_api));
        }
        println!("dense arrays, fill {fill:#04x}: {worst:?}");
    }
    per_api.sort_by(|a, b| b.0.total_cmp(&a.0));
    let within_4x = per_api.iter().filter(|(r, _)| *r <= 4.0).count();
    println!(
        "dense arrays: {within_4x} of {} (API, fill) cases within 4x; worst:",
        per_api.len()
    );
    for (ratio, what) in per_api.iter().take(15) {
        println!("  {ratio:5.1}x {what}");
    }
}

#[test]
fn a_frame_prefix_reserves_nothing_like_the_announced_size() {
    let _serial = serial();
    // 100 MiB announced, 3 bytes of it sent.
    let mut wire = (DEFAULT_MAX_FRAME_SIZE as i32).to_be_bytes().to_vec();
    wire.extend_from_slice(&[1, 2, 3]);
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let peak = peak_of(|| {
        d.extend(&wire);
        assert!(d.next_frame().unwrap().is_none());
    });
    println!("frame prefix: peak {peak} bytes for {} bytes", wire.len());
    assert!(peak <= 4 * wire.len() + SLACK, "{peak}");
    drop(d);

    // The same frame arriving in 64 KiB chunks (16 MiB of it): the buffer follows what has
    // arrived, it never jumps to the announced size.
    let chunk = vec![0u8; 64 << 10];
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut fed = 4;
    let mut worst_capacity = 0f64;
    let peak = peak_of(|| {
        d.extend(&(DEFAULT_MAX_FRAME_SIZE as i32).to_be_bytes());
        for _ in 0..256 {
            d.extend(&chunk);
            fed += chunk.len();
            assert!(d.next_frame().unwrap().is_none());
            assert_eq!(d.buffered(), fed);
            let capacity = d.buffer_mut().capacity();
            assert!(capacity <= 4 * fed + SLACK, "{capacity} for {fed}");
            worst_capacity = worst_capacity.max(capacity as f64 / fed as f64);
        }
    });
    println!(
        "frame in 64 KiB chunks: {fed} bytes fed, peak {peak} bytes, capacity at most {worst_capacity:.2}x what arrived"
    );
    assert!(peak <= 4 * fed + SLACK, "{peak}");
}

/// One magic-2 batch holding one record of `size` zero bytes, compressed with `codec`.
fn zero_batch(codec: Compression, size: usize) -> Bytes {
    let value = vec![0u8; size];
    let mut b = RecordBatchBuilder::new();
    b.compression(codec);
    b.push(0, None, Some(&value), &[]).unwrap();
    b.build().unwrap()
}

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn compression_bombs_stop_at_the_cap() {
    let _serial = serial();
    let cap = 1 << 20;
    let opts = DecodeOptions {
        max_decompressed_size: cap,
        ..DecodeOptions::default()
    };
    for codec in CODECS {
        // 16 MiB of zeros: a few KB on the wire (snappy: ~800 KB).
        let bomb = zero_batch(codec, 16 << 20);
        let started = Instant::now();
        let mut result = None;
        let peak = peak_of(|| {
            result = Some(RecordSet::with_options(bomb.clone(), opts).next());
        });
        let e = result.unwrap().unwrap().unwrap_err();
        println!(
            "{codec} bomb: {} bytes in, peak {peak} bytes, {:?}: {e}",
            bomb.len(),
            started.elapsed()
        );
        assert!(e.to_string().contains("limit"), "{codec}: {e}");
        assert!(peak <= 2 * cap + SLACK, "{codec}: peak {peak}");
    }
}

#[test]
fn a_fetch_of_many_small_bombs_stops_at_its_budget() {
    let _serial = serial();
    // 30 batches of ~1 KB that each inflate to 512 KiB (under the 64 MiB per-batch cap): the
    // consumer keeps every batch; the budget of the fetch answer bounds them all.
    let budget_bytes = 4 << 20;
    for codec in CODECS {
        let one = zero_batch(codec, 512 << 10);
        let answer: Bytes = std::iter::repeat_n(one.clone(), 30)
            .collect::<Vec<_>>()
            .concat()
            .into();
        let budget = DecompressionBudget::new(budget_bytes);
        let mut kept = Vec::new();
        let mut error = None;
        let peak = peak_of(|| {
            for batch in RecordSet::with_budget(answer.clone(), DecodeOptions::default(), &budget) {
                match batch {
                    Ok(b) => kept.push(b),
                    Err(e) => error = Some(e),
                }
            }
        });
        let e = error.expect("budget error");
        println!(
            "{codec}: 30 x {} bytes in, {} batches kept, budget used {}, peak {peak} bytes: {e}",
            one.len(),
            kept.len(),
            budget.used()
        );
        assert!(matches!(
            e.kind,
            DecodeErrorKind::DecompressionBudget { limit: 4194304, .. }
        ));
        // As many batches as fit in the budget (each is its record plus a few header bytes).
        let inflated = kept[0].as_v2().unwrap().records_bytes().len();
        assert_eq!(kept.len(), budget_bytes / inflated, "{codec}");
        assert_eq!(budget.used(), kept.len() * inflated, "{codec}");
        assert!(peak <= 2 * budget_bytes + SLACK, "{codec}: peak {peak}");
    }
}

/// A legacy log entry (offset, size, crc, magic, attributes, [timestamp], key, value).
fn legacy_entry(offset: i64, magic: i8, attrs: i8, value: &[u8]) -> Vec<u8> {
    let mut m = vec![magic as u8, attrs as u8];
    if magic == 1 {
        m.extend_from_slice(&0i64.to_be_bytes());
    }
    m.extend_from_slice(&(-1i32).to_be_bytes());
    m.extend_from_slice(&(value.len() as i32).to_be_bytes());
    m.extend_from_slice(value);
    let mut e = offset.to_be_bytes().to_vec();
    e.extend_from_slice(&(m.len() as i32 + 4).to_be_bytes());
    e.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
    e.extend_from_slice(&m);
    e
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn legacy_wrappers_of_many_tiny_messages_are_bounded_by_the_cap() {
    let _serial = serial();
    // The fuzzer's case, scaled: gzip magic-0 wrappers of N 26-byte inner messages.
    for (n, cap) in [
        (1_000_000usize, 64usize << 20),
        (500_000, 64 << 20),
        (200_000, 4 << 20),
        (100_000, 4 << 20),
        (20_000, 4 << 20),
    ] {
        let mut inner = Vec::with_capacity(n * 26);
        for i in 0..n {
            inner.extend(legacy_entry(i as i64, 0, 0, b""));
        }
        let wrapper = Bytes::from(legacy_entry(n as i64 - 1, 0, 1, &gzip(&inner)));
        drop(inner);
        let opts = DecodeOptions {
            max_decompressed_size: cap,
            ..DecodeOptions::default()
        };
        let started = Instant::now();
        let mut result = None;
        let peak = peak_of(|| {
            let r = RecordSet::with_options(wrapper.clone(), opts).next();
            result = Some(r.unwrap().map(|b| b.record_count()));
        });
        let result = result.unwrap();
        println!(
            "legacy wrapper of {n} messages: {} bytes in, cap {cap}, peak {peak} bytes, {:?}: {result:?}",
            wrapper.len(),
            started.elapsed()
        );
        let need = n * (26 + 88);
        if need > cap {
            // Refused: the decompressed bytes or the messages' bookkeeping pass the cap.
            let e = result.unwrap_err();
            assert!(
                e.to_string().contains("inner messages") || e.to_string().contains("limit"),
                "{e}"
            );
        } else {
            assert_eq!(result.unwrap(), n);
        }
        assert!(peak <= 2 * cap + SLACK, "{n}: peak {peak}");
    }
}

#[test]
fn names_repeated_per_partition_are_read_once() {
    let _serial = serial();
    // One 32,000-byte topic name with 8,192 partitions: 64 KB of input.
    let name = "t".repeat(32_000);
    let assignment = ConsumerProtocolAssignment {
        assigned_partitions: vec![TopicPartition {
            topic: name.clone(),
            partitions: (0..8192).collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let metadata = MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name: Some(name.clone()),
            partitions: (0..2048)
                .map(|i| MetadataResponsePartition {
                    partition_index: i,
                    replica_nodes: vec![1, 2, 3],
                    isr_nodes: vec![1, 2, 3],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    for version in 0..=3 {
        let bytes = assignment.encode_bytes(version).unwrap();
        let peak = peak_of(|| ConsumerProtocolAssignment::decode_bytes(bytes.clone(), version));
        println!(
            "assignment v{version}: {} bytes in, peak {peak} bytes",
            bytes.len()
        );
        assert!(peak <= 4 * bytes.len() + SLACK, "{peak}");
    }
    for version in [1, 9, 12] {
        let bytes = metadata.encode_bytes(version).unwrap();
        let peak = peak_of(|| MetadataResponse::decode_bytes(bytes.clone(), version));
        println!(
            "metadata v{version}: {} bytes in, peak {peak} bytes",
            bytes.len()
        );
        assert!(peak <= 4 * bytes.len() + SLACK, "{peak}");
    }
}

/// xorshift64*, so a failing input reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct RandomInput<'a> {
    worst: &'a mut Worst,
    rng: &'a mut Rng,
}

impl ApiVisitor for RandomInput<'_> {
    type Output = ();
    fn visit<R: Request>(self, key: ApiKey) {
        for version in R::Response::MIN_VERSION..=R::Response::MAX_VERSION {
            for _ in 0..8 {
                let len = self.rng.below(600);
                let mut b: Vec<u8> = (0..len).map(|_| self.rng.next() as u8).collect();
                // Small lengths and counts decode further than uniform noise.
                for x in b.iter_mut() {
                    if self.rng.below(3) == 0 {
                        *x &= 0x03;
                    }
                }
                let frame = response_frame(key, version, &b);
                let n = frame.len();
                let peak = peak_of(|| decode_frame::<R::Response>(frame.clone(), key, version));
                self.worst
                    .record(peak, n, || format!("{key} v{version} random {len} bytes"));
            }
        }
    }
}

#[test]
fn random_responses_stay_within_4x() {
    let _serial = serial();
    let seed = std::env::var("KAFKAWIRE_ALLOC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_a110c);
    println!("seed {seed} (KAFKAWIRE_ALLOC_SEED replays)");
    let mut rng = Rng(seed | 1);
    let mut worst = Worst::new(4);
    for key in ApiKey::ALL {
        key.visit(RandomInput {
            worst: &mut worst,
            rng: &mut rng,
        });
    }
    println!("random responses: {worst:?}");
}

/// Unknown tagged fields are kept (KIP-482: re-encoding writes them back), each as a
/// `RawTaggedField` (40 bytes) for at least 2 bytes of input (tag and size; tags ascending, so
/// 3 bytes from tag 128 on): the densest input in flexible versions. Measured, bounded by the
/// representation like the dense arrays above.
#[test]
fn unknown_tagged_fields_cost_what_their_representation_costs() {
    use kafkawire_protocol::messages::api_versions_response::ApiVersionsResponse;
    let _serial = serial();
    for fields in [100u32, 1_000, 20_000] {
        // ApiVersions v3: error code, empty api keys, throttle, then the tagged section.
        let mut b = vec![0, 0, 1, 0, 0, 0, 0];
        let put = |mut v: u32, b: &mut Vec<u8>| {
            while v >= 0x80 {
                b.push(v as u8 | 0x80);
                v >>= 7;
            }
            b.push(v as u8);
        };
        put(fields, &mut b);
        for tag in 0..fields {
            put(100 + tag, &mut b);
            put(0, &mut b);
        }
        let bytes = Bytes::from(b);
        let peak = peak_of(|| {
            let m = ApiVersionsResponse::decode_bytes(bytes.clone(), 3).unwrap();
            assert_eq!(m.unknown_tagged_fields.len(), fields as usize);
            m
        });
        println!(
            "{fields} unknown tagged fields: {} bytes in, peak {peak} bytes ({:.1}x)",
            bytes.len(),
            peak as f64 / bytes.len() as f64
        );
        assert!(peak <= 48 * bytes.len() + SLACK, "{peak}");
    }
}

/// Structs as small as the format allows, many of them: Metadata partitions with empty replica
/// lists (18 bytes on the wire in v12, ~110 bytes decoded) and brokers with empty hosts. The
/// cost is the decoded representation's, measured and bounded like the dense arrays above.
#[test]
fn dense_structs_cost_what_their_representation_costs() {
    use kafkawire_protocol::messages::metadata_response::MetadataResponseBroker;
    let _serial = serial();
    let partitions = MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name: Some("t".into()),
            partitions: vec![MetadataResponsePartition::default(); 20_000],
            ..Default::default()
        }],
        ..Default::default()
    };
    let brokers = MetadataResponse {
        brokers: vec![MetadataResponseBroker::default(); 20_000],
        ..Default::default()
    };
    for (what, m) in [("partitions", &partitions), ("brokers", &brokers)] {
        for version in [1, 9, 12] {
            let bytes = m.encode_bytes(version).unwrap();
            let peak = peak_of(|| MetadataResponse::decode_bytes(bytes.clone(), version).unwrap());
            println!(
                "metadata v{version}, 20,000 empty {what}: {} bytes in, peak {peak} bytes ({:.1}x)",
                bytes.len(),
                peak as f64 / bytes.len() as f64
            );
            assert!(peak <= 48 * bytes.len() + SLACK, "{peak}");
        }
    }
}

/// Bytes of decoded representation `M` charges to its reader for `bytes` (decoded with an
/// unlimited budget).
fn charged<M: Message>(bytes: &Bytes, version: i16) -> usize {
    let mut r = Reader::with_budget(bytes.clone(), usize::MAX);
    M::decode(&mut r, version).unwrap();
    assert!(r.is_empty());
    usize::MAX - r.budget()
}

/// Large messages shaped like real ones (a Metadata answer for a 100,000-partition cluster
/// with one and with three replicas, 50,000 listed groups, an OffsetFetch of 100,000
/// partitions) charge up to ~6x their size; the default decode budget
/// (`DECODE_BUDGET_FACTOR` = 12 x input + 1 MiB) must leave them at least a 2x margin.
#[test]
fn real_shaped_large_messages_fit_the_default_decode_budget() {
    use kafkawire_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
    use kafkawire_protocol::messages::offset_fetch_response::{
        OffsetFetchResponse, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    let _serial = serial();
    let metadata = |replicas: i32| MetadataResponse {
        topics: (0..1_000)
            .map(|t| MetadataResponseTopic {
                name: Some(format!("orders.events.region-{t:04}")),
                partitions: (0..100)
                    .map(|p| MetadataResponsePartition {
                        partition_index: p,
                        leader_id: p % 5,
                        leader_epoch: 3,
                        replica_nodes: (0..replicas).map(|r| (p + r) % 5).collect(),
                        isr_nodes: (0..replicas).map(|r| (p + r) % 5).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let groups = ListGroupsResponse {
        groups: (0..50_000)
            .map(|g| ListedGroup {
                group_id: format!("service-{g}"),
                protocol_type: "consumer".into(),
                group_state: "Stable".into(),
                group_type: "classic".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let offsets = OffsetFetchResponse {
        topics: (0..1_000)
            .map(|t| OffsetFetchResponseTopic {
                name: format!("orders.events.region-{t:04}"),
                partitions: (0..100)
                    .map(|p| OffsetFetchResponsePartition {
                        partition_index: p,
                        committed_offset: 1_000_000 + p as i64,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut cases: Vec<(String, Bytes, usize)> = Vec::new();
    for version in [1, 9, 12] {
        for replicas in [1, 3] {
            let b = metadata(replicas).encode_bytes(version).unwrap();
            let c = charged::<MetadataResponse>(&b, version);
            cases.push((format!("Metadata v{version}, RF {replicas}"), b, c));
        }
    }
    for version in [0, 3, 5] {
        let b = groups.encode_bytes(version).unwrap();
        let c = charged::<ListGroupsResponse>(&b, version);
        cases.push((format!("ListGroups v{version}"), b, c));
    }
    for version in [1, 6, 7] {
        let b = offsets.encode_bytes(version).unwrap();
        let c = charged::<OffsetFetchResponse>(&b, version);
        cases.push((format!("OffsetFetch v{version}"), b, c));
    }
    let mut worst = 0f64;
    for (what, bytes, charged) in cases {
        let ratio = charged as f64 / bytes.len() as f64;
        println!(
            "{what}: {} bytes in, {charged} bytes charged ({ratio:.2}x)",
            bytes.len()
        );
        worst = worst.max(ratio);
        assert!(
            charged * 2 <= default_decode_budget(bytes.len()),
            "{what}: {ratio:.2}x leaves less than a 2x margin under the default budget"
        );
    }
    println!("worst: {worst:.2}x");
}

/// The densest input at scale (8 MiB of empty compact strings: 24 bytes decoded per byte,
/// 200 MB if decoded, 40x with a vector's doubling) is refused by the decode budget, with
/// peak memory held near the budget (18x), not near 40x the input.
#[test]
fn dense_input_at_scale_is_refused_by_the_decode_budget() {
    use kafkawire_protocol::messages::list_transactions_response::ListTransactionsResponse;
    let _serial = serial();
    const N: usize = 8 << 20;
    let mut body = BytesMut::new();
    body.put_i32(0); // throttle
    body.put_i16(0); // error code
    let mut v = N as u64 + 1; // compact array of N empty strings
    while v >= 0x80 {
        body.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    body.put_u8(v as u8);
    body.put_bytes(0x01, N);
    body.put_u8(1); // empty transaction states
    body.put_u8(0); // no tagged fields
    let frame = response_frame(ApiKey::ListTransactions, 0, &body);
    let n = frame.len();
    let mut result = None;
    let peak = peak_of(|| {
        result = Some(decode_frame::<ListTransactionsResponse>(
            frame.clone(),
            ApiKey::ListTransactions,
            0,
        ));
    });
    let err = result.unwrap().unwrap_err();
    assert!(
        matches!(err.kind, DecodeErrorKind::DecodeBudget { .. }),
        "{err}"
    );
    println!(
        "{n} bytes of empty strings: {err}; peak {peak} bytes ({:.1}x)",
        peak as f64 / n as f64
    );
    // A vector's last doubling holds its old buffer (half the charge) beside the new one.
    let bound = default_decode_budget(n) * 3 / 2 + SLACK;
    assert!(peak <= bound, "peak {peak} > {bound}");
}
