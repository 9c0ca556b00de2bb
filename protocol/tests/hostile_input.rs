//! No panic on any input: seeded random and mutated bytes fed to every request and response
//! decoder (by API key and version, through a whole frame), to the frame decoder in random
//! chunks, and to `RecordSet` iteration (every codec, legacy message sets, CRCs fixed up after
//! mutation so that the decompressors and record readers see the damage), touching every
//! record, header and accessor.
//!
//! The seed is printed (a new one each run); `KAFKAWIRE_HOSTILE_SEED=N` replays one, and
//! `KAFKAWIRE_HOSTILE_ROUNDS=N` runs longer (default 10 rounds per test: about 50,000 response
//! frames and 90,000 record sets, a few seconds in a debug build).
#![cfg(all(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_protocol::frame::{FrameDecoder, decode_response};
use kafkawire_protocol::messages::{ApiKey, ApiVisitor, Message, Request};
use kafkawire_protocol::records::{
    Batch, Compression, DecodeOptions, DecompressionBudget, RecordBatchBuilder, RecordSet,
};

/// xorshift64*, so every input reproduces from the seed.
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
    /// Up to `max - 1` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The seed of this run (printed) and how many rounds to play.
fn seed_and_rounds(test: &str) -> (u64, usize) {
    let seed = std::env::var("KAFKAWIRE_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let rounds = std::env::var("KAFKAWIRE_HOSTILE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!("{test}: seed {seed} (replay with KAFKAWIRE_HOSTILE_SEED={seed}), {rounds} rounds");
    (seed, rounds)
}

/// Damages `b` in one of a few ways: flipped bytes, a byte set to a boundary value, a huge or
/// negative length written somewhere, a cut, an insertion.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff][rng.below(6)];
            }
            2 if b.len() >= 4 => {
                let i = rng.below(b.len() - 3);
                let v: [u8; 4] = match rng.below(4) {
                    0 => i32::MAX.to_be_bytes(),
                    1 => (-2i32).to_be_bytes(),
                    2 => [0xff, 0xff, 0xff, 0x0f],
                    _ => (rng.below(1 << 20) as i32).to_be_bytes(),
                };
                b[i..i + 4].copy_from_slice(&v);
            }
            3 => {
                let n = rng.below(b.len() + 1);
                b.truncate(n);
            }
            4 => {
                let i = rng.below(b.len() + 1);
                let extra = rng.bytes(9);
                b.splice(i..i, extra);
            }
            _ => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.next() as u8 & 0x03);
            }
        }
    }
}

/// A response frame without its size prefix: correlation id, header tagged fields when the
/// header is v1, then `body`.
fn response_frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut f = BytesMut::new();
    f.put_i32(1);
    if key.response_header_version(version) >= 1 {
        f.put_u8(0);
    }
    f.put_slice(body);
    f.freeze()
}

struct Garbage<'a> {
    rng: &'a mut Rng,
    decoded: &'a mut usize,
    inputs: &'a mut usize,
}

impl ApiVisitor for Garbage<'_> {
    type Output = ();
    fn visit<R: Request>(self, key: ApiKey) {
        for version in R::Response::MIN_VERSION..=R::Response::MAX_VERSION {
            let valid = R::Response::default().encode_bytes(version).unwrap();
            let request = R::default().encode_bytes(version).ok();
            for i in 0..24 {
                let body = if i < 8 {
                    // Noise, biased to small values so lengths and counts look plausible.
                    let mut b = self.rng.bytes(300);
                    if i % 2 == 0 {
                        b.iter_mut().for_each(|x| *x &= 0x07);
                    }
                    b
                } else {
                    let mut b = valid.to_vec();
                    mutate(self.rng, &mut b);
                    b
                };
                *self.inputs += 1;
                let frame = response_frame(key, version, &body);
                if let Ok((_, m)) = decode_response::<R::Response>(frame, key, version) {
                    *self.decoded += 1;
                    // A decoded value encodes again (or refuses cleanly), decodes, and encodes
                    // to the same bytes (compared as bytes: a float may be NaN).
                    if let Ok(again) = m.encode_bytes(version) {
                        let back = R::Response::decode_bytes(again.clone(), version)
                            .unwrap_or_else(|e| panic!("{key} v{version} re-decode: {e}"));
                        let third = back.encode_bytes(version).expect("re-encode");
                        assert!(third == again, "{key} v{version}: round trip differs");
                    }
                }
                if let Some(req) = &request {
                    let mut b = req.to_vec();
                    mutate(self.rng, &mut b);
                    let _ = R::decode_bytes(Bytes::from(b), version);
                }
            }
        }
    }
}

#[test]
fn every_decoder_survives_random_and_mutated_input() {
    let (seed, rounds) = seed_and_rounds("decoders");
    let mut rng = Rng(seed | 1);
    let (mut decoded, mut inputs) = (0, 0);
    for _ in 0..rounds {
        for key in ApiKey::ALL {
            key.visit(Garbage {
                rng: &mut rng,
                decoded: &mut decoded,
                inputs: &mut inputs,
            });
        }
    }
    println!("decoders: {inputs} response inputs, {decoded} decoded");
}

