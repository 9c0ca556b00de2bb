//! `kafkawire consume` options end to end, the built binary against a broker: `--output json`,
//! `--offset -N`, `--offset @MS`, escaping of unprintable bytes (and `--raw`) and
//! `--isolation-level`.
//!
//! Against Tansu where it shows the behaviour (each test starts its own broker on a free
//! 127.0.0.1 port; records are written with the library). Against the in-process mock broker
//! for what Tansu cannot show: ListOffsets by the records' own timestamps (Tansu looks up its
//! receive time) and aborted transactions hidden by read_committed (Tansu's fetch never lists
//! aborted transactions). See /work/shared/TANSU.md.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use kafkawire::protocol::messages::ApiKey;
use kafkawire::protocol::messages::fetch_response::{AbortedTransaction, FetchResponse};
use kafkawire::protocol::records::{EndTxnMarker, RecordBatchBuilder, control_batch};
use kafkawire::{Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord};
use kafkawire_testkit::TansuBroker;
use kafkawire_testkit::mock::{Action, MockCluster};
use tokio::runtime::Runtime;

/// How long one invocation may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);

/// What a finished `kafkawire` invocation printed (standard output as bytes: `--raw` output
/// need not be UTF-8).
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert!(
            self.status.success(),
            "{what}: kafkawire failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        );
        self
    }

    /// Asserts the command failed with `needle` in its error output.
    fn failed_with(self, what: &str, needle: &str) {
        assert!(
            !self.status.success(),
            "{what}: kafkawire succeeded:\n{}",
            String::from_utf8_lossy(&self.stdout)
        );
        assert!(
            self.stderr.contains(needle),
            "{what}: stderr should contain {needle:?}:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{what}: panicked:\n{}",
            self.stderr
        );
    }

    /// Standard output as text (lossy), one entry per line.
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Runs `kafkawire --bootstrap BOOTSTRAP ARGS...` to completion (at most [`COMMAND_TIMEOUT`];
/// killed and failed after that).
fn kafkawire(bootstrap: &str, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafkawire"))
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .env_remove("KAFKAWIRE_BOOTSTRAP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the kafkawire binary");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("check kafkawire") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kafkawire {args:?} did not finish within {COMMAND_TIMEOUT:?} and was killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A Tansu broker and a library client of it.
struct Tansu {
    // Field order: the client goes before the runtime it runs on, and both before the broker.
    client: Client,
    rt: Runtime,
    broker: TansuBroker,
}

impl Tansu {
    fn start() -> Tansu {
        let broker = TansuBroker::start().unwrap_or_else(|e| panic!("cannot start tansu: {e}"));
        let rt = runtime();
        let client = rt.block_on(async {
            Client::connect(ClientConfig::new(&broker.bootstrap()))
                .await
                .unwrap_or_else(|e| panic!("connect to {}: {e}", broker.bootstrap()))
        });
        Tansu { client, rt, broker }
    }

    /// Creates `topic` with `partitions` partitions.
    fn topic(&self, topic: &str, partitions: i32) {
        self.rt.block_on(async {
            Admin::new(&self.client)
                .create_topics(&[NewTopic::new(topic, partitions)], Duration::from_secs(10))
                .await
                .expect("create the topic");
            self.client
                .refresh_metadata(&[topic])
                .await
                .expect("metadata of the new topic");
        });
    }

    /// Writes `records` (in one `send_batch`, so several share a batch) and returns their
    /// (partition, offset), checking each partition's offsets count up from 0.
    fn produce(&self, records: Vec<ProducerRecord>) -> Vec<(i32, i64)> {
        self.rt.block_on(async {
            let producer =
                Producer::new(&self.client, ProducerConfig::default()).expect("a producer");
            let written = producer.send_batch(records).await.expect("produce");
            producer
                .close(Duration::from_secs(10))
                .await
                .expect("close the producer");
            written.iter().map(|m| (m.partition, m.offset)).collect()
        })
    }

    fn run(&self, args: &[&str]) -> Run {
        kafkawire(&self.broker.bootstrap(), args)
    }
}

/// A value no UTF-8 decoder accepts, with a NUL and a newline in it.
const BINARY: &[u8] = &[0x00, 0xff, b'\n', 0x80, 0x41];

#[test]
fn json_output_is_one_parseable_object_per_record_with_binary_as_base64() {
    let tansu = Tansu::start();
    tansu.topic("j", 1);
    let written = tansu.produce(vec![
        ProducerRecord::new("j", "hello \"world\"")
            .key("user-1")
            .header("source", "cli")
            .header("bin", Bytes::from_static(&[0xfe, 0x01]))
            .timestamp(1_700_000_000_000)
            .partition(0),
        ProducerRecord::new("j", Bytes::from_static(BINARY))
            .timestamp(1_700_000_000_500)
            .partition(0),
    ]);
    assert_eq!(written, [(0, 0), (0, 1)]);
    let run = tansu
        .run(&[
            "consume",
            "--topic",
            "j",
            "--exit-at-end",
            "--output",
            "json",
        ])
        .ok("consume --output json");
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "one line per record:\n{lines:#?}");
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();

    let first = &records[0];
    assert_eq!(first["topic"], "j");
    assert_eq!(first["partition"], 0);
    assert_eq!(first["offset"], 0);
    assert_eq!(first["timestamp"], 1_700_000_000_000_i64);
    assert_eq!(first["timestamp_type"], "CreateTime");
    assert_eq!(first["key"], "user-1");
    assert_eq!(first["key_encoding"], "utf8");
    assert_eq!(first["value"], "hello \"world\"");
    assert_eq!(first["value_encoding"], "utf8");
    assert_eq!(
        first["headers"],
        serde_json::json!([
            {"key": "source", "value": "cli", "value_encoding": "utf8"},
            {"key": "bin", "value": "/gE=", "value_encoding": "base64"},
        ])
    );

    let second = &records[1];
    assert_eq!(second["offset"], 1);
    assert_eq!(second["timestamp"], 1_700_000_000_500_i64);
    assert_eq!(second["key"], serde_json::Value::Null);
    assert_eq!(second["key_encoding"], serde_json::Value::Null);
    assert_eq!(second["value_encoding"], "base64");
    let value = base64::engine::general_purpose::STANDARD
        .decode(second["value"].as_str().expect("a base64 string"))
        .expect("valid base64");
    assert_eq!(value, BINARY, "the value decodes to the bytes written");
    assert_eq!(second["headers"], serde_json::json!([]));
}

#[test]
fn offset_minus_n_reads_the_last_n_records_of_each_partition() {
    let tansu = Tansu::start();
    tansu.topic("tail", 2);
    // Partition 0 gets 10 records, partition 1 only 3 (fewer than N).
    let records = [(0, 10), (1, 3)]
        .into_iter()
        .flat_map(|(p, n)| {
            (0..n).map(move |o| ProducerRecord::new("tail", format!("p{p}-v{o}")).partition(p))
        })
        .collect();
    assert_eq!(tansu.produce(records).len(), 13);
    let fmt = ["--format", "%p@%o %v\\n"];
    let tail = |args: &[&str]| {
        let mut all = vec!["consume", "--topic", "tail", "--exit-at-end"];
        all.extend_from_slice(&fmt);
        all.extend_from_slice(args);
        let mut lines = tansu.run(&all).ok(&format!("{args:?}")).lines();
        lines.sort();
        lines
    };
    let want = [
        "0@6 p0-v6",
        "0@7 p0-v7",
        "0@8 p0-v8",
        "0@9 p0-v9",
        "1@0 p1-v0",
        "1@1 p1-v1",
        "1@2 p1-v2",
    ];
    assert_eq!(tail(&["--offset", "-4"]), want);
    assert_eq!(tail(&["--offset=-4"]), want);
    assert_eq!(
        tail(&["--offset", "-2", "--partition", "0"]),
        ["0@8 p0-v8", "0@9 p0-v9"]
    );
    assert_eq!(tail(&["--offset", "-1"]), ["0@9 p0-v9", "1@2 p1-v2"]);
    assert!(tail(&["--offset", "-0"]).is_empty());
    // The other forms still work.
    assert_eq!(
        tail(&["--offset", "8", "--partition", "0"]),
        ["0@8 p0-v8", "0@9 p0-v9"]
    );
    assert_eq!(tail(&["--offset", "earliest"]).len(), 13);
}

#[test]
fn unprintable_bytes_are_escaped_unless_raw() {
    let tansu = Tansu::start();
    tansu.topic("esc", 1);
    let value: &[u8] = b"a\x00b\nc\\d\xff\te";
    tansu.produce(vec![
        ProducerRecord::new("esc", Bytes::from_static(value))
            .key("k\x1b[2J")
            .header("h", Bytes::from_static(b"x\ny"))
            .partition(0),
    ]);
    let base = ["consume", "--topic", "esc", "--exit-at-end"];
    let run = |extra: &[&str]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        tansu.run(&all).ok(&format!("{extra:?}")).stdout
    };
    assert_eq!(run(&[]), b"a\\x00b\\nc\\\\d\\xff\\te\n");
    assert_eq!(run(&["--raw"]), b"a\x00b\nc\\d\xff\te\n");
    assert_eq!(
        run(&["--format", "%k|%v|%h\\n"]),
        b"k\\x1b[2J|a\\x00b\\nc\\\\d\\xff\\te|h=x\\ny\n"
    );
    assert_eq!(
        run(&["--format", "%k|%v|%h\\n", "--raw"]),
        b"k\x1b[2J|a\x00b\nc\\d\xff\te|h=x\ny\n"
    );
}

