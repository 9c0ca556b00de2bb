//! Workspace tasks.
//!
//! - `cargo codegen` — regenerate `protocol/src/generated/` from `protocol/schema/`.
//! - `cargo codegen --check` — fail if the checked-in generated code is stale.
//! - `cargo xtask import-schema DIR` — rebuild `protocol/schema/` from a directory of upstream
//!   Kafka message definitions (e.g. `../shared/kafka-protocol-spec`), keeping only the APIs the
//!   project uses and only the keys the generator reads.

mod emit;
mod schema;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The APIs (request + response pairs) the project generates code for.
const APIS: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeCluster",
    "DescribeProducers",
    "DescribeTransactions",
    "ListTransactions",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "DescribeTopicPartitions",
];

/// Non-API schema files: headers and the consumer protocol's embedded data types.
const EXTRA: &[&str] = &[
    "RequestHeader",
    "ResponseHeader",
    "ConsumerProtocolSubscription",
    "ConsumerProtocolAssignment",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn schema_dir() -> PathBuf {
    root().join("protocol/schema")
}

fn generated_dir() -> PathBuf {
    root().join("protocol/src/generated")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("codegen") if args.get(1).map(String::as_str) == Some("--check") => check(),
        Some("codegen") => write_generated(),
                Some("chaos") => chaos(&args[1..]),
        Some("import-schema") => match args.get(1) {
            Some(dir) => import(Path::new(dir)),
            None => Err("usage: cargo xtask import-schema DIR".into()),
        },
                _ => Err(
            "usage: cargo codegen [--check] | cargo xtask import-schema DIR | cargo xtask chaos [--minutes N]"
                .into(),
        ),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}

/// The fault soak: runs the producer's seeded fault schedules (`producer/tests/faults.rs`) in
/// rounds of 1,000 new seeds, release build, until `--minutes` (default 10) have passed, and
/// prints each round's summary line. Stops at the first failing seed (printed by the test).
fn chaos(args: &[String]) -> Result<(), String> {
    let minutes: u64 = match args {
        [] => 10,
        [flag, n] if flag == "--minutes" => n.parse().map_err(|_| format!("not a number: {n}"))?,
        _ => return Err("usage: cargo xtask chaos [--minutes N]".into()),
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(minutes * 60);
    let mut first = 0u64;
    while std::time::Instant::now() < until {
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .current_dir(root())
            .args([
                "test",
                "--release",
                "-p",
                "kafkawire-producer",
                "--test",
                "faults",
                "seeded",
            ])
            .args(["--", "--nocapture"])
            .env("KAFKAWIRE_CHAOS_FIRST_SEED", first.to_string())
            .env("KAFKAWIRE_CHAOS_SCHEDULES", "1000")
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("seeds {first}..{}: failed\n{text}", first + 1000));
        }
        for line in text.lines().filter(|l| l.starts_with("chaos:")) {
            println!("seeds {first}..{}: {line}", first + 1000);
        }
        first += 1000;
    }
    Ok(())
}

fn import(dir: &Path) -> Result<(), String> {
    let messages = if dir.join("messages").is_dir() {
        dir.join("messages")
    } else {
        dir.to_path_buf()
    };
    let out = schema_dir();
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = EXTRA.iter().map(|s| s.to_string()).collect();
    for api in APIS {
        names.push(format!("{api}Request"));
        names.push(format!("{api}Response"));
    }
    for name in &names {
        let src = messages.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", src.display()))?;
        let norm = schema::normalize(&v);
        let pretty = serde_json::to_string_pretty(&norm).map_err(|e| e.to_string())? + "\n";
        std::fs::write(out.join(format!("{name}.json")), pretty).map_err(|e| e.to_string())?;
    }
    let codes = dir.join("error_codes.json");
    if codes.exists() {
        std::fs::copy(&codes, out.join("error_codes.json")).map_err(|e| e.to_string())?;
    }
    println!(
        "imported {} schema files into {}",
        names.len(),
        out.display()
    );
    Ok(())
}

fn load(name: &str) -> Result<schema::Message, String> {
    let p = schema_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(schema::parse_message(&v))
}

