//! Size-prefixed frames and request/response headers (protocol guide, "Common Request and
//! Response Structure").
//!
//! Every message on a Kafka connection is an int32 size followed by that many bytes. A request is
//! a [`RequestHeader`] (v1, or v2 in flexible versions) and a body; a response is a
//! [`ResponseHeader`] (v0, or v1 in flexible versions, but always v0 for ApiVersions) and a body.
//!
//! ```
//! use kafkawire_protocol::frame::{FrameDecoder, encode_request, decode_response};
//! use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
//! use kafkawire_protocol::messages::api_versions_response::ApiVersionsResponse;
//! use kafkawire_protocol::messages::ApiKey;
//!
//! let mut out = bytes::BytesMut::new();
//! encode_request(&mut out, 7, Some("me"), 3, &ApiVersionsRequest::default()).unwrap();
//! let mut dec = FrameDecoder::new(1 << 20);
//! dec.extend(&out);
//! let frame = dec.next_frame().unwrap().unwrap();
//! let req = kafkawire_protocol::frame::decode_request_header(frame).unwrap();
//! assert_eq!((req.header.request_api_key, req.header.correlation_id), (18, 7));
//! # let _ = (decode_response::<ApiVersionsResponse>, ApiKey::ApiVersions);
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::messages::request_header::RequestHeader;
use crate::messages::response_header::ResponseHeader;
use crate::messages::{ApiKey, Decodable, Encodable, Message, Request};
use crate::primitives::Reader;

/// The default largest frame accepted: 100 MiB, Kafka's `socket.request.max.bytes` default.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Most bytes [`FrameDecoder::next_frame`] reserves at once for a frame still arriving, beyond
/// the bytes already buffered (the buffer at most doubles per step).
const RESERVE_STEP: usize = 64 * 1024;

/// Splits a byte stream into whole frames. Feed it chunks of any size with [`extend`]; take
/// frames (without their size prefix) with [`next_frame`].
///
/// [`extend`]: FrameDecoder::extend
/// [`next_frame`]: FrameDecoder::next_frame
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame_size: usize,
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame_size,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The buffer to read into directly (avoids a copy): reserve, read, and the bytes count.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, if one has arrived.
    ///
    /// # Errors
    /// [`DecodeErrorKind::FrameSize`] when a frame announces a negative size or one above the
    /// limit; the stream cannot be resynchronised after that and the connection should be closed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 || size as usize > self.max_frame_size {
            return Err(DecodeError::new(
                "frame size",
                0,
                DecodeErrorKind::FrameSize {
                    size: size as i64,
                    limit: self.max_frame_size,
                },
            ));
        }
        let size = size as usize;
        if self.buf.len() < 4 + size {
            // The size is only a claim until the bytes arrive: grow with them (at most doubling
            // what has arrived, in steps of at least `RESERVE_STEP`), never to the whole
            // announced size at once.
            let missing = 4 + size - self.buf.len();
            let spare = self.buf.capacity() - self.buf.len();
            if spare < missing {
                let step = missing.min(self.buf.len().max(RESERVE_STEP));
                if spare < step {
                    self.buf.reserve(step);
                }
            }
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }
}

fn with_size_prefix(
    buf: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    body(buf)?;
    let size = buf.len() - start - 4;
    let size = i32::try_from(size).map_err(|_| EncodeError::TooLong {
        what: "frame",
        len: size,
    })?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Appends a whole request frame (size, header, body) for `version` of `R` to `buf`.
///
/// # Errors
/// [`EncodeError`] when the request cannot be written in that version.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
) -> Result<(), EncodeError> {
    let header = RequestHeader {
        request_api_key: R::API_KEY as i16,
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    };
    let header_version = R::API_KEY.request_header_version(version);
    with_size_prefix(buf, |b| {
        header.encode(b, header_version)?;
        request.encode(b, version)
    })
}

/// A request frame whose header has been read; `body` holds the rest.
#[derive(Debug)]
pub struct RequestFrame {
    /// The decoded header.
    pub header: RequestHeader,
    /// The API, if this crate knows its key.
    pub api_key: Option<ApiKey>,
    /// The request body, positioned after the header.
    pub body: Reader,
}

impl RequestFrame {
    /// Decodes the body as `R` (the frame's API key must be `R`'s).
    ///
    /// # Errors
    /// [`DecodeError`] if the body is invalid or the key is not `R`'s.
    pub fn decode<R: Request>(mut self) -> Result<R, DecodeError> {
        if self.header.request_api_key != R::API_KEY as i16 {
            return Err(self.body.error(
                R::NAME,
                DecodeErrorKind::Invalid(format!(
                    "request has API key {}, not {}",
                    self.header.request_api_key,
                    R::API_KEY as i16
                )),
            ));
        }
        let version = self.header.request_api_version;
        R::decode(&mut self.body, version)
    }
}

