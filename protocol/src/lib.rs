//! Sans-io codecs for the Kafka wire protocol.
//!
//! Bytes in, typed messages out: no sockets, no async runtime, no clock. The layers:
//! - [`primitives`]: Kafka's primitive types (protocol guide, "Protocol Primitive Types").
//! - [`messages`]: generated request and response types for every API a client or admin tool
//!   uses, in both directions and all versions of the schema files.
//! - [`records`]: record batches (magic 2) and legacy message sets (magic 0 and 1), the hot path.
//! - [`frame`]: size-prefixed frames and request/response headers.
//! - [`consumer_protocol`]: the subscription and assignment bytes classic consumer groups
//!   exchange inside JoinGroup and SyncGroup (and DescribeGroups reports), decoded within
//!   bounds proportional to their size.
//! - [`error`]: decode/encode errors and Kafka's [`ErrorCode`]s.
#![warn(missing_docs)]

pub mod consumer_protocol;
pub mod error;
pub mod frame;
mod generated;
pub mod messages;
pub mod primitives;
pub mod records;

pub use error::{DecodeError, DecodeErrorKind, EncodeError, ErrorCode};
pub use primitives::{RawTaggedField, Reader, Uuid};
