//! The built binary's logs and statistics against the in-process mock broker: warnings only
//! by default, `-v` shows each connection set up, `--debug AREA` one area's debug lines,
//! `KAFKAWIRE_LOG` a filter of its own, and `--stats-interval-ms` JSON lines of statistics.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use kafkawire_testkit::mock::MockCluster;

/// Runs `kafkawire --bootstrap BOOTSTRAP ARGS...` with `env` and `stdin`, off the runtime's
/// threads (the mock broker answers on them meanwhile).
async fn kafkawire(
    bootstrap: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafkawire"));
    cmd.args(["--bootstrap", bootstrap, "--request-timeout-ms", "5000"])
        .args(args)
        .env_remove("KAFKAWIRE_LOG")
        .env_remove("RUST_LOG")
        .env_remove("KAFKAWIRE_BOOTSTRAP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let stdin = stdin.to_owned();
    let out: Output = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("run kafkawire");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait for kafkawire")
    })
    .await
    .expect("the child's thread");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbosity_and_debug_areas_choose_what_is_logged() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("logged", 1);
    let b = cluster.bootstrap();

    // Default: warnings only, nothing about a healthy connection.
    let (ok, stdout, stderr) = kafkawire(&b, &["metadata"], &[], "").await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("logged"), "{stdout}");
    assert!(!stderr.contains("connected"), "{stderr}");

    // -v: one INFO line per connection set up, naming the broker.
    let (ok, _, stderr) = kafkawire(&b, &["-v", "metadata"], &[], "").await;
    assert!(ok, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(" INFO ") && l.contains("connected"))
        .unwrap_or_else(|| panic!("no connection line in:\n{stderr}"));
    assert!(
        line.contains(&format!("broker=\"{b}\"")) || line.contains(&b),
        "{line}"
    );
    assert!(line.contains("apis="), "{line}");
    assert!(!stderr.contains("DEBUG"), "{stderr}");

    // --debug connection: the handshake step by step, and only that area.
    let (ok, _, stderr) = kafkawire(&b, &["--debug", "connection", "metadata"], &[], "").await;
    assert!(ok, "{stderr}");
    for step in [
        "connecting",
        "TCP connected",
        "ApiVersions answered",
        "connected",
    ] {
        assert!(stderr.contains(step), "no {step:?} in:\n{stderr}");
    }
    assert!(stderr.contains("kafkawire_client::connection"), "{stderr}");
    assert!(!stderr.contains("metadata refreshed"), "{stderr}");

    // --debug metadata,protocol (the flag is global: it may follow the subcommand).
    let (ok, _, stderr) =
        kafkawire(&b, &["metadata", "--debug", "metadata,protocol"], &[], "").await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("metadata refreshed"), "{stderr}");
    assert!(stderr.contains("request written"), "{stderr}");
    assert!(
        stderr.contains("api=\"Metadata\"") || stderr.contains("api=Metadata"),
        "{stderr}"
    );
    assert!(stderr.contains("response read"), "{stderr}");
    assert!(!stderr.contains("TCP connected"), "{stderr}");

    // An unknown area is refused with the list of areas.
    let (ok, _, stderr) = kafkawire(&b, &["--debug", "nonsense", "metadata"], &[], "").await;
    assert!(!ok);
    assert!(stderr.contains("connection"), "{stderr}");

    // KAFKAWIRE_LOG replaces the level, and wins over RUST_LOG.
    let (ok, _, stderr) = kafkawire(
        &b,
        &["metadata"],
        &[
            ("KAFKAWIRE_LOG", "kafkawire_client::connection=debug"),
            ("RUST_LOG", "off"),
        ],
        "",
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("ApiVersions answered"), "{stderr}");
    let (ok, _, stderr) = kafkawire(
        &b,
        &["metadata"],
        &[("RUST_LOG", "kafkawire_client=info")],
        "",
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("connected"), "{stderr}");
}

/// The JSON lines of `stderr` that hold statistics.
fn stats_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"stats_ts_ms\":"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_interval_prints_json_statistics_lines() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("measured", 1);
    let b = cluster.bootstrap();

    // Any command: the client's counters, at least once (at the end).
    let (ok, _, stderr) = kafkawire(&b, &["--stats-interval-ms", "50", "metadata"], &[], "").await;
    assert!(ok, "{stderr}");
    let lines = stats_lines(&stderr);
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no stats in:\n{stderr}"));
    let broker = &last["client"]["brokers"][0];
    assert_eq!(broker["address"], b.as_str());
    // The client's first Metadata, then the command's.
    assert_eq!(broker["apis"]["Metadata"]["requests"], 2, "{broker}");
    assert_eq!(broker["connects"], 1);
    assert!(last.get("producer").is_none());

    // produce: the producer's counters too.
    let input: String = (0..20).map(|i| format!("line {i}\n")).collect();
    let (ok, _, stderr) = kafkawire(
        &b,
        &[
            "produce",
            "--topic",
            "measured",
            "--stats-interval-ms",
            "20",
        ],
        &[],
        &input,
    )
    .await;
    assert!(ok, "{stderr}");
    let lines = stats_lines(&stderr);
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no stats in:\n{stderr}"));
    let producer = &last["producer"];
    assert_eq!(producer["records_acked"], 20, "{producer}");
    assert_eq!(producer["buffered_records"], 0, "{producer}");
    assert_eq!(producer["failed_records"], 0, "{producer}");
    assert!(
        producer["batches_sent"].as_u64().unwrap() >= 1,
        "{producer}"
    );
    assert!(
        last["client"]["brokers"][0]["apis"]["Produce"]["requests"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(cluster.record_count("measured", 0), 20);

    // consume: the consumer's counters too, lag 0 at the end.
    let (ok, stdout, stderr) = kafkawire(
        &b,
        &[
            "consume",
            "--topic",
            "measured",
            "--offset",
            "earliest",
            "--exit-at-end",
            "--stats-interval-ms",
            "20",
        ],
        &[],
        "",
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 20, "{stdout}");
    let lines = stats_lines(&stderr);
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no stats in:\n{stderr}"));
    let consumer = &last["consumer"];
    assert_eq!(consumer["records_returned"], 20, "{consumer}");
    assert_eq!(consumer["total_lag"], 0, "{consumer}");
    let partition = &consumer["partitions"][0];
    assert_eq!(
        (
            &partition["topic"],
            &partition["position"],
            &partition["lag"]
        ),
        (
            &serde_json::json!("measured"),
            &serde_json::json!(20),
            &serde_json::json!(0)
        ),
        "{consumer}"
    );
    assert!(
        consumer["fetch_requests"].as_u64().unwrap() >= 1,
        "{consumer}"
    );
    assert!(last.get("producer").is_none());

    // An interval of 0 is refused.
    let (ok, _, stderr) = kafkawire(&b, &["--stats-interval-ms", "0", "metadata"], &[], "").await;
    assert!(!ok, "{stderr}");
}
