//! How `kafkawire consume` prints records: the `--format` mini-language (text, with keys,
//! values and headers escaped unless `--raw`) or `--output json` (one object per line).

use std::io::Write;

use base64::Engine as _;
use kafkawire::Error;
use kafkawire::protocol::records::{Record, TimestampType};

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
}

/// Parses FMT: `%t` topic, `%p` partition, `%o` offset, `%k` key, `%v` value, `%T` timestamp
/// (ms), `%h` headers (`k=v` comma-separated), `%%`; escapes `\n`, `\t`, `\\`.
pub(crate) fn parse(fmt: &str) -> Result<Vec<Piece>, Error> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('k') => Piece::Key,
                Some('v') => Piece::Value,
                Some('T') => Piece::Timestamp,
                Some('h') => Piece::Headers,
                Some('%') => {
                    lit.push(b'%');
                    continue;
                }
                other => {
                    return Err(Error::Config(format!(
                        "--format: unknown token %{} (use %t %p %o %k %v %T %h, %%)",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            },
            '\\' => {
                match chars.next() {
                    Some('n') => lit.push(b'\n'),
                    Some('t') => lit.push(b'\t'),
                    Some('\\') => lit.push(b'\\'),
                    other => {
                        lit.push(b'\\');
                        if let Some(o) = other {
                            let mut b = [0; 4];
                            lit.extend_from_slice(o.encode_utf8(&mut b).as_bytes());
                        }
                    }
                }
                continue;
            }
            c => {
                let mut b = [0; 4];
                lit.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                continue;
            }
        };
        if !lit.is_empty() {
            out.push(Piece::Literal(std::mem::take(&mut lit)));
        }
        out.push(piece);
    }
    if !lit.is_empty() {
        out.push(Piece::Literal(lit));
    }
    Ok(out)
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// As the `--format` pieces say. Keys, values and headers are escaped (see
    /// [`write_escaped`]) unless `raw`.
    Text { pieces: Vec<Piece>, raw: bool },
    /// One JSON object per record and line (see [`write_json`]).
    Json,
}

/// Where a record was read, and what its timestamp means (from its batch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'t> {
    pub(crate) topic: &'t str,
    pub(crate) partition: i32,
    pub(crate) timestamp_type: TimestampType,
}

impl Output {
    /// Writes one record.
    pub(crate) fn write(
        &self,
        w: &mut impl Write,
        origin: Origin<'_>,
        r: &Record<'_>,
    ) -> std::io::Result<()> {
        match self {
            Output::Text { pieces, raw } => write_text(w, pieces, *raw, origin, r),
            Output::Json => write_json(w, origin, r),
        }
    }
}