/// Reads the header of a request frame (without its size prefix), as a broker does. The header
/// version follows from the API key and version in its first four bytes.
///
/// # Errors
/// [`DecodeError`] when the frame is too short or the header is invalid. Unknown API keys are
/// read with header v1 and returned with `api_key: None`.
pub fn decode_request_header(frame: Bytes) -> Result<RequestFrame, DecodeError> {
    let mut r = Reader::new(frame);
    let mut peek = r.clone();
    let key = peek.i16("request_api_key")?;
    let version = peek.i16("request_api_version")?;
    let api_key = ApiKey::from_i16(key);
    let header_version = api_key.map_or(1, |k| k.request_header_version(version));
    let header = RequestHeader::decode(&mut r, header_version)?;
    Ok(RequestFrame {
        header,
        api_key,
        body: r,
    })
}

/// Appends a whole response frame (size, header, body) for `version` of API `key`.
///
/// # Errors
/// [`EncodeError`] when the response cannot be written in that version.
pub fn encode_response<M: Message>(
    buf: &mut BytesMut,
    key: ApiKey,
    correlation_id: i32,
    version: i16,
    response: &M,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    with_size_prefix(buf, |b| {
        header.encode(b, key.response_header_version(version))?;
        response.encode(b, version)
    })
}

/// The correlation id at the start of a response frame, which tells the client which request it
/// answers (and so which API and version to decode it with).
///
/// # Errors
/// [`DecodeError`] when the frame is shorter than four bytes.
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    match frame {
        [a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::new(
            "correlation_id",
            0,
            DecodeErrorKind::Truncated {
                needed: 4,
                remaining: frame.len(),
            },
        )),
    }
}

/// Decodes a whole response frame (without its size prefix): the header for `version` of `M`'s
/// API, then the body, which must fill the rest of the frame.
///
/// # Errors
/// [`DecodeError`] naming the field and offset of the first problem.
pub fn decode_response<M: Message>(
    frame: Bytes,
    key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, M), DecodeError> {
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, key.response_header_version(version))?;
    let body = M::decode_bytes(r.take_rest(), version)?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::api_versions_request::ApiVersionsRequest;
    use crate::messages::metadata_request::MetadataRequest;
    use crate::messages::metadata_response::MetadataResponse;

    #[test]
    fn frames_split_across_any_chunking() {
        let mut wire = BytesMut::new();
        for i in 0..5 {
            encode_request(&mut wire, i, Some("c"), 12, &MetadataRequest::default()).unwrap();
        }
        for chunk in [1, 3, 7, 1000] {
            let mut d = FrameDecoder::new(1024);
            let mut ids = vec![];
            for c in wire.chunks(chunk) {
                d.extend(c);
                while let Some(f) = d.next_frame().unwrap() {
                    ids.push(decode_request_header(f).unwrap().header.correlation_id);
                }
            }
            assert_eq!(ids, vec![0, 1, 2, 3, 4]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn a_size_prefix_does_not_reserve_the_announced_size() {
        // 7 bytes: a 100 MiB size and 3 bytes of the frame.
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        d.extend(&(DEFAULT_MAX_FRAME_SIZE as i32).to_be_bytes());
        d.extend(&[1, 2, 3]);
        assert!(d.next_frame().unwrap().is_none());
        assert!(d.buffer_mut().capacity() <= 2 * RESERVE_STEP);
        // As the frame arrives the buffer follows it, at most about doubling.
        let chunk = vec![0u8; 100_000];
        for _ in 0..50 {
            d.extend(&chunk);
            assert!(d.next_frame().unwrap().is_none());
            assert!(d.buffer_mut().capacity() <= 4 * d.buffered() + 2 * RESERVE_STEP);
        }
        // A whole frame still comes out whole.
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        let body = vec![5u8; 3 << 20];
        d.extend(&(body.len() as i32).to_be_bytes());
        for c in body.chunks(1000) {
            assert!(d.next_frame().unwrap().is_none());
            d.extend(c);
        }
        assert_eq!(d.next_frame().unwrap().unwrap(), body);
    }

    #[test]
    fn oversized_and_negative_frames_are_rejected() {
        let mut d = FrameDecoder::new(16);
        d.extend(&17i32.to_be_bytes());
        let e = d.next_frame().unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::FrameSize {
                size: 17,
                limit: 16
            }
        );
        let mut d = FrameDecoder::new(16);
        d.extend(&(-5i32).to_be_bytes());
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn request_then_response_round_trip() {
        let mut wire = BytesMut::new();
        encode_request(&mut wire, 42, None, 3, &ApiVersionsRequest::default()).unwrap();
        let f = decode_request_header(wire.freeze().slice(4..)).unwrap();
        assert_eq!(f.api_key, Some(ApiKey::ApiVersions));
        assert_eq!(f.header.client_id, None);
        let _req: ApiVersionsRequest = f.decode().unwrap();

        let mut out = BytesMut::new();
        let resp = MetadataResponse {
            cluster_id: Some("c1".into()),
            ..Default::default()
        };
        encode_response(&mut out, ApiKey::Metadata, 42, 12, &resp).unwrap();
        let frame = out.freeze().slice(4..);
        assert_eq!(peek_correlation_id(&frame).unwrap(), 42);
        let (h, back) = decode_response::<MetadataResponse>(frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(h.correlation_id, 42);
        assert_eq!(back, resp);
    }
}
