//! Java properties files: the syntax of `--command-config`.

/// One `key=value` of a properties file. The value may be a secret, so there is no `Debug`.
pub(crate) struct Property {
    /// The key, unescaped.
    pub(crate) key: String,
    /// The value, unescaped, without leading and trailing (unescaped) white space.
    pub(crate) value: String,
    /// The line (1-based) where the setting starts.
    pub(crate) line: usize,
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Parses a Java properties file: `key=value` or `key: value` (white space around the
/// separator ignored), comment lines starting with `#` or `!`, blank lines, a `\` at the end of
/// a line continuing it on the next (whose leading white space is dropped), and the escapes
/// `\t \n \r \f \uXXXX` (`\` before any other character stands for that character, e.g. `\\`,
/// `\=`, `\:`, `\#`, or `\ ` for a space that trimming keeps). Unlike Java, a line needs `=` or
/// `:` (a lone word is more likely a pasted secret than a key), and keys must be setting names
/// (letters, digits, `.`, `_`, `-`).
///
/// # Errors
/// A message naming the line, never quoting it.
pub(crate) fn parse_properties(text: &str) -> Result<Vec<Property>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let stripped = raw.trim_start_matches(is_blank);
        let (start, mut logical) = match pending.take() {
            Some(continued) => continued,
            None => {
                if stripped.is_empty() || stripped.starts_with(['#', '!']) {
                    continue;
                }
                (number, String::new())
            }
        };
        logical.push_str(stripped);
        let backslashes = stripped.chars().rev().take_while(|&c| c == '\\').count();
        if backslashes % 2 == 1 {
            logical.pop();
            pending = Some((start, logical));
            continue;
        }
        out.push(split_property(&logical, start)?);
    }
    if let Some((start, logical)) = pending {
        out.push(split_property(&logical, start)?);
    }
    Ok(out)
}

fn split_property(line: &str, number: usize) -> Result<Property, String> {
    let not_a_setting = || format!("line {number} is not a key=value setting");
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == '=' || c == ':' || is_blank(c) => {
                key_end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.ok_or_else(not_a_setting)?;
    let mut j = key_end;
    while j < chars.len() && is_blank(chars[j]) {
        j += 1;
    }
    if j < chars.len() && (chars[j] == '=' || chars[j] == ':') {
        j += 1;
    } else {
        return Err(not_a_setting());
    }
    while j < chars.len() && is_blank(chars[j]) {
        j += 1;
    }
    let key = unescape(&chars[..key_end], number)?;
    if key.is_empty() {
        return Err(format!("line {number} has no key before its '=' or ':'"));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "the key on line {number} is not a setting name (letters, digits, '.', '_' and '-')"
        ));
    }
    let value = unescape(&chars[j..], number)?;
    Ok(Property {
        key,
        value,
        line: number,
    })
}

/// Resolves the escapes of a key or value and drops trailing unescaped white space.
fn unescape(chars: &[char], number: usize) -> Result<String, String> {
    let bad_unicode = || format!("line {number} has a malformed \\uXXXX escape");
    let mut out = String::new();
    let mut keep = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            if !is_blank(c) {
                keep = out.len();
            }
            continue;
        }
        let Some(&e) = chars.get(i) else { break };
        i += 1;
        let decoded = match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            'u' => {
                let high = hex4(chars, i).ok_or_else(bad_unicode)?;
                i += 4;
                if (0xD800..0xDC00).contains(&high) {
                    // A surrogate pair, as Java writes characters beyond the BMP.
                    if chars.get(i) != Some(&'\\') || chars.get(i + 1) != Some(&'u') {
                        return Err(bad_unicode());
                    }
                    let low = hex4(chars, i + 2).ok_or_else(bad_unicode)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(bad_unicode());
                    }
                    i += 6;
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                        .ok_or_else(bad_unicode)?
                } else {
                    char::from_u32(high).ok_or_else(bad_unicode)?
                }
            }
            other => other,
        };
        out.push(decoded);
        keep = out.len();
    }
    out.truncate(keep);
    Ok(out)
}

fn hex4(chars: &[char], at: usize) -> Option<u32> {
    let digits = chars.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |acc, c| Some(acc * 16 + c.to_digit(16)?))
}
