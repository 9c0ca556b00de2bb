//! `kafkawire groups reset-offsets` end to end: the built binary against a real (Tansu) broker,
//! then `kafkawire consume --group` reading from the new offsets.
//!
//! Each test starts its own Tansu broker on a free 127.0.0.1 port. Records are written and
//! committed offsets read back with the library, so every assertion about the CLI is checked
//! against the broker's state, not against the CLI's own report of it.
//!
//! Tansu completes a JoinGroup only after about session_timeout / 2, and `consume --group` uses a
//! 10 s session, so every group consume here costs about 5 s; there are three in all, two of them
//! in different tests that run in parallel.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use kafkawire::{
    Admin, Client, ClientConfig, GroupMembership, NewTopic, OffsetToCommit, Producer,
    ProducerConfig, ProducerRecord,
};
use kafkawire_testkit::TansuBroker;
use tokio::runtime::Runtime;

/// The topic every test uses (each has a broker of its own).
const TOPIC: &str = "reset-me";

/// Records written to each partition: different counts, so that a mix-up of partitions or of
/// their end offsets shows.
const RECORDS: [(i32, i64); 2] = [(0, 10), (1, 7)];

/// How long one CLI invocation may take (a group consume needs about 5 s on Tansu).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);

/// The value of record `offset` of `partition`.
fn value(partition: i32, offset: i64) -> String {
    format!("p{partition}-v{offset}")
}

