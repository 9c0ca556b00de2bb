//! Errors of decoding and encoding, and Kafka's error codes.

pub use crate::generated::error_codes::ErrorCode;

/// Why a decode failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended early: `needed` bytes were wanted, `remaining` were left.
    Truncated {
        /// Bytes the read needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint ran past its longest legal length (5 bytes for 32 bits, 10 for 64).
    VarintOverflow,
    /// A negative length other than -1 (null).
    InvalidLength(i64),
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// Null where this version does not allow null.
    UnexpectedNull,
    /// Tagged fields out of ascending order, or a tag seen twice (KIP-482).
    TagOrder {
        /// The offending tag.
        tag: u32,
    },
    /// A version this code does not know for this message.
    UnsupportedVersion(i16),
    /// A record batch whose stored CRC does not match its bytes.
    CrcMismatch {
        /// CRC stored in the batch.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// A record batch magic byte this code does not read.
    UnknownMagic(i8),
    /// Compression codec id not known, or not compiled in (cargo feature off).
    UnsupportedCompression(u8),
    /// A compressed payload that fails to decompress.
    Decompression(String),
    /// Decompressing a batch would take the bytes decompressed under one
    /// [`DecompressionBudget`](crate::records::DecompressionBudget) (typically: every batch of
    /// one fetch answer) past its limit. Not corruption: the batches before it are good, and
    /// the rest can be read by a later fetch starting at this batch.
    DecompressionBudget {
        /// The budget, in bytes.
        limit: usize,
        /// Bytes taken by the batches decoded under it before this one.
        used: usize,
        /// Bytes this batch needs: at least this many (decompression stops at the limit).
        needed: usize,
    },
    /// Decoding would build a representation larger than the reader's decode budget
    /// ([`Reader::budget`](crate::primitives::Reader::budget): by default
    /// [`DECODE_BUDGET_FACTOR`](crate::primitives::DECODE_BUDGET_FACTOR) x the input +
    /// [`DECODE_BUDGET_SLACK`](crate::primitives::DECODE_BUDGET_SLACK)): input made of the
    /// smallest elements the format allows (empty strings, empty structs) in numbers no real
    /// message has.
    DecodeBudget {
        /// The budget, in bytes of decoded representation.
        limit: usize,
        /// Bytes the next element needed when the budget ran out.
        needed: usize,
    },
    /// A value that breaks a rule of the format (described in the text).
    Invalid(String),
    /// A frame size above the configured limit, or negative.
    FrameSize {
        /// The size the frame announced.
        size: i64,
        /// The largest size allowed.
        limit: usize,
    },
}

impl std::fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeErrorKind::Truncated { needed, remaining } => {
                write!(
                    f,
                    "input ends early (needed {needed} bytes, {remaining} left)"
                )
            }
            DecodeErrorKind::VarintOverflow => f.write_str("varint is too long"),
            DecodeErrorKind::InvalidLength(n) => write!(f, "invalid length {n}"),
            DecodeErrorKind::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeErrorKind::UnexpectedNull => f.write_str("null where null is not allowed"),
            DecodeErrorKind::TagOrder { tag } => {
                write!(f, "tagged field {tag} is out of ascending order")
            }
            DecodeErrorKind::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            DecodeErrorKind::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): the data is corrupt"
            ),
            DecodeErrorKind::UnknownMagic(m) => write!(f, "unknown record batch magic {m}"),
            DecodeErrorKind::UnsupportedCompression(c) => write!(
                f,
                "compression codec {c} is unknown or its cargo feature is not enabled"
            ),
            DecodeErrorKind::Decompression(e) => write!(f, "decompression failed: {e}"),
            DecodeErrorKind::DecompressionBudget {
                limit,
                used,
                needed,
            } => write!(
                f,
                "decompression budget of {limit} bytes exceeded: earlier batches took {used} bytes and this batch needs at least {needed} more"
            ),
            DecodeErrorKind::DecodeBudget { limit, needed } => write!(
                f,
                "decoded size budget of {limit} bytes exceeded ({needed} more bytes needed): the input holds far more tiny elements than any real message"
            ),
            DecodeErrorKind::Invalid(e) => f.write_str(e),
            DecodeErrorKind::FrameSize { size, limit } => {
                write!(f, "frame size {size} is outside 0..={limit}")
            }
        }
    }
}

/// A decode failure: what was being read, at which byte offset of the buffer, and why.
/// `context` names the message and version when known (e.g. `"FetchResponse v12"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}{} at byte {offset}: {kind}", context.as_ref().map(|c| format!(" of {c}")).unwrap_or_default())]
pub struct DecodeError {
    /// The field or structure being read.
    pub what: &'static str,
    /// Byte offset from the start of the buffer being decoded.
    pub offset: usize,
    /// Why it failed.
    pub kind: DecodeErrorKind,
    /// The message and version, when known.
    pub context: Option<String>,
}

impl DecodeError {
    /// A decode error of `kind` while reading `what` at `offset`.
    pub fn new(what: &'static str, offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError {
            what,
            offset,
            kind,
            context: None,
        }
    }

    /// Adds the message name and version, unless a more precise context is already set.
    pub fn in_context(mut self, context: impl FnOnce() -> String) -> Self {
        if self.context.is_none() {
            self.context = Some(context());
        }
        self
    }
}

/// An encode failure: the value cannot be written in the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The message does not exist in that version.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// Message name.
        message: &'static str,
        /// Requested version.
        version: i16,
    },
    /// A field holds a non-default value but the version cannot carry it, so sending would lose
    /// it silently.
    #[error("{message}.{field} is set but version {version} cannot carry it")]
    FieldNotInVersion {
        /// Message or struct name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// Requested version.
        version: i16,
    },
    /// Null in a field that is not nullable in this version.
    #[error("{message}.{field} is null but version {version} does not allow null")]
    NullNotAllowed {
        /// Message or struct name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// Requested version.
        version: i16,
    },
    /// A string, bytes or array too long for its length prefix.
    #[error("{what} is too long to encode ({len})")]
    TooLong {
        /// What was being written.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A value outside what the format can carry (described in the text).
    #[error("{0}")]
    Invalid(String),
}

impl ErrorCode {
    /// True for code 0 (`NONE`).
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for ErrorCode {
    /// `NAME (code)`, or `unknown error code N` for codes this crate does not know.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "unknown error code {}", self.0),
        }
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