#[test]
fn the_frame_decoder_survives_any_chunking() {
    let (seed, rounds) = seed_and_rounds("frames");
    let mut rng = Rng(seed | 1);
    for _ in 0..rounds * 2_000 {
        let mut wire = Vec::new();
        for _ in 0..rng.below(4) {
            let body = rng.bytes(64);
            let size = match rng.below(5) {
                0 => rng.next() as i32,
                1 => i32::MAX,
                _ => body.len() as i32,
            };
            wire.extend_from_slice(&size.to_be_bytes());
            wire.extend(body);
        }
        let mut d = FrameDecoder::new(1 + rng.below(1 << 20));
        let mut rest = &wire[..];
        'feed: while !rest.is_empty() {
            let n = 1 + rng.below(rest.len());
            d.extend(&rest[..n]);
            rest = &rest[n..];
            loop {
                match d.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }
}

/// Magic-2 batches of every codec, and legacy magic-0/1 entries (plain and wrappers).
fn sample_sets(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut sets = Vec::new();
    for codec in Compression::ALL {
        let mut b = RecordBatchBuilder::new();
        b.base_offset(rng.below(1000) as i64)
            .compression(codec)
            .producer(3, 1, 0);
        for i in 0..1 + rng.below(6) {
            let value = rng.bytes(40);
            let headers: &[(&str, Option<&[u8]>)] = if i % 2 == 0 {
                &[("h", Some(b"x")), ("n", None)]
            } else {
                &[]
            };
            b.push(i as i64, Some(b"key"), Some(&value), headers)
                .unwrap();
        }
        sets.push(b.build().unwrap().to_vec());
    }
    for magic in [0i8, 1] {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
        ] {
            let mut inner = Vec::new();
            for i in 0..1 + rng.below(4) {
                inner.extend(legacy_entry(i as i64, magic, 0, b"v"));
            }
            if codec == Compression::None {
                sets.push(inner);
                continue;
            }
            let value = compress(codec, &inner);
            sets.push(legacy_entry(3, magic, codec.id() as i8, &value));
        }
    }
    sets
}

/// `data` compressed as a legacy wrapper's value (gzip stream, raw snappy block, LZ4 frame).
fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Snappy => snap::raw::Encoder::new().compress_vec(data).unwrap(),
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        _ => data.to_vec(),
    }
}

/// A legacy log entry (offset, size, crc, magic, attributes, [timestamp], null key, value).
fn legacy_entry(offset: i64, magic: i8, attrs: i8, value: &[u8]) -> Vec<u8> {
    let mut m = vec![magic as u8, attrs as u8];
    if magic == 1 {
        m.extend_from_slice(&5i64.to_be_bytes());
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

/// Rewrites the CRC of the first batch or legacy message of `b`, if it is long enough, so that
/// damage behind the CRC reaches the decoders.
fn fix_crc(b: &mut [u8]) {
    if b.len() < 17 {
        return;
    }
    if b[16] == 2 && b.len() >= 61 {
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    } else if b.len() >= 22 {
        let crc = crc32fast::hash(&b[16..]);
        b[12..16].copy_from_slice(&crc.to_be_bytes());
    }
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
}

/// Touches everything a consumer would.
fn drain(set: RecordSet) -> usize {
    let mut n = 0;
    for batch in set {
        let Ok(batch) = batch else { continue };
        let _ = (
            batch.base_offset(),
            batch.last_offset(),
            batch.next_offset(),
            batch.record_count(),
            batch.compression(),
            batch.producer_id(),
            batch.is_control(),
        );
        assert!(batch.last_offset() < i64::MAX);
        for r in batch.records() {
            let Ok(r) = r else { break };
            n += 1;
            let _ = (r.offset(), r.timestamp(), r.sequence(), r.key(), r.value());
            let _ = r.control_record();
            for h in r.headers() {
                let _ = (h.key.len(), h.value);
            }
            if let Batch::V2(b) = &batch {
                let _ = (b.key_bytes(&r), b.value_bytes(&r));
            }
        }
    }
    n
}

#[test]
fn record_sets_survive_random_and_mutated_input() {
    let (seed, rounds) = seed_and_rounds("record sets");
    let mut rng = Rng(seed | 1);
    let (mut inputs, mut records) = (0, 0);
    for _ in 0..rounds * 60 {
        let sets = sample_sets(&mut rng);
        for set in &sets {
            for i in 0..12 {
                let mut b = set.clone();
                mutate(&mut rng, &mut b);
                if i % 2 == 0 {
                    fix_crc(&mut b);
                }
                let b = Bytes::from(b);
                inputs += 1;
                records += drain(RecordSet::new(b.clone()));
                let opts = DecodeOptions {
                    verify_crc: rng.below(2) == 0,
                    max_decompressed_size: rng.below(4096),
                };
                let budget = DecompressionBudget::new(rng.below(8192));
                records += drain(RecordSet::with_budget(b, opts, &budget));
                assert!(budget.used() <= budget.limit());
            }
        }
        // Pure noise, and noise after a plausible batch header.
        let noise = rng.bytes(200);
        drain(RecordSet::new(Bytes::from(noise.clone())));
        let mut framed = sets[rng.below(sets.len())][..17.min(sets[0].len())].to_vec();
        framed.extend(noise);
        fix_crc(&mut framed);
        drain(RecordSet::new(Bytes::from(framed)));
    }
    println!("record sets: {inputs} mutated sets, {records} records read");
}
