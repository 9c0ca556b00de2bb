//! `kafkawire`: produce, consume and administer Kafka from the command line.

mod admin;
mod consume;
mod doctor;
mod format;
mod groups;
mod logging;
mod perf;
mod perf_consume;
mod produce;
mod security;
mod usage;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kafkawire::{BrokerAddressMap, Client, ClientConfig, Error};

/// The bootstrap address when neither --bootstrap, KAFKAWIRE_BOOTSTRAP nor bootstrap.servers in
/// --command-config names one.
const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// The request timeout when neither --request-timeout-ms nor request.timeout.ms sets one.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

// The arguments hold no secret (passwords are read from a file or the environment when the
// client configuration is built), so their `Debug` output is safe to print.
/// A Kafka client in pure Rust: produce, consume and administer Kafka.
#[derive(Parser, Debug)]
#[command(name = "kafkawire", version, about)]
struct Cli {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...]; tried in order until one answers.
    /// Default: bootstrap.servers of --command-config, else 127.0.0.1:9092.
    #[arg(
        long,
        global = true,
        env = "KAFKAWIRE_BOOTSTRAP",
        value_name = "HOST:PORT"
    )]
    bootstrap: Option<String>,

    /// Map an advertised broker address to one this machine can reach: ADVERTISED=REACHABLE,
    /// e.g. kafka:29092=127.0.0.1:9092 (repeatable). For brokers whose advertised.listeners
    /// name an address that only works inside Docker or Kubernetes.
    #[arg(
        long = "broker-map",
        global = true,
        value_name = "ADVERTISED=REACHABLE"
    )]
    broker_map: Vec<String>,

    /// Request timeout in milliseconds. Default: request.timeout.ms of --command-config, else
    /// 30000.
    #[arg(long, global = true, value_name = "MS")]
    request_timeout_ms: Option<u64>,

    #[command(flatten)]
    security: security::SecurityArgs,

    #[command(flatten)]
    logging: logging::LogArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show brokers, topics, partitions and leaders.
    Metadata {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
    },
    /// List, create, delete, describe topics or add partitions.
    #[command(subcommand)]
    Topics(admin::TopicsCommand),
    /// Show or change topic and broker configs.
    #[command(subcommand)]
    Configs(admin::ConfigsCommand),
    /// Delete records below an offset.
    #[command(subcommand)]
    Records(admin::RecordsCommand),
    /// Describe the cluster: id, controller, brokers.
    #[command(subcommand)]
    Cluster(admin::ClusterCommand),
    /// Show each partition's offset for a timestamp (or its latest or earliest offset).
    Offsets(admin::OffsetsArgs),
    /// Send one record per line of standard input.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// List, describe or delete consumer groups, reset or delete their offsets, show lag.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Measure throughput and latency against a broker.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Check the way to the cluster and say what is wrong and how to fix it: bootstrap,
    /// every broker's advertised address, API versions, TLS/SASL, a topic's leaders and record
    /// clocks, a group's coordinator. One verdict per line; exit status 1 if a check fails.
    Doctor(doctor::DoctorArgs),
}

/// The client configuration, and notes for the user about it.
struct Prepared {
    config: ClientConfig,
    notes: Vec<String>,
}

impl Cli {
    fn client_config(&self) -> Result<Prepared, Error> {
        let file = match &self.security.command_config {
            Some(path) => Some(security::load_command_config(path)?),
            None => None,
        };
        let file = file.as_ref();
        let bootstrap = self
            .bootstrap
            .as_deref()
            .or_else(|| file.and_then(|f| f.bootstrap.as_deref()))
            .unwrap_or(DEFAULT_BOOTSTRAP);
        let mut config = ClientConfig::new(bootstrap);
        if config.bootstrap.is_empty() {
            return Err(Error::Config(
                "the bootstrap address is empty (--bootstrap, KAFKAWIRE_BOOTSTRAP or bootstrap.servers)".into(),
            ));
        }
        let mut map = BrokerAddressMap::default();
        for spec in &self.broker_map {
            map.insert_spec(spec)?;
        }
        config.address_map = map;
        config.client_id = Some(
            file.and_then(|f| f.client_id.clone())
                .unwrap_or_else(|| "kafkawire-cli".into()),
        );
        // Writing to a missing topic may create it (the broker decides); reading or describing
        // one must not.
        config.allow_auto_topic_creation = matches!(self.command, Command::Produce(_));
        config.request_timeout = match (
            self.request_timeout_ms,
            file.and_then(|f| f.request_timeout),
        ) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(t)) => t,
            (None, None) => Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
        };
        config.connection_setup_timeout = file
            .and_then(|f| f.connection_setup_timeout)
            .unwrap_or_else(|| config.request_timeout.min(Duration::from_secs(10)));
        if let Some(f) = file {
            if let Some(t) = f.connection_setup_timeout_max {
                config.connection_setup_timeout_max = t;
            }
            if let Some(t) = f.reconnect_backoff {
                config.reconnect_backoff = t;
            }
            if let Some(t) = f.reconnect_backoff_max {
                config.reconnect_backoff_max = t;
            }
            if let Some(t) = f.metadata_max_age {
                config.metadata_max_age = t;
            }
        }
        config.security = security::resolve(&self.security, file, security::env_password()?)?;

        let mut notes = Vec::new();
        if let (Some(path), Some(f)) = (&self.security.command_config, file)
            && !f.ignored.is_empty()
        {
            notes.push(format!(
                "{}: ignoring settings that do not apply to this tool: {}",
                path.display(),
                f.ignored.join(", ")
            ));
        }
        if !config.security.tls.verify_server_name && config.security.protocol.uses_tls() {
            notes.push(
                "broker host names are not verified (--ssl-no-verify-hostname or an empty ssl.endpoint.identification.algorithm): a machine in the middle with any certificate your CA signed can read and change this session".into(),
            );
        }
        Ok(Prepared { config, notes })
    }
}

