//! Record seeds: the fixtures of `protocol/tests/fixtures/records` (written by an independent
//! encoder), batches of every codec from `RecordBatchBuilder`, a control batch, multi-batch
//! sets with a truncated tail; the same inside Fetch responses; and frame streams.

use bytes::Bytes;
use kafkawire_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafkawire_protocol::messages::metadata_request::MetadataRequest;
use kafkawire_protocol::records::{Compression, EndTxnMarker, RecordBatchBuilder, control_batch};

use super::{frame_stream, value, write};

fn fixtures() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../protocol/tests/fixtures/records");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.ends_with(".hex").then_some(n)
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(n)).unwrap();
            let hex: Vec<u8> = text
                .bytes()
                .filter(u8::is_ascii_hexdigit)
                .collect();
            hex.chunks(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
                .collect()
        })
        .collect()
}

fn built() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let mut b = RecordBatchBuilder::new();
        b.base_offset(100 * i as i64)
            .partition_leader_epoch(3)
            .compression(codec);
        if i % 2 == 1 {
            b.producer(7, 1, 40).transactional(i == 3);
        }
        let ts = 1_700_000_000_000;
        b.push(ts, Some(b"key"), Some(b"value"), &[]).unwrap();
        b.push(ts + 1, None, Some(&[b'x'; 40]), &[("h", Some(b"v")), ("n", None)])
            .unwrap();
        b.push(ts - 1, Some(b""), None, &[]).unwrap();
        out.push(b.build().unwrap().to_vec());
    }
    let mut b = RecordBatchBuilder::new();
    b.log_append_time(Some(1_700_000_000_500));
    b.push(1_700_000_000_000, None, Some(b"appended"), &[])
        .unwrap();
    out.push(b.build().unwrap().to_vec());
    out.push(
        control_batch(
            500,
            2,
            7,
            1,
            1_700_000_000_000,
            EndTxnMarker {
                commit: true,
                coordinator_epoch: 4,
            },
        )
        .to_vec(),
    );
    out
}

/// Writes the record seeds; returns the record sets used.
pub(crate) fn all() {
    let mut sets = fixtures();
    sets.extend(built());
    // Several batches in one set, then one cut short (a fetch filled up to max_bytes).
    let mut multi = Vec::new();
    for s in &sets[..4] {
        multi.extend_from_slice(s);
    }
    let mut cut = multi.clone();
    cut.extend_from_slice(&sets[5][..sets[5].len() / 2]);
    sets.push(multi);
    sets.push(cut);

    for s in &sets {
        for o in [0u8, 1] {
            let mut d = vec![o];
            d.extend_from_slice(s);
            write("record_set", &d);
        }
    }

    // Fetch responses carrying them, in versions with different layouts.
    for (i, s) in sets.iter().enumerate() {
        let version = [4i16, 11, 12, 16][i % 4];
        let resp = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "orders".into(),
                partitions: vec![PartitionData {
                    partition_index: 1,
                    high_watermark: 1000,
                    records: Some(Bytes::copy_from_slice(s)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        value(&resp, version, i < 4);
    }

    // Frame streams: requests, an empty frame, too-large and negative sizes, a partial frame.
    for (c, version) in [(0u8, 0i16), (9, 9), (17, 12)] {
        let body = kafkawire_protocol::messages::Message::encode_bytes(
            &MetadataRequest::default(),
            version,
        )
        .unwrap();
        super::message::<MetadataRequest>(version, &body, true);
        let _ = c;
    }
    frame_stream(0, &[0], &[&[]]);
    frame_stream(3, &[1, 2, 3, 4], &[&[0, 0, 0, 1], &[0, 0, 0, 2, 0]]);
    write("frame_decoder", &[0, 7, 0x06, 0x40, 0x00, 0x01]); // announces ~100 MiB
    write("frame_decoder", &[24, 0, 0, 0, 0x10, 0x00, 0, 0, 0, 1]); // over the 1 KiB limit
    write("frame_decoder", &[1, 0, 0, 0xff, 0xff, 0xff, 0xfe]); // negative size
}