#[test]
fn read_committed_is_accepted_and_reads_committed_transactions() {
    let tansu = Tansu::start();
    tansu.topic("txn", 1);
    tansu.rt.block_on(async {
        let producer = Producer::builder(&tansu.client)
            .transactional_id("cli-consume-options")
            .build()
            .expect("a transactional producer");
        producer.init_transactions().await.expect("init");
        producer.begin_transaction().expect("begin");
        for v in ["t0", "t1"] {
            producer
                .send(ProducerRecord::new("txn", v).partition(0))
                .await
                .expect("send");
        }
        producer.commit_transaction().await.expect("commit");
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
    });
    for level in ["read_committed", "read_uncommitted", "read-committed"] {
        let run = tansu
            .run(&[
                "consume",
                "--topic",
                "txn",
                "--exit-at-end",
                "--isolation-level",
                level,
            ])
            .ok(level);
        // The commit marker is not a record.
        assert_eq!(run.lines(), ["t0", "t1"], "{level}");
    }
    tansu
        .run(&["consume", "--topic", "txn", "--isolation-level", "dirty"])
        .failed_with("a bad level", "read_committed");
}

// ---------------------------------------------------------------------------------------------
// Against the mock broker.

/// A batch of one record, value `value`, timestamp `ts` (CreateTime).
fn one_record(value: &str, ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.push(ts, None, Some(value.as_bytes()), &[]).expect("push");
    b.build().expect("build")
}

