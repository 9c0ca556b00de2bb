//! The `--format` mini-language of `kafkawire consume`.

use std::io::Write;

use kafkawire::Error;
use kafkawire::protocol::records::Record;

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

/// Writes one record as `pieces` say. Null keys and values print as nothing.
pub(crate) fn write(
    w: &mut impl Write,
    pieces: &[Piece],
    topic: &str,
    partition: i32,
    r: &Record<'_>,
) -> std::io::Result<()> {
    for p in pieces {
        match p {
            Piece::Literal(l) => w.write_all(l)?,
            Piece::Topic => w.write_all(topic.as_bytes())?,
            Piece::Partition => write!(w, "{partition}")?,
            Piece::Offset => write!(w, "{}", r.offset())?,
            Piece::Key => w.write_all(r.key().unwrap_or_default())?,
            Piece::Value => w.write_all(r.value().unwrap_or_default())?,
            Piece::Timestamp => write!(w, "{}", r.timestamp())?,
            Piece::Headers => {
                for (i, h) in r.headers().enumerate() {
                    if i > 0 {
                        w.write_all(b",")?;
                    }
                    w.write_all(h.key.as_bytes())?;
                    w.write_all(b"=")?;
                    w.write_all(h.value.unwrap_or_default())?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
