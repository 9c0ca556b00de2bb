//! `FrameDecoder` fed a byte stream in chunks of input-chosen sizes.
//!
//! Input: `[c, s_1 .. s_k, stream..]` with `k = c % 8 + 1` chunk sizes `s_i + 1` (used in turn,
//! cycling); `(c >> 3) & 3` picks the frame limit (0, 1: the default 100 MiB; 2: 1 MiB;
//! 3: 1 KiB). Every complete frame's correlation id is read (`peek_correlation_id`).
//!
//! Oracle: no panic, and the frames (and the error, if any) are the same as when the whole
//! stream arrives at once.
#![no_main]

use kafkawire_fuzz::{peak, split_selector};
use kafkawire_protocol::frame::{DEFAULT_MAX_FRAME_SIZE, FrameDecoder, peek_correlation_id};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Event {
    Frame(Vec<u8>, Option<i32>),
    Error(String),
}

fn drain(d: &mut FrameDecoder, out: &mut Vec<Event>) -> bool {
    loop {
        match d.next_frame() {
            Ok(Some(frame)) => {
                let id = peek_correlation_id(&frame).ok();
                out.push(Event::Frame(frame.to_vec(), id));
            }
            Ok(None) => return true,
            Err(e) => {
                out.push(Event::Error(e.to_string()));
                return false;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(([c], rest)) = split_selector::<1>(data) else {
        return;
    };
    let k = usize::from(c % 8) + 1;
    if rest.len() < k {
        return;
    }
    let (sizes, stream) = rest.split_at(k);
    let limit = match (c >> 3) & 3 {
        2 => 1 << 20,
        3 => 1 << 10,
        _ => DEFAULT_MAX_FRAME_SIZE,
    };

    let base = peak::reset();
    let mut chunked = Vec::new();
    let mut d = FrameDecoder::new(limit);
    let mut pos = 0;
    let mut i = 0;
    let mut ok = true;
    while pos < stream.len() && ok {
        let n = (usize::from(sizes[i % k]) + 1).min(stream.len() - pos);
        d.extend(&stream[pos..pos + n]);
        pos += n;
        i += 1;
        ok = drain(&mut d, &mut chunked);
    }
    let chunked_left = ok.then(|| d.buffered());
    drop(d);
    peak::check("FrameDecoder", base, stream.len());

    let mut whole = Vec::new();
    let mut d = FrameDecoder::new(limit);
    d.extend(stream);
    let ok = drain(&mut d, &mut whole);
    let whole_left = ok.then(|| d.buffered());

    assert_eq!(chunked, whole, "chunked and whole decoding disagree");
    assert_eq!(chunked_left, whole_left, "bytes left over differ");
});