/// What a finished `kafkawire` invocation printed.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts the command succeeded and returns it.
    fn ok(self, what: &str) -> Run {
        assert!(
            self.status.success(),
            "{what}: kafkawire failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A `kafkawire` process running in the background, killed (by its own PID) if still running
/// when dropped, so that a failing assertion does not leave it behind.
struct Background {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Background {
    /// Whether the process has exited already.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("check the kafkawire process")
    }

    /// Waits up to `timeout` for the process to exit and returns what it printed; kills it and
    /// fails the test when it does not exit in time.
    fn wait(mut self, timeout: Duration, what: &str) -> Run {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let (stdout, stderr) = self.output();
                panic!(
                    "{what}: kafkawire did not finish within {timeout:?} and was killed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let (stdout, stderr) = self.output();
        Run {
            status,
            stdout,
            stderr,
        }
    }

    /// What the process printed (call only once it has exited).
    fn output(&mut self) -> (String, String) {
        let join = |h: Option<JoinHandle<String>>| {
            h.map(|h| h.join().expect("output reader thread"))
                .unwrap_or_default()
        };
        (join(self.stdout.take()), join(self.stderr.take()))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Tansu broker with the test topic written, a library client for checking, and the built
/// `kafkawire` binary pointed at the broker.
struct Env {
    // Field order: the client goes before the runtime it runs on, and both before the broker.
    client: Client,
    rt: Runtime,
    broker: TansuBroker,
}

impl Env {
    /// Starts a broker, creates [`TOPIC`] with two partitions and writes [`RECORDS`] to it with
    /// the library's producer, each record's value naming its partition and offset.
    fn start() -> Env {
        let broker = TansuBroker::start().unwrap_or_else(|e| panic!("cannot start tansu: {e}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = rt.block_on(async {
            let client = Client::connect(ClientConfig::new(&broker.bootstrap()))
                .await
                .unwrap_or_else(|e| panic!("connect to {}: {e}", broker.bootstrap()));
            Admin::new(&client)
                .create_topics(&[NewTopic::new(TOPIC, 2)], Duration::from_secs(10))
                .await
                .expect("create the topic");
            client
                .refresh_metadata(&[TOPIC])
                .await
                .expect("metadata of the new topic");
            let producer =
                Producer::new(&client, ProducerConfig::default()).expect("create a producer");
            let records = RECORDS
                .iter()
                .flat_map(|&(p, n)| {
                    (0..n).map(move |o| ProducerRecord::new(TOPIC, value(p, o)).partition(p))
                })
                .collect();
            let written = producer.send_batch(records).await.expect("produce");
            producer
                .close(Duration::from_secs(10))
                .await
                .expect("close the producer");
            // The expected values assume each partition's records got offsets 0, 1, 2, ...
            let mut next: BTreeMap<i32, i64> = BTreeMap::new();
            for m in &written {
                let o = next.entry(m.partition).or_default();
                assert_eq!(
                    m.offset, *o,
                    "offset of a record written to {}",
                    m.partition
                );
                *o += 1;
            }
            assert_eq!(next, RECORDS.into_iter().collect(), "records written");
            client
        });
        Env { client, rt, broker }
    }

    /// Starts `kafkawire --bootstrap BROKER ARGS...` with its output captured.
    fn spawn(&self, args: &[&str]) -> Background {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafkawire"))
            .arg("--bootstrap")
            .arg(self.broker.bootstrap())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the kafkawire binary");
        let reader = |mut r: Box<dyn Read + Send>| {
            thread::spawn(move || {
                let mut s = String::new();
                r.read_to_string(&mut s).expect("read kafkawire's output");
                s
            })
        };
        let stdout = child.stdout.take().map(|o| reader(Box::new(o)));
        let stderr = child.stderr.take().map(|e| reader(Box::new(e)));
        Background {
            child,
            stdout,
            stderr,
        }
    }

    /// Runs `kafkawire --bootstrap BROKER ARGS...` to completion (at most [`COMMAND_TIMEOUT`]).
    fn run(&self, args: &[&str]) -> Run {
        self.spawn(args)
            .wait(COMMAND_TIMEOUT, &format!("kafkawire {}", args.join(" ")))
    }

    /// Runs `kafkawire groups reset-offsets GROUP --topic TOPIC ARGS...`, which must succeed,
    /// and returns its standard output.
    fn reset(&self, group: &str, args: &[&str]) -> String {
        let mut all = vec!["groups", "reset-offsets", group, "--topic", TOPIC];
        all.extend_from_slice(args);
        let run = self
            .run(&all)
            .ok(&format!("reset-offsets {}", args.join(" ")));
        let execute = args.contains(&"--execute");
        let note = if execute {
            "committed 2 offsets for group"
        } else {
            "dry run: nothing changed"
        };
        assert!(
            run.stderr.contains(note),
            "reset-offsets {}: stderr should say {note:?}:\n{}",
            args.join(" "),
            run.stderr
        );
        run.stdout
    }

    /// The group's committed offsets of [`TOPIC`], by partition, read with the library.
    fn committed(&self, group: &str) -> BTreeMap<i32, i64> {
        self.rt
            .block_on(Admin::new(&self.client).committed_offsets(group, None))
            .unwrap_or_else(|e| panic!("committed offsets of {group}: {e}"))
            .into_iter()
            .map(|((t, p), o)| {
                assert_eq!(t, TOPIC, "group {group} has offsets for another topic");
                (p, o)
            })
            .collect()
    }

    /// Commits offsets for the group with the library, as no member of it.
    fn commit(&self, group: &str, offsets: &[(i32, i64)]) {
        let plan: Vec<OffsetToCommit> = offsets
            .iter()
            .map(|&(partition, offset)| OffsetToCommit {
                topic: TOPIC.to_owned(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: None,
            })
            .collect();
        self.rt
            .block_on(Admin::new(&self.client).commit_offsets(
                group,
                &GroupMembership::none(),
                &plan,
            ))
            .unwrap_or_else(|e| panic!("commit offsets for {group}: {e}"));
    }

    /// Each partition's high watermark, read with a fetch (exact on Tansu, unlike ListOffsets).
    fn end_offsets(&self) -> BTreeMap<i32, i64> {
        let admin = Admin::new(&self.client);
        RECORDS
            .iter()
            .map(|&(p, _)| {
                let end = self
                    .rt
                    .block_on(admin.high_watermark(TOPIC, p))
                    .unwrap_or_else(|e| panic!("high watermark of {TOPIC}-{p}: {e}"));
                (p, end)
            })
            .collect()
    }
}

/// Offsets by partition, from `[(partition, offset)]`.
fn offsets(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    pairs.iter().copied().collect()
}

/// One line of a reset plan: partition, old offset, new offset.
type Row = (i32, i64, i64);

/// The plan `reset-offsets` prints: one `TOPIC\tPARTITION\tOLD -> NEW` line per partition.
fn plan(rows: &[Row]) -> String {
    rows.iter()
        .map(|(p, old, new)| format!("{TOPIC}\t{p}\t{old} -> {new}\n"))
        .collect()
}

/// Format for `consume`: partition, offset and value of each record.
const CONSUME_FORMAT: &str = "%p %o %v\\n";

/// Parses what `consume --format CONSUME_FORMAT` printed into (offset, value) per partition, in
/// the order printed.
fn consumed(stdout: &str) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for line in stdout.lines() {
        let mut it = line.splitn(3, ' ');
        let (Some(p), Some(o), Some(v)) = (it.next(), it.next(), it.next()) else {
            panic!("unexpected consume output line {line:?} in:\n{stdout}");
        };
        let p: i32 = p
            .parse()
            .unwrap_or_else(|_| panic!("partition in {line:?}"));
        let o: i64 = o.parse().unwrap_or_else(|_| panic!("offset in {line:?}"));
        out.entry(p).or_default().push((o, v.to_owned()));
    }
    out
}

/// The records of each partition from `from[partition]` to the end of what was written.
fn expected_records(from: &BTreeMap<i32, i64>) -> BTreeMap<i32, Vec<(i64, String)>> {
    RECORDS
        .iter()
        .map(|&(p, n)| (p, (from[&p]..n).map(|o| (o, value(p, o))).collect()))
        .filter(|(_, records): &(i32, Vec<_>)| !records.is_empty())
        .collect()
}

/// Consume the whole topic as a group; dry-run and execute a reset to offset 3; consume again
/// from there; then every other kind of target, each checked against the committed offsets.
#[test]
fn reset_offsets_then_consume_from_the_new_offsets() {
    let env = Env::start();
    let group = "resetters";
    let ends = offsets(&RECORDS);
    let starts = offsets(&[(0, 0), (1, 0)]);
    assert_eq!(env.end_offsets(), ends, "high watermarks after producing");

    // 1. Read everything as a member of the group: the committed offsets end at the ends.
    let total = RECORDS.iter().map(|(_, n)| n).sum::<i64>().to_string();
    let run = env
        .run(&[
            "consume",
            "--topic",
            TOPIC,
            "--group",
            group,
            "--offset",
            "earliest",
            "--max-messages",
            &total,
            "--format",
            CONSUME_FORMAT,
        ])
        .ok("first group consume");
    assert_eq!(
        consumed(&run.stdout),
        expected_records(&starts),
        "the first group consume prints every record once, in order per partition"
    );
    assert_eq!(
        env.committed(group),
        ends,
        "committed after the first consume"
    );

    // 2. A dry run prints old -> new for every partition and changes nothing.
    let to3 = offsets(&[(0, 3), (1, 3)]);
    assert_eq!(
        env.reset(group, &["--to-offset", "3"]),
        plan(&[(0, 10, 3), (1, 7, 3)]),
        "dry run plan"
    );
    assert_eq!(env.committed(group), ends, "a dry run must not commit");

    // A bad target fails before anything is committed.
    let bad = env.run(&[
        "groups",
        "reset-offsets",
        group,
        "--topic",
        TOPIC,
        "--to-datetime",
        "yesterday-ish",
        "--execute",
    ]);
    assert!(
        !bad.status.success() && bad.stderr.contains("RFC 3339"),
        "an unparsable --to-datetime must fail with a message: {bad:?}"
    );
    assert_eq!(env.committed(group), ends, "after a failed reset");

    // 3. --execute commits the same plan.
    assert_eq!(
        env.reset(group, &["--to-offset", "3", "--execute"]),
        plan(&[(0, 10, 3), (1, 7, 3)]),
        "executed plan"
    );
    assert_eq!(env.committed(group), to3, "committed after --execute");

    // 4. The group now reads exactly the records from offset 3 on, and commits the ends again.
    // --exit-at-end: stop at the high watermarks, so any extra or missing record shows (and an
    // unreset group, already at the end, would print nothing instead of hanging).
    let run = env
        .run(&[
            "consume",
            "--topic",
            TOPIC,
            "--group",
            group,
            "--exit-at-end",
            "--format",
            CONSUME_FORMAT,
        ])
        .ok("group consume after the reset");
    assert_eq!(
        consumed(&run.stdout),
        expected_records(&to3),
        "the group consume after the reset prints exactly offsets 3.. of each partition"
    );
    assert_eq!(
        env.committed(group),
        ends,
        "committed after consuming again"
    );

    // 5. The other targets, each executed and checked against the broker. The partitions have
    // different ends (10 and 7), so the clamping is checked per partition.
    let steps: [(&[&str], [Row; 2]); 7] = [
        // Back by 2 from the committed offsets.
        (&["--shift-by", "-2"], [(0, 10, 8), (1, 7, 5)]),
        // Back by 6: partition 1 is clamped to its start.
        (&["--shift-by", "-6"], [(0, 8, 2), (1, 5, 0)]),
        // To the high watermark. (All of a partition's records went in one batch, so Tansu's
        // ListOffsets LATEST would answer 1 here: this checks the fetch-based end.)
        (&["--to-latest"], [(0, 2, 10), (1, 0, 7)]),
        (&["--to-earliest"], [(0, 10, 0), (1, 7, 0)]),
        // Forward past the end: clamped to each partition's end.
        (&["--shift-by", "100"], [(0, 0, 10), (1, 0, 7)]),
        // A time before every record: the start of each partition.
        (
            &["--to-datetime", "2001-02-03T04:05:06Z"],
            [(0, 10, 0), (1, 7, 0)],
        ),
        // An offset past the end: clamped to each partition's end.
        (&["--to-offset", "50"], [(0, 0, 10), (1, 0, 7)]),
    ];
    for (args, rows) in steps {
        let what = args.join(" ");
        let before = env.committed(group);
        let old = offsets(&rows.map(|(p, old, _)| (p, old)));
        assert_eq!(before, old, "committed before {what}");
        assert_eq!(
            env.reset(group, args),
            plan(&rows),
            "dry-run plan of {what}"
        );
        assert_eq!(
            env.committed(group),
            old,
            "a dry run of {what} must not commit"
        );
        let mut exec = args.to_vec();
        exec.push("--execute");
        assert_eq!(
            env.reset(group, &exec),
            plan(&rows),
            "executed plan of {what}"
        );
        let new = offsets(&rows.map(|(p, _, new)| (p, new)));
        assert_eq!(
            env.committed(group),
            new,
            "committed after {what} --execute"
        );
    }
    // Not checked: --to-datetime after the last record (Kafka answers -1, meaning the end).
    // Tansu 0.6.0 answers ListOffsets with offset 0 for every timestamp, even one in 2099, so
    // only the "before every record" case above means anything here.

    // A group with no committed offsets: "-" as the old offset, and --shift-by counts from the
    // start of the partition.
    assert_eq!(
        env.reset("fresh", &["--shift-by", "4", "--execute"]),
        format!("{TOPIC}\t0\t- -> 4\n{TOPIC}\t1\t- -> 4\n"),
        "plan for a group without offsets"
    );
    assert_eq!(env.committed("fresh"), offsets(&[(0, 4), (1, 4)]));
}

/// A group with a live member is refused, dry run or not, and nothing is committed; once the
/// member has left (SIGINT: `consume` then commits and leaves the group), the same reset works.
///
/// Tansu 0.6.0 lists a group's members in DescribeGroups (without client id, host or
/// assignment, see TANSU.md) and reports the state Stable once the join completes, so the
/// refusal can be checked here against a real broker.
#[test]
fn reset_offsets_is_refused_while_the_group_has_members() {
    let env = Env::start();
    let group = "busy";
    let ends = offsets(&RECORDS);
    // Committed at the end: the member reads nothing, so its commits change nothing.
    env.commit(group, &RECORDS);
    assert_eq!(env.committed(group), ends, "committed with the library");

    let mut member = env.spawn(&[
        "consume",
        "--topic",
        TOPIC,
        "--group",
        group,
        "--format",
        CONSUME_FORMAT,
    ]);
    // Wait until the member has joined: the group is Stable with one member.
    let admin = Admin::new(&env.client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = member.exited() {
            let (stdout, stderr) = member.output();
            panic!("the group member exited early ({status}):\n{stdout}\n{stderr}");
        }
        let d = env
            .rt
            .block_on(admin.describe_group(group))
            .expect("describe the group");
        if d.state == "Stable" && d.members.len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member did not join within 30 s: state {:?}, {} member(s)",
            d.state,
            d.members.len()
        );
        thread::sleep(Duration::from_millis(100));
    }

    for args in [
        &["--to-offset", "3", "--execute"][..],
        &["--to-earliest"][..],
    ] {
        let mut all = vec!["groups", "reset-offsets", group, "--topic", TOPIC];
        all.extend_from_slice(args);
        let run = env.run(&all);
        assert!(
            !run.status.success(),
            "reset-offsets {} must fail while the group has a member: {run:?}",
            args.join(" ")
        );
        assert!(
            run.stderr.contains("has active members") && run.stderr.contains("1 member"),
            "the refusal names the reason: {:?}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "a refused reset prints no plan");
        assert_eq!(
            env.committed(group),
            ends,
            "a refused reset commits nothing"
        );
    }

    // Stop the member the way Ctrl-C does: it commits what it printed (nothing) and leaves.
    let pid = member.child.id().to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -INT {pid}: {kill}");
    let run = member
        .wait(Duration::from_secs(20), "the group member after SIGINT")
        .ok("the group member after SIGINT");
    assert_eq!(run.stdout, "", "the member had nothing to read");

    assert_eq!(
        env.reset(group, &["--to-offset", "3", "--execute"]),
        plan(&[(0, 10, 3), (1, 7, 3)]),
        "the reset once the member has left"
    );
    assert_eq!(env.committed(group), offsets(&[(0, 3), (1, 3)]));
}