/// One plain sentence for a failure: what failed, why, and what to try. `config` is what the
/// client was started with, when it got that far.
fn explain(e: &Error, config: Option<&ClientConfig>) -> String {
    let hint = match e {
        Error::NoBrokerReachable { .. } => format!(
            " Is a Kafka broker running there? Point --bootstrap (or KAFKAWIRE_BOOTSTRAP, or bootstrap.servers in --command-config) at it; now: {}.",
            config.map_or_else(|| DEFAULT_BOOTSTRAP.to_owned(), |c| c.bootstrap.join(","))
        ),
        Error::Timeout { .. } => " Try again, or raise --request-timeout-ms.".to_string(),
        Error::UnsupportedVersion { .. } => " The broker is older or newer than this client supports.".to_string(),
        Error::Broker { code, .. } if *code == kafkawire::protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
            " Check the name with `kafkawire topics list`, or create it with `kafkawire topics create`.".to_string()
        }
        Error::Tls { .. } => " On the command line, the CA file is --ssl-ca and the client certificate --ssl-cert with --ssl-key (or ssl.ca.location, ssl.certificate.location and ssl.key.location in --command-config); use --security-protocol SSL or SASL_SSL only with a TLS listener.".to_string(),
        Error::Authentication { .. } => " Check the user name (--sasl-username, or sasl.username / sasl.jaas.config in --command-config) and the password (--sasl-password-file, KAFKAWIRE_SASL_PASSWORD, or sasl.password / sasl.jaas.config), that the broker's listener enables this mechanism (--sasl-mechanism), and that the user exists for it (SCRAM users are per mechanism).".to_string(),
        _ if e.is_retriable() => " This may be temporary: try again.".to_string(),
        _ => String::new(),
    };
    format!("kafkawire: {e}.{hint}")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    for note in logging::init(&cli.logging) {
        eprintln!("kafkawire: note: {note}.");
    }
    let prepared = match cli.client_config() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", explain(&e, None));
            return ExitCode::FAILURE;
        }
    };
    for note in &prepared.notes {
        eprintln!("kafkawire: note: {note}.");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kafkawire: cannot start the async runtime: {e}.");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Doctor(args) = &cli.command {
        let healthy = runtime.block_on(doctor::run(prepared.config.clone(), args));
        return if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let result = runtime.block_on(run(&cli, prepared.config.clone()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", explain(&e, Some(&prepared.config)));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli, config: ClientConfig) -> Result<(), Error> {
    let client = Client::connect(config).await?;
    // --stats-interval-ms: produce, consume and perf print their own lines (with the
    // producer's or consumer's statistics).
    let printer = match &cli.command {
        Command::Produce(_) | Command::Consume(_) | Command::Perf(_) => None,
        _ => {
            let c = client.clone();
            logging::StatsPrinter::start(move || logging::stats_line(&c.stats(), None, None))
        }
    };
    let result = match &cli.command {
        Command::Metadata { topic } => admin::metadata(&client, topic.as_deref()).await,
        Command::Topics(cmd) => admin::topics(&client, cmd).await,
        Command::Configs(cmd) => admin::configs(&client, cmd).await,
        Command::Records(cmd) => admin::records(&client, cmd).await,
        Command::Cluster(cmd) => admin::cluster(&client, cmd).await,
        Command::Offsets(args) => admin::offsets(&client, args).await,
        Command::Produce(args) => produce::run(&client, args).await,
        Command::Consume(args) => consume::run(&client, args).await,
        Command::Groups(cmd) => groups::run(&client, cmd).await,
        Command::Perf(cmd) => perf::run(&client, cmd).await,
        // Run by `main` before any connection: an unreachable bootstrap is a verdict there.
        Command::Doctor(_) => Ok(()),
    };
    if let Some(p) = printer {
        p.finish();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a fresh temporary file and returns its path; the caller removes it.
    fn temp_properties(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "kafkawire-cli-main-{}-{name}.properties",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn prepared(args: &[&str]) -> Prepared {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
        cli.client_config().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_command_config_file_fills_in_what_the_flags_leave_open() {
        let path = temp_properties(
            "fill",
            "bootstrap.servers=file-host:9093,other:9093\nclient.id=from-file\nrequest.timeout.ms=1234\n\
             socket.connection.setup.timeout.ms=4321\nmetadata.max.age.ms=60000\nacks=all\nlinger.ms=5\n",
        );
        let file = path.to_str().unwrap();
        let env_bootstrap = std::env::var_os("KAFKAWIRE_BOOTSTRAP").is_some();

        let p = prepared(&["kafkawire", "--command-config", file, "metadata"]);
        if !env_bootstrap {
            assert_eq!(p.config.bootstrap, ["file-host:9093", "other:9093"]);
        }
        assert_eq!(p.config.client_id.as_deref(), Some("from-file"));
        assert_eq!(p.config.request_timeout, Duration::from_millis(1234));
        assert_eq!(
            p.config.connection_setup_timeout,
            Duration::from_millis(4321)
        );
        assert_eq!(p.config.metadata_max_age, Duration::from_secs(60));
        assert_eq!(
            p.notes,
            [format!(
                "{file}: ignoring settings that do not apply to this tool: acks, linger.ms"
            )]
        );

        let p = prepared(&[
            "kafkawire",
            "--bootstrap",
            "flag-host:9092",
            "--request-timeout-ms",
            "5000",
            "--command-config",
            file,
            "metadata",
        ]);
        assert_eq!(p.config.bootstrap, ["flag-host:9092"]);
        assert_eq!(p.config.request_timeout, Duration::from_secs(5));
        std::fs::remove_file(&path).unwrap();

        // Without a file: the defaults.
        let p = prepared(&["kafkawire", "metadata"]);
        if !env_bootstrap {
            assert_eq!(p.config.bootstrap, [DEFAULT_BOOTSTRAP]);
        }
        assert_eq!(p.config.client_id.as_deref(), Some("kafkawire-cli"));
        assert_eq!(p.config.request_timeout, Duration::from_secs(30));
        assert_eq!(p.config.connection_setup_timeout, Duration::from_secs(10));
        assert!(p.notes.is_empty());
    }

    #[test]
    fn security_flags_reach_the_client_configuration() {
        let p = prepared(&[
            "kafkawire",
            "--security-protocol",
            "SSL",
            "--ssl-ca",
            "/ca.pem",
            "--ssl-no-verify-hostname",
            "metadata",
        ]);
        let security = &p.config.security;
        assert_eq!(security.protocol, kafkawire::client::SecurityProtocol::Ssl);
        assert_eq!(
            security.tls.trust,
            kafkawire::client::TrustRoots::PemFile("/ca.pem".into())
        );
        assert!(!security.tls.verify_server_name);
        assert!(
            p.notes[0].starts_with("broker host names are not verified"),
            "{:?}",
            p.notes
        );
        // The flags are global: they may follow the subcommand.
        let p = prepared(&["kafkawire", "metadata", "--security-protocol", "ssl"]);
        assert!(p.config.security.protocol.uses_tls());
    }

    #[test]
    fn tls_and_authentication_failures_say_what_to_check() {
        let tls = Error::Tls {
            broker: "b:9093".into(),
            reason: "the broker's certificate is not signed by a trusted CA".into(),
        };
        let text = explain(&tls, None);
        assert!(
            text.starts_with("kafkawire: TLS with broker b:9093 failed: the broker's certificate is not signed by a trusted CA. On the command line, the CA file is --ssl-ca"),
            "{text}"
        );
        let auth = Error::Authentication {
            broker: "b:9092".into(),
            mechanism: "SCRAM-SHA-256".into(),
            reason: "invalid credentials".into(),
        };
        let text = explain(&auth, None);
        assert!(
            text.starts_with("kafkawire: SASL SCRAM-SHA-256 authentication with broker b:9092 failed: invalid credentials. Check the user name (--sasl-username"),
            "{text}"
        );
        assert!(text.contains("KAFKAWIRE_SASL_PASSWORD"), "{text}");
    }
}