/// Writes one record as `pieces` say. Null keys and values print as nothing; keys, values and
/// header keys and values go through [`write_escaped`] unless `raw`.
fn write_text(
    w: &mut impl Write,
    pieces: &[Piece],
    raw: bool,
    origin: Origin<'_>,
    r: &Record<'_>,
) -> std::io::Result<()> {
    let data = |w: &mut _, bytes: &[u8]| {
        if raw {
            Write::write_all(w, bytes)
        } else {
            write_escaped(w, bytes)
        }
    };
    for p in pieces {
        match p {
            Piece::Literal(l) => w.write_all(l)?,
            Piece::Topic => w.write_all(origin.topic.as_bytes())?,
            Piece::Partition => write!(w, "{}", origin.partition)?,
            Piece::Offset => write!(w, "{}", r.offset())?,
            Piece::Key => data(w, r.key().unwrap_or_default())?,
            Piece::Value => data(w, r.value().unwrap_or_default())?,
            Piece::Timestamp => write!(w, "{}", r.timestamp())?,
            Piece::Headers => {
                for (i, h) in r.headers().enumerate() {
                    if i > 0 {
                        w.write_all(b",")?;
                    }
                    data(w, h.key.as_bytes())?;
                    w.write_all(b"=")?;
                    data(w, h.value.unwrap_or_default())?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `bytes` so that a terminal shows every byte and nothing can move the cursor,
/// reversibly: printable UTF-8 as it is; `\` as `\\`; newline, tab and carriage return as
/// `\n`, `\t`, `\r`; every byte of other control characters (C0, DEL, C1), of Unicode
/// bidirectional and invisible formatting characters (U+061C, U+200B-U+200F, U+202A-U+202E,
/// U+2066-U+2069, U+FEFF) and of invalid UTF-8 as `\xNN` (two lowercase hex digits).
pub(crate) fn write_escaped(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    // Fast path: printable ASCII without a backslash, the usual key or value.
    if bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
    {
        return w.write_all(bytes);
    }
    for chunk in bytes.utf8_chunks() {
        escape_str(w, chunk.valid())?;
        for b in chunk.invalid() {
            write!(w, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// The valid-UTF-8 part of [`write_escaped`]: unescaped runs are written whole.
fn escape_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    let mut from = 0;
    for (i, c) in s.char_indices() {
        let short: &[u8] = match c {
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '\t' => b"\\t",
            '\r' => b"\\r",
            c if hidden(c) => b"",
            _ => continue,
        };
        w.write_all(&s.as_bytes()[from..i])?;
        from = i + c.len_utf8();
        if short.is_empty() {
            for b in &s.as_bytes()[i..from] {
                write!(w, "\\x{b:02x}")?;
            }
        } else {
            w.write_all(short)?;
        }
    }
    w.write_all(&s.as_bytes()[from..])
}

/// Characters a terminal does not show as themselves: controls, and the invisible or
/// reordering formatting characters of Unicode's bidirectional algorithm (UAX #9) and
/// zero-width ones.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// The JSON name of a timestamp type: the Java client's `TimestampType` names.
fn timestamp_type_name(t: TimestampType) -> &'static str {
    match t {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// Writes one record as a JSON object and a newline, fields in this order:
///
/// ```json
/// {"topic":"orders","partition":0,"offset":42,"timestamp":1700000000000,
///  "timestamp_type":"CreateTime","key":"user-1","key_encoding":"utf8",
///  "value":"AAEC/w==","value_encoding":"base64",
///  "headers":[{"key":"source","value":"cli","value_encoding":"utf8"}]}
/// ```
///
/// `timestamp` is in milliseconds since the Unix epoch; `timestamp_type` is `CreateTime` or
/// `LogAppendTime`. Each of key, value and header value comes with an `*_encoding`: `"utf8"`
/// when the bytes are valid UTF-8 (the string is the text, JSON-escaped), `"base64"` otherwise
/// (standard alphabet with padding, RFC 4648 section 4), and both are `null` for a null key or
/// value. Headers keep their order, duplicates included; header keys are always UTF-8.
pub(crate) fn write_json(
    w: &mut impl Write,
    origin: Origin<'_>,
    r: &Record<'_>,
) -> std::io::Result<()> {
    w.write_all(b"{\"topic\":")?;
    json_str(w, origin.topic)?;
    write!(
        w,
        ",\"partition\":{},\"offset\":{},\"timestamp\":{},\"timestamp_type\":\"{}\",",
        origin.partition,
        r.offset(),
        r.timestamp(),
        timestamp_type_name(origin.timestamp_type)
    )?;
    json_bytes(w, "key", r.key())?;
    w.write_all(b",")?;
    json_bytes(w, "value", r.value())?;
    w.write_all(b",\"headers\":[")?;
    for (i, h) in r.headers().enumerate() {
        w.write_all(if i > 0 { b",{\"key\":" } else { b"{\"key\":" })?;
        json_str(w, h.key)?;
        w.write_all(b",")?;
        json_bytes(w, "value", h.value)?;
        w.write_all(b"}")?;
    }
    w.write_all(b"]}\n")
}

/// A JSON string (quoted and escaped by serde_json).
fn json_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, s).map_err(std::io::Error::from)
}

/// `"NAME":...,"NAME_encoding":...` for nullable bytes (see [`write_json`]).
fn json_bytes(w: &mut impl Write, name: &str, bytes: Option<&[u8]>) -> std::io::Result<()> {
    match bytes {
        None => write!(w, "\"{name}\":null,\"{name}_encoding\":null"),
        Some(b) => {
            write!(w, "\"{name}\":")?;
            let encoding = match std::str::from_utf8(b) {
                Ok(s) => {
                    json_str(w, s)?;
                    "utf8"
                }
                Err(_) => {
                    // Base64 never needs JSON escaping.
                    write!(
                        w,
                        "\"{}\"",
                        base64::engine::general_purpose::STANDARD.encode(b)
                    )?;
                    "base64"
                }
            };
            write!(w, ",\"{name}_encoding\":\"{encoding}\"")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkawire::protocol::records::{DecodeOptions, RecordBatch, RecordBatchBuilder};

    #[test]
    fn parses_tokens_and_escapes() {
        let p = parse("%t/%p@%o\\t%k=%v %T [%h] 100%%\\n").unwrap();
        assert_eq!(p[0], Piece::Topic);
        assert_eq!(p[1], Piece::Literal(b"/".to_vec()));
        assert!(p.contains(&Piece::Headers));
        assert_eq!(p.last(), Some(&Piece::Literal(b"] 100%\n".to_vec())));
        assert!(parse("%x").is_err());
        assert!(parse("%").is_err());
    }

    fn escaped(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_escaped(&mut out, bytes).unwrap();
        String::from_utf8(out).expect("escaped output is UTF-8")
    }

    #[test]
    fn escaping_shows_every_unprintable_byte() {
        assert_eq!(escaped(b"plain text 123"), "plain text 123");
        assert_eq!(escaped(b""), "");
        assert_eq!(escaped(b"a\x00b\nc"), "a\\x00b\\nc");
        assert_eq!(escaped(b"tab\there\r\n"), "tab\\there\\r\\n");
        assert_eq!(escaped(b"back\\slash"), "back\\\\slash");
        assert_eq!(escaped(b"\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
        // Printable non-ASCII stays as it is.
        assert_eq!(escaped("café ☕ 日本".as_bytes()), "café ☕ 日本");
        // Invalid UTF-8, byte by byte, also a truncated sequence at the end.
        assert_eq!(escaped(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(escaped(b"x\xe2\x82"), "x\\xe2\\x82");
        // C1 controls and bidirectional overrides: their UTF-8 bytes.
        assert_eq!(escaped("a\u{85}b".as_bytes()), "a\\xc2\\x85b");
        assert_eq!(escaped("x\u{202E}y".as_bytes()), "x\\xe2\\x80\\xaey");
        assert_eq!(escaped("\u{FEFF}z".as_bytes()), "\\xef\\xbb\\xbfz");
    }

    #[test]
    fn escaped_output_has_no_control_bytes_whatever_the_input() {
        let all: Vec<u8> = (0..=255).collect();
        let out = escaped(&all);
        assert!(out.bytes().all(|b| b >= 0x20 && b != 0x7f), "{out}");
        assert!(out.starts_with("\\x00\\x01"));
        assert!(out.contains(" !\"#"));
        assert!(out.ends_with("\\xfe\\xff"));
    }

    /// Decodes a one-record batch built from the arguments and hands the record to `f`.
    fn with_record<T>(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        log_append: bool,
        f: impl FnOnce(&Record<'_>, TimestampType) -> T,
    ) -> T {
        let mut b = RecordBatchBuilder::new();
        b.push(1_700_000_000_123, key, value, headers).unwrap();
        if log_append {
            b.log_append_time(Some(1_700_000_000_999));
        }
        let batch = RecordBatch::decode(b.build().unwrap(), &DecodeOptions::default()).unwrap();
        let record = batch.records().next().unwrap().unwrap();
        f(&record, batch.timestamp_type())
    }

    fn origin(t: TimestampType) -> Origin<'static> {
        Origin {
            topic: "orders",
            partition: 3,
            timestamp_type: t,
        }
    }

    fn text(fmt: &str, raw: bool, key: &[u8], value: &[u8], hv: &[u8]) -> Vec<u8> {
        let out = Output::Text {
            pieces: parse(fmt).unwrap(),
            raw,
        };
        with_record(
            Some(key),
            Some(value),
            &[("h\n", Some(hv))],
            false,
            |r, t| {
                let mut buf = Vec::new();
                out.write(&mut buf, origin(t), r).unwrap();
                buf
            },
        )
    }

    #[test]
    fn text_output_escapes_keys_values_and_headers_unless_raw() {
        let got = text("%k|%v|%h\\n", false, b"k\t1", b"v\x00\n", b"\xff");
        assert_eq!(got, b"k\\t1|v\\x00\\n|h\\n=\\xff\n");
        let got = text("%k|%v|%h\\n", true, b"k\t1", b"v\x00\n", b"\xff");
        assert_eq!(got, b"k\t1|v\x00\n|h\n=\xff\n");
        // The format's own literals are never escaped.
        let got = text("%t\\t%p\\t%o\\t%T\\n", false, b"", b"", b"");
        assert_eq!(got, b"orders\t3\t0\t1700000000123\n");
    }

    fn json(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        log_append: bool,
    ) -> serde_json::Value {
        let line = with_record(key, value, headers, log_append, |r, t| {
            let mut buf = Vec::new();
            Output::Json.write(&mut buf, origin(t), r).unwrap();
            buf
        });
        assert_eq!(line.last(), Some(&b'\n'), "one line per record");
        assert_eq!(
            line.iter().filter(|&&b| b == b'\n').count(),
            1,
            "exactly one line"
        );
        serde_json::from_slice(&line).expect("valid JSON")
    }

    #[test]
    fn json_carries_every_field_with_text_as_text_and_bytes_as_base64() {
        let binary: &[u8] = &[0x00, 0x01, 0xfe, 0xff];
        let v = json(
            Some(b"user-1"),
            Some(binary),
            &[
                ("source", Some(b"cli")),
                ("blob", Some(b"\x80")),
                ("none", None),
            ],
            false,
        );
        assert_eq!(
            v,
            serde_json::json!({
                "topic": "orders",
                "partition": 3,
                "offset": 0,
                "timestamp": 1_700_000_000_123_i64,
                "timestamp_type": "CreateTime",
                "key": "user-1",
                "key_encoding": "utf8",
                "value": "AAH+/w==",
                "value_encoding": "base64",
                "headers": [
                    {"key": "source", "value": "cli", "value_encoding": "utf8"},
                    {"key": "blob", "value": "gA==", "value_encoding": "base64"},
                    {"key": "none", "value": null, "value_encoding": null},
                ],
            })
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, binary);
    }

    #[test]
    fn json_keeps_utf8_with_control_characters_as_text_and_nulls_as_null() {
        let v = json(None, Some("a\u{0}\n\"q\" é".as_bytes()), &[], true);
        assert_eq!(v["value"], "a\u{0}\n\"q\" é");
        assert_eq!(v["value_encoding"], "utf8");
        assert_eq!(v["key"], serde_json::Value::Null);
        assert_eq!(v["key_encoding"], serde_json::Value::Null);
        assert_eq!(v["headers"], serde_json::json!([]));
        assert_eq!(v["timestamp_type"], "LogAppendTime");
        assert_eq!(v["timestamp"], 1_700_000_000_999_i64);
        let v = json(Some(b""), None, &[], false);
        assert_eq!(v["key"], "");
        assert_eq!(v["key_encoding"], "utf8");
        assert_eq!(v["value"], serde_json::Value::Null);
    }
}
