//! Unit tests of the properties-file syntax.

use super::properties::parse_properties;
use super::tests::PASSWORD;

fn props(text: &str) -> Vec<(String, String)> {
    parse_properties(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

#[test]
fn properties_separators_comments_blank_lines_and_trimming() {
    let text = "\u{feff}# a comment\n! another\n\n   \na=b\r\nc: d\n  e =  f  \ng:h\ni=\nj = x = y\n\tk\t:\tv w\n";
    assert_eq!(
        props(text),
        vec![
            pair("a", "b"),
            pair("c", "d"),
            pair("e", "f"),
            pair("g", "h"),
            pair("i", ""),
            pair("j", "x = y"),
            pair("k", "v w"),
        ]
    );
}

#[test]
fn properties_line_continuations() {
    let text =
        "a=one \\\n    two\\\n three\nb=x\\\\\nc=y\\\\\\\n  z\n# comment \\\nd=e\nlast=tail\\";
    assert_eq!(
        props(text),
        vec![
            pair("a", "one twothree"),
            pair("b", "x\\"),
            pair("c", "y\\z"),
            pair("d", "e"),
            pair("last", "tail"),
        ]
    );
    // The line number of a setting is where it starts.
    let parsed = parse_properties("\n\na=1\\\n2\nb=3").unwrap();
    assert_eq!((parsed[0].line, parsed[1].line), (3, 5));
    // A continuation line may start with '#': it is part of the value.
    assert_eq!(props("a=x\\\n  #y"), vec![pair("a", "x#y")]);
}

#[test]
fn properties_escapes() {
    let text = r"a=tab\there\nnl\r\f
b=caf\u00e9 \uD83D\uDE00
c=keep trailing space\ 
d=\#not a comment \= \: \\ \q
e=  \  leading";
    assert_eq!(
        props(text),
        vec![
            pair("a", "tab\there\nnl\r\x0c"),
            pair("b", "café 😀"),
            pair("c", "keep trailing space "),
            pair("d", "#not a comment = : \\ q"),
            pair("e", "  leading"),
        ]
    );
}

#[test]
fn properties_errors_name_the_line_never_its_text() {
    for (text, line) in [
        ("a=1\nb=\\u12x4", 2),
        ("a=1\nb=\\uD83Dx", 2),
        ("a=1\n\n" /* blank */, 0),
    ] {
        if line == 0 {
            assert!(parse_properties(text).is_ok());
            continue;
        }
        let e = parse_properties(text).err().unwrap();
        assert!(e.contains(&format!("line {line}")), "{e}");
        assert!(e.contains("\\uXXXX"), "{e}");
    }
    // A lone word (a pasted password, say) is not a setting, and is not quoted back.
    let e = parse_properties(&format!("a=1\n{PASSWORD}\n"))
        .err()
        .unwrap();
    assert_eq!(e, "line 2 is not a key=value setting");
    let e = parse_properties(&format!("sasl.password {PASSWORD}"))
        .err()
        .unwrap();
    assert_eq!(e, "line 1 is not a key=value setting");
    let e = parse_properties(&format!("\"{PASSWORD}\"=x"))
        .err()
        .unwrap();
    assert_eq!(
        e,
        "the key on line 1 is not a setting name (letters, digits, '.', '_' and '-')"
    );
    let e = parse_properties("=x").err().unwrap();
    assert!(e.contains("no key"), "{e}");
    // A key with an escaped separator is no Kafka setting name.
    let e = parse_properties("a\\=b=c").err().unwrap();
    assert!(e.contains("not a setting name"), "{e}");
}
