//! Writes seed inputs for the fuzz targets, in the layouts their docs describe
//! (`fuzz/fuzz_targets/*.rs`, `fuzz/README.md`).
//!
//! `tests/extract.rs` calls [`message`] for every golden vector of `protocol/tests` and
//! [`generated`] for the rest: every API's default request and response in every version,
//! the record fixtures and batches of every codec, Fetch responses carrying them, consumer
//! protocol data, and frame streams.

use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_protocol::messages::{self, ApiKey, ApiVisitor, Encodable, Message, Request};

/// Where the corpora go: `$KAFKAWIRE_FUZZ_CORPUS`, else `fuzz/corpus`.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("KAFKAWIRE_FUZZ_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus"),
    }
}

/// FNV-1a, 64 bits: a stable file name for a seed.
fn name(data: &[u8]) -> String {
    let mut f: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        f ^= u64::from(*b);
        f = f.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{f:016x}")
}

/// Writes one seed of `target` (a file named after its content).
pub fn write(target: &str, data: &[u8]) {
    let dir = corpus_dir().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name(data)), data).unwrap();
}

/// The API and direction of a message type, from its name ("FetchResponse").
fn api_of(name: &str) -> Option<(ApiKey, bool)> {
    let (base, response) = match (name.strip_suffix("Request"), name.strip_suffix("Response")) {
        (Some(b), _) => (b, false),
        (_, Some(b)) => (b, true),
        _ => return None,
    };
    ApiKey::ALL
        .iter()
        .find(|k| k.name() == base)
        .map(|k| (*k, response))
}

/// Index of the non-API messages in the `round_trip` target (`key % 4` of kind 2).
fn other_index(name: &str) -> Option<u8> {
    match name {
        "RequestHeader" => Some(0),
        "ResponseHeader" => Some(1),
        "ConsumerProtocolSubscription" => Some(2),
        "ConsumerProtocolAssignment" => Some(3),
        _ => None,
    }
}

fn response_frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    use messages::response_header::ResponseHeader;
    let mut b = BytesMut::new();
    ResponseHeader {
        correlation_id,
        ..Default::default()
    }
    .encode(&mut b, key.response_header_version(version))
    .expect("response header");
    b.put_slice(body);
    b.to_vec()
}

fn request_frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    use messages::request_header::RequestHeader;
    let mut b = BytesMut::new();
    RequestHeader {
        request_api_key: key as i16,
        request_api_version: version,
        correlation_id,
        client_id: Some("fuzz".into()),
        ..Default::default()
    }
    .encode(&mut b, key.request_header_version(version))
    .expect("request header");
    b.put_slice(body);
    b.to_vec()
}

/// A `frame_decoder` input: selector byte `c`, its chunk sizes, then the frames with their size
/// prefixes.
pub fn frame_stream(c: u8, sizes: &[u8], frames: &[&[u8]]) {
    let k = usize::from(c % 8) + 1;
    let mut data = vec![c];
    data.extend((0..k).map(|i| sizes[i % sizes.len()]));
    for f in frames {
        data.extend_from_slice(&(f.len() as i32).to_be_bytes());
        data.extend_from_slice(f);
    }
    write("frame_decoder", &data);
}

/// Seeds from one encoded message body of type `M` in `version`: `round_trip` always;
/// `responses` and `frame_decoder` for a response; `frame_decoder` for a request when
/// `frames` is set.
pub fn message<M: Message>(version: i16, body: &[u8], frames: bool) {
    let v = version as u8;
    if let Some((key, response)) = api_of(M::NAME) {
        let mut rt = vec![u8::from(response), key as u8, v];
        rt.extend_from_slice(body);
        write("round_trip", &rt);
        if response {
            let frame = response_frame(key, version, 0x0102_0304, body);
            let mut r = vec![key as u8, v];
            r.extend_from_slice(&frame);
            write("responses", &r);
            if frames {
                let h = name(body).as_bytes()[0];
                frame_stream(h % 8, &[h, 3, 250, 0], &[&frame, &frame]);
            }
        } else if frames {
            let frame = request_frame(key, version, 42, body);
            frame_stream(0, &[255], &[&frame]);
        }
    } else if let Some(i) = other_index(M::NAME) {
        let mut rt = vec![2, i, v];
        rt.extend_from_slice(body);
        write("round_trip", &rt);
    } else {
        panic!("no fuzz target takes {}", M::NAME);
    }
}

/// [`message`] for a value: encodes it (skipping versions it cannot be written in).
pub fn value<M: Message>(m: &M, version: i16, frames: bool) -> Option<Bytes> {
    let b = m.encode_bytes(version).ok()?;
    message::<M>(version, &b, frames);
    Some(b)
}

/// Every version of the visited API's default request and response.
struct Defaults;

impl ApiVisitor for Defaults {
    type Output = ();

    fn visit<R: Request>(self, _key: ApiKey) {
        for version in R::MIN_VERSION..=R::MAX_VERSION {
            value(&R::default(), version, false);
            value(&R::Response::default(), version, false);
        }
    }
}

fn every_default() {
    for key in ApiKey::ALL {
        key.visit(Defaults);
    }
}

mod consumer;
mod records;

/// Everything not taken from the golden tests.
pub fn generated() {
    every_default();
    for version in 0..=2 {
        value(&messages::request_header::RequestHeader::default(), version, false);
    }
    for version in 0..=1 {
        value(&messages::response_header::ResponseHeader::default(), version, false);
    }
    records::all();
    consumer::all();
}
