//! `peers`: one produce or consume phase, with kafkawire or with librdkafka (the `rdkafka`
//! crate), against a running broker; prints one `RESULT` line (see [`meter::result_line`]).
//!
//! ```text
//! peers produce --client kafkawire|rdkafka --bootstrap HOST:PORT --topic T --records N
//!               [--value-size 100] [--partitions P]
//! peers consume --client kafkawire|rdkafka --bootstrap HOST:PORT --topic T --records N
//!               [--value-size 100] [--partitions P]
//! ```
//!
//! Both clients run with their own default settings (plus the same explicit
//! `enable.idempotence=true` / `acks=all` that kafkawire has by default), send the same records
//! ([`workload`]) and hold at most [`MAX_PENDING`] unacknowledged records in the application.
//!
//! - produce: the topic must exist (the `run` script creates it). One warm-up record is sent
//!   and acknowledged before the clock starts (see [`workload`]). Timed from the first send
//!   until every record is acknowledged; any failed delivery fails the run.
//! - consume: reads the first N records (and the warm-up record) of every partition of the
//!   topic, from the beginning, assigned without joining a group. Timed from the assignment
//!   until the Nth record is counted; then the count, the key sum and the value bytes are
//!   checked against what produce sent.
//!
//! Exit status 0 with the `RESULT` line on stdout; 1 with a message on stderr when anything
//! failed (including verification); 2 for a bad command line.

mod kw;
mod meter;
mod rdk;
mod workload;

use std::process::ExitCode;
use std::time::Duration;

use meter::{Labels, Measurement, result_line};

/// The most records the application keeps unacknowledged, for both clients: when full, it
/// waits for the oldest (kafkawire) or for delivery reports (rdkafka) before sending more.
/// It equals librdkafka's default `queue.buffering.max.messages`.
pub const MAX_PENDING: usize = 100_000;

/// Which client library runs the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    Kafkawire,
    Rdkafka,
}

impl Library {
    fn name(self) -> &'static str {
        match self {
            Library::Kafkawire => "kafkawire",
            Library::Rdkafka => "rdkafka",
        }
    }
}

/// The command line.
#[derive(Debug)]
pub struct Options {
    /// `true` for produce, `false` for consume.
    pub produce: bool,
    pub library: Library,
    /// Bootstrap address list, `HOST:PORT[,HOST:PORT...]`.
    pub bootstrap: String,
    pub topic: String,
    pub records: u64,
    pub value_size: usize,
    /// Partitions the topic is expected to have; checked against the broker's metadata.
    pub partitions: Option<usize>,
    /// A consume phase fails when no record arrives for this long; a produce phase when the
    /// acknowledgements stop for this long.
    pub idle_timeout: Duration,
}

/// What a phase reports back to `main`.
pub struct Outcome {
    /// Partitions of the topic, from the broker's metadata.
    pub partitions: usize,
    pub measurement: Measurement,
    /// Consume only: what was read, to verify after the clock stopped.
    pub tally: Option<workload::Tally>,
}

const USAGE: &str =
    "usage: peers produce|consume --client kafkawire|rdkafka --bootstrap HOST:PORT \
--topic T --records N [--value-size B (100)] [--partitions P] [--idle-timeout-ms MS (30000)]
--bootstrap defaults to $KAFKAWIRE_BOOTSTRAP.";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let produce = match it.next().map(String::as_str) {
        Some("produce") => true,
        Some("consume") => false,
        Some(other) => return Err(format!("unknown phase '{other}'")),
        None => return Err("missing the phase (produce or consume)".into()),
    };
    let (mut library, mut bootstrap, mut topic, mut records) = (None, None, None, None);
    let (mut value_size, mut partitions, mut idle_ms) = (100usize, None, 30_000u64);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number, got '{v}'"))
        };
        match flag.as_str() {
            "--client" => {
                library = Some(match value()?.as_str() {
                    "kafkawire" => Library::Kafkawire,
                    "rdkafka" => Library::Rdkafka,
                    other => return Err(format!("unknown client '{other}'")),
                })
            }
            "--bootstrap" => bootstrap = Some(value()?),
            "--topic" => topic = Some(value()?),
            "--records" => records = Some(number(value()?)?),
            "--value-size" => value_size = number(value()?)? as usize,
            "--partitions" => partitions = Some(number(value()?)? as usize),
            "--idle-timeout-ms" => idle_ms = number(value()?)?,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let bootstrap = bootstrap
        .or_else(|| std::env::var("KAFKAWIRE_BOOTSTRAP").ok())
        .ok_or("missing --bootstrap (and KAFKAWIRE_BOOTSTRAP is not set)")?;
    let records = records.ok_or("missing --records")?;
    if records == 0 {
        return Err("--records must be at least 1".into());
    }
    Ok(Options {
        produce,
        library: library.ok_or("missing --client")?,
        bootstrap,
        topic: topic.ok_or("missing --topic")?,
        records,
        value_size,
        partitions,
        idle_timeout: Duration::from_millis(idle_ms),
    })
}

/// Fails when the broker's partition count is not the one the command line expected (a topic
/// left over from an earlier run, or auto-created with the broker's default).
pub fn check_partitions(o: &Options, found: usize) -> Result<usize, String> {
    match o.partitions {
        Some(p) if p != found => Err(format!(
            "topic {} has {found} partitions, expected {p}",
            o.topic
        )),
        _ => Ok(found),
    }
}

fn run(o: &Options) -> Result<String, String> {
    let outcome = match (o.library, o.produce) {
        (Library::Kafkawire, true) => kw::produce(o)?,
        (Library::Kafkawire, false) => kw::consume(o)?,
        (Library::Rdkafka, true) => rdk::produce(o)?,
        (Library::Rdkafka, false) => rdk::consume(o)?,
    };
    if let Some(tally) = &outcome.tally {
        tally
            .verify(o.records)
            .map_err(|e| format!("verification failed: {e}"))?;
    }
    Ok(result_line(
        &Labels {
            client: o.library.name(),
            phase: if o.produce { "produce" } else { "consume" },
            partitions: outcome.partitions,
            records: o.records,
            value_size: o.value_size,
        },
        &outcome.measurement,
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("peers: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "peers: FAILED: {} {} of {} records on topic {}: {e}",
                options.library.name(),
                if options.produce {
                    "produce"
                } else {
                    "consume"
                },
                options.records,
                options.topic
            );
            ExitCode::FAILURE
        }
    }
}