#[test]
fn offset_at_a_timestamp_starts_at_the_first_record_that_recent() {
    let rt = runtime();
    let cluster = rt.block_on(MockCluster::start(1));
    cluster.create_topic("ts", 2);
    // Partition 0: timestamps 1000, 2000, 3000, 4000; partition 1: 500, 2500.
    for (p, stamps) in [
        (0, &[1_000, 2_000, 3_000, 4_000][..]),
        (1, &[500, 2_500][..]),
    ] {
        for (o, ts) in stamps.iter().enumerate() {
            cluster
                .append("ts", p, &one_record(&format!("p{p}-{ts}"), *ts))
                .expect("append");
            assert_eq!(cluster.high_watermark("ts", p), Some(o as i64 + 1));
        }
    }
    let at = |ms: &str| {
        let run = kafkawire(
            &cluster.bootstrap(),
            &[
                "consume",
                "--topic",
                "ts",
                "--exit-at-end",
                "--offset",
                ms,
                "--format",
                "%p@%o %T\\n",
            ],
        )
        .ok(ms);
        let mut lines = run.lines();
        lines.sort();
        lines
    };
    assert_eq!(
        at("@2000"),
        ["0@1 2000", "0@2 3000", "0@3 4000", "1@1 2500"]
    );
    assert_eq!(at("@2001"), ["0@2 3000", "0@3 4000", "1@1 2500"]);
    assert_eq!(at("@0").len(), 6);
    // Newer than every record: each partition starts at its end, so nothing is printed.
    assert!(at("@5000").is_empty());
    for bad in ["@", "@-1", "@yesterday"] {
        kafkawire(
            &cluster.bootstrap(),
            &["consume", "--topic", "ts", "--offset", bad],
        )
        .failed_with(bad, "--offset");
    }
}

