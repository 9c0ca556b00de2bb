//! Copies the golden-vector tests of `protocol/tests` into `OUT_DIR` so that `tests/extract.rs`
//! can compile them with a `golden` helper that also writes each vector as a seed:
//! - `golden/mod.rs` keeps everything but its `golden` function is renamed `golden_checked`;
//!   `extract.rs` supplies a `golden` that records the vector, then calls it;
//! - each `golden_*.rs` gets `use super::golden;` instead of `mod golden;`, loses its inner
//!   attributes and doc comments (which `include!` cannot take), and its `decode_err`-style
//!   helpers (`fn x<M: Message>(bytes: Vec<u8>, version: i16)`) record their corrupt inputs.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn strip_inner(src: &str) -> String {
    src.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//!") || t.starts_with("#!["))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn main() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol/tests");
    println!("cargo:rerun-if-changed={}", tests.display());
    let out = Path::new(&env::var("OUT_DIR").unwrap()).to_path_buf();

    let helper = fs::read_to_string(tests.join("golden/mod.rs")).expect("golden/mod.rs");
    let helper = strip_inner(&helper).replace("fn golden<", "fn golden_checked<");
    fs::write(out.join("golden_helper.rs"), helper).unwrap();

    let mut modules = String::new();
    let mut names: Vec<_> = fs::read_dir(&tests)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            (name.starts_with("golden_") && name.ends_with(".rs")).then_some(name)
        })
        .collect();
    names.sort();
    for name in names {
        let src = fs::read_to_string(tests.join(&name)).unwrap();
        let mut src = strip_inner(&src).replace("mod golden;", "use super::golden;");
        // Corrupt-input helpers: record the bytes they decode.
        let sig = "<M: Message>(bytes: Vec<u8>, version: i16)";
        if let Some(at) = src.find(sig) {
            if let Some(open) = src[at..].find('{') {
                let at = at + open + 1;
                src.insert_str(at, "\n    super::capture::body::<M>(version, &bytes);");
            }
        }
        let stem = name.trim_end_matches(".rs");
        fs::write(out.join(&name), src).unwrap();
        writeln!(
            modules,
            "#[allow(unused_imports, dead_code, clippy::all)]\nmod {stem} {{ include!(concat!(env!(\"OUT_DIR\"), \"/{name}\")); }}"
        )
        .unwrap();
    }
    fs::write(out.join("golden_modules.rs"), modules).unwrap();
}