fn rustfmt(src: String) -> Result<String, String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        stdin.write_all(src.as_bytes())
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer.join().expect("writer").map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// Every generated file, by file name, formatted.
fn generate() -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    let mut mods = Vec::new();
    let mut api_rows = Vec::new();
    for api in APIS {
        let req = load(&format!("{api}Request"))?;
        let resp = load(&format!("{api}Response"))?;
        let req_mod = emit::snake(&req.name);
        let resp_mod = emit::snake(&resp.name);
        files.insert(
            format!("{req_mod}.rs"),
            emit::message_module(&req, Some((api, &resp_mod))),
        );
        files.insert(format!("{resp_mod}.rs"), emit::message_module(&resp, None));
        mods.push((req_mod, req.name.clone()));
        mods.push((resp_mod, resp.name.clone()));
        api_rows.push((
            api.to_string(),
            req.api_key.expect("api key"),
            req.valid,
            req.flexible,
            resp.flexible,
        ));
    }
    for name in EXTRA {
        let m = load(name)?;
        let module = emit::snake(&m.name);
        files.insert(format!("{module}.rs"), emit::message_module(&m, None));
        mods.push((module, m.name.clone()));
    }
    files.insert("api_keys.rs".into(), api_keys(&api_rows));
    files.insert("error_codes.rs".into(), error_codes()?);

    let mut m = String::from(emit::HEADER);
    m.push_str(
        "//! Generated protocol code.\n\npub(crate) mod api_keys;\npub(crate) mod error_codes;\n",
    );
    for (module, _) in &mods {
        let _ = writeln!(m, "pub mod {module};");
    }
    m.push_str("\n/// Calls `visit` once per generated message type (tests: round trips over every version).\n#[cfg(test)]\npub(crate) fn for_each_message<V: crate::messages::testing::Visitor>(v: &mut V) {\n");
    for (module, name) in &mods {
        let _ = writeln!(m, "    v.visit::<{module}::{name}>();");
    }
    m.push_str("}\n");
    files.insert("mod.rs".into(), m);
    files
        .into_iter()
        .map(|(k, v)| Ok((k, rustfmt(v)?)))
        .collect()
}

fn api_keys(
    rows: &[(
        String,
        i16,
        schema::Versions,
        schema::Versions,
        schema::Versions,
    )],
) -> String {
    use schema::Versions;
    let mut o = String::from(emit::HEADER);
    o.push_str("//! API keys of the generated requests.\n\n/// A Kafka API, by its key (protocol guide, \"Api Keys\").\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum ApiKey {\n");
    for (api, key, ..) in rows {
        let _ = writeln!(o, "    /// API key {key}.\n    {api} = {key},");
    }
    o.push_str("}\n\nimpl ApiKey {\n    /// Every API this crate has codecs for.\n    pub const ALL: &'static [ApiKey] = &[\n");
    for (api, ..) in rows {
        let _ = writeln!(o, "        ApiKey::{api},");
    }
    o.push_str("    ];\n\n    /// The API with this key, if this crate has codecs for it.\n    pub fn from_i16(key: i16) -> Option<ApiKey> {\n        match key {\n");
    for (api, key, ..) in rows {
        let _ = writeln!(o, "            {key} => Some(ApiKey::{api}),");
    }
    o.push_str("            _ => None,\n        }\n    }\n\n    /// The API's name as Kafka spells it (e.g. `\"Fetch\"`).\n    pub fn name(self) -> &'static str {\n        match self {\n");
    for (api, ..) in rows {
        let _ = writeln!(o, "            ApiKey::{api} => {api:?},");
    }
    o.push_str("        }\n    }\n\n    /// The lowest and highest request versions this crate can encode and decode.\n    pub fn versions(self) -> (i16, i16) {\n        match self {\n");
    for (api, _, valid, ..) in rows {
        let Versions::Range(lo, hi) = valid else {
            panic!()
        };
        let _ = writeln!(o, "            ApiKey::{api} => ({lo}, {hi}),");
    }
    o.push_str("        }\n    }\n\n    /// The request header version for `version` of this API: 2 for flexible versions, else 1\n    /// (KIP-482).\n    pub fn request_header_version(self, version: i16) -> i16 {\n        match self {\n");
    for (api, _, _, rf, _) in rows {
        let body = match rf {
            Versions::Range(lo, _) => format!("if version >= {lo} {{ 2 }} else {{ 1 }}"),
            Versions::None => "1".into(),
        };
        let _ = writeln!(o, "            ApiKey::{api} => {body},");
    }
    o.push_str("        }\n    }\n\n    /// The response header version for `version` of this API: 1 for flexible versions, else 0;\n    /// ApiVersions responses always use 0 so that a client can read them before it knows the\n    /// broker's versions (KIP-511).\n    pub fn response_header_version(self, version: i16) -> i16 {\n        match self {\n");
    for (api, _, _, _, pf) in rows {
        let body = match pf {
            _ if api == "ApiVersions" => "0".into(),
            Versions::Range(lo, _) => format!("if version >= {lo} {{ 1 }} else {{ 0 }}"),
            Versions::None => "0".into(),
        };
        let _ = writeln!(o, "            ApiKey::{api} => {body},");
    }
    o.push_str("        }\n    }\n}\n\nimpl std::fmt::Display for ApiKey {\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n        f.write_str(self.name())\n    }\n}\n");
    o
}

