//! `kafkawire doctor` end to end: the built binary against Tansu brokers in three states, a
//! healthy one, one advertising an address that does not resolve (the advertised-listener
//! trap), and a stopped one. Each test starts its own broker on a free 127.0.0.1 port.

use std::process::{Command, Output};

use kafkawire_testkit::TansuBroker;

/// Runs `kafkawire --bootstrap BOOTSTRAP ARGS...` to the end.
fn kafkawire(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkawire"))
        .args(["--bootstrap", bootstrap, "--request-timeout-ms", "5000"])
        .args(args)
        .output()
        .expect("run kafkawire")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn start(advertised: Option<&str>) -> TansuBroker {
    match advertised {
        None => TansuBroker::start(),
        Some(a) => TansuBroker::start_advertising(a),
    }
    .unwrap_or_else(|e| panic!("cannot start tansu: {e}"))
}

#[test]
fn a_healthy_broker_passes_every_check() {
    let broker = start(None);
    let b = broker.bootstrap();
    let created = kafkawire(&b, &["topics", "create", "checked", "--partitions", "2"]);
    assert!(created.status.success(), "{:?}", text(&created));
    let out = kafkawire(
        &b,
        &["doctor", "--topic", "checked", "--group", "doctor-group"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let bootstrap_ok = format!("OK   bootstrap {b} answered");
    for expected in [
        bootstrap_ok.as_str(),
        "reachable in",
        "API versions imply Apache Kafka",
        "topic checked: every partition of 2 has a leader",
        "group doctor-group: coordinator broker",
        "doctor: all checks passed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn a_broker_advertising_an_unreachable_address_gets_the_fix() {
    let broker = start(Some("kafka-internal.invalid:29092"));
    let b = broker.bootstrap();
    let out = kafkawire(&b, &["doctor"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("OK   bootstrap {b} answered")),
        "{stdout}"
    );
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL broker"))
        .unwrap_or_else(|| panic!("no broker verdict in:\n{stdout}"));
    assert!(
        fail.contains("advertises kafka-internal.invalid:29092"),
        "{fail}"
    );
    assert!(
        fail.contains("--broker-map kafka-internal.invalid:29092=HOST:PORT"),
        "{fail}"
    );
    assert!(stdout.contains("1 check(s) failed"), "{stdout}");

    // The fix the verdict names works.
    let map = format!("kafka-internal.invalid:29092={b}");
    let out = kafkawire(&b, &["--broker-map", &map, "doctor"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("OK   broker") && stdout.contains("reachable"),
        "{stdout}"
    );
}

#[test]
fn a_stopped_broker_fails_at_the_bootstrap() {
    let broker = start(None);
    let b = broker.bootstrap();
    drop(broker);
    let out = kafkawire(&b, &["doctor", "--topic", "t"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("FAIL bootstrap {b}")),
        "{stdout}"
    );
    assert!(first.contains("is a broker running there?"), "{first}");
    // Nothing past the bootstrap is checked.
    assert!(!stdout.contains("topic t"), "{stdout}");
}