#[test]
fn read_committed_hides_aborted_transactions() {
    let rt = runtime();
    let cluster = rt.block_on(MockCluster::start(1));
    cluster.create_topic("t", 1);
    let batch = |pid: i64, base: &str, n: usize| {
        let mut b = RecordBatchBuilder::new();
        b.producer(pid, 0, 0).transactional(true);
        for i in 0..n {
            b.push(
                1_700_000_000_000,
                None,
                Some(format!("{base}{i}").as_bytes()),
                &[],
            )
            .expect("push");
        }
        b.build().expect("build")
    };
    let marker = |base: i64, pid: i64, commit: bool| {
        control_batch(
            base,
            0,
            pid,
            0,
            0,
            EndTxnMarker {
                commit,
                coordinator_epoch: 0,
            },
        )
    };
    // Offsets 0-1: producer 1's transaction, aborted at 4; 2-3: producer 2's, committed at 5;
    // 6: a record outside any transaction.
    for b in [
        batch(1, "aborted-", 2),
        batch(2, "committed-", 2),
        marker(4, 1, false),
        marker(5, 2, true),
        one_record("plain", 1_700_000_000_000),
    ] {
        cluster.append("t", 0, &b).expect("append");
    }
    let consume = |level: &str| {
        // The broker's answers list producer 1's aborted transaction from offset 0.
        cluster.clear_scripts();
        cluster.script_n(ApiKey::Fetch, 50, || {
            Action::modify(|r: &mut FetchResponse| {
                for p in r.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    p.aborted_transactions = Some(vec![AbortedTransaction {
                        producer_id: 1,
                        first_offset: 0,
                        ..Default::default()
                    }]);
                }
            })
        });
        kafkawire(
            &cluster.bootstrap(),
            &[
                "consume",
                "--topic",
                "t",
                "--exit-at-end",
                "--isolation-level",
                level,
            ],
        )
        .ok(level)
        .lines()
    };
    assert_eq!(
        consume("read_committed"),
        ["committed-0", "committed-1", "plain"]
    );
    assert_eq!(
        consume("read_uncommitted"),
        [
            "aborted-0",
            "aborted-1",
            "committed-0",
            "committed-1",
            "plain"
        ]
    );
}

#[test]
fn conflicting_or_bad_options_are_refused_with_a_clear_error() {
    let rt = runtime();
    let cluster = rt.block_on(MockCluster::start(1));
    cluster.create_topic("t", 1);
    let fails = |args: &[&str], needle: &str| {
        let mut all = vec!["consume", "--topic", "t"];
        all.extend_from_slice(args);
        kafkawire(&cluster.bootstrap(), &all).failed_with(&format!("{args:?}"), needle);
    };
    fails(
        &["--output", "json", "--raw"],
        "--raw applies to --output text only",
    );
    fails(
        &["--output", "json", "--format", "%v"],
        "--format applies to --output text only",
    );
    fails(&["--output", "yaml"], "json");
    fails(&["--offset", "-x"], "--offset -N takes a whole number");
    fails(&["--offset", "-"], "--offset -N takes a whole number");
    fails(&["--offset", "soon"], "-N (the last N records)");
    fails(
        &["--group", "g", "--offset", "-3"],
        "with --group, --offset must be",
    );
    fails(
        &["--group", "g", "--offset", "@1000"],
        "with --group, --offset must be",
    );
}