fn error_codes() -> Result<String, String> {
    let p = schema_dir().join("error_codes.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let codes: Vec<(i64, String, bool)> = v
        .as_array()
        .ok_or("error_codes.json: not an array")?
        .iter()
        .map(|c| {
            (
                c["code"].as_i64().unwrap_or_default(),
                c["name"].as_str().unwrap_or_default().to_string(),
                c["retriable"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    let mut o = String::from(emit::HEADER);
    o.push_str("//! Kafka error codes (protocol guide, \"Error Codes\").\n\n/// An error code from a response. Every known code has a constant; unknown codes are kept as\n/// their number, so nothing a newer broker sends is lost.\n#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]\npub struct ErrorCode(pub i16);\n\nimpl ErrorCode {\n");
    for (code, name, retriable) in &codes {
        let _ = writeln!(
            o,
            "    /// Code {code}{}.\n    pub const {name}: ErrorCode = ErrorCode({code});",
            if *retriable { ", retriable" } else { "" }
        );
    }
    o.push_str("\n    /// The code's name as Kafka spells it, or `None` for a code this crate does not know.\n    pub fn name(self) -> Option<&'static str> {\n        match self.0 {\n");
    for (code, name, _) in &codes {
        let _ = writeln!(o, "            {code} => Some({name:?}),");
    }
    o.push_str("            _ => None,\n        }\n    }\n\n    /// Whether the same request may succeed if retried (the Java client's `RetriableException`\n    /// classification). Unknown codes are not retriable.\n    pub fn is_retriable(self) -> bool {\n        matches!(self.0, ");
    let retriable: Vec<String> = codes
        .iter()
        .filter(|c| c.2)
        .map(|c| c.0.to_string())
        .collect();
    o.push_str(&retriable.join(" | "));
    o.push_str(")\n    }\n}\n");
    Ok(o)
}

fn write_generated() -> Result<(), String> {
    let files = generate()?;
    let dir = generated_dir();
    if dir.exists() {
        for entry in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
            let p = entry.map_err(|e| e.to_string())?.path();
            if p.extension().is_some_and(|e| e == "rs") {
                std::fs::remove_file(&p).map_err(|e| e.to_string())?;
            }
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}

fn check() -> Result<(), String> {
    let stale = stale_files()?;
    if stale.is_empty() {
        println!("generated code is up to date");
        Ok(())
    } else {
        Err(format!(
            "generated code is stale ({}): run `cargo codegen`",
            stale.join(", ")
        ))
    }
}

fn stale_files() -> Result<Vec<String>, String> {
    let files = generate()?;
    let dir = generated_dir();
    let mut stale = Vec::new();
    for (name, text) in &files {
        if std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    for entry in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
        let name = entry
            .map_err(|e| e.to_string())?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".rs") && !files.contains_key(&name) {
            stale.push(format!("{name} (not generated)"));
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_code_is_not_stale() {
        let stale = super::stale_files().expect("generate");
        assert!(
            stale.is_empty(),
            "stale generated files: {stale:?}; run `cargo codegen`"
        );
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(super::emit::snake("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(
            super::emit::snake("ApiVersionsRequest"),
            "api_versions_request"
        );
        assert_eq!(super::emit::snake("TopicID"), "topic_id");
        assert_eq!(super::emit::snake("IsolationLevel"), "isolation_level");
    }
}
