//! `kafkawire`: produce, consume and administer Kafka from the command line.

mod admin;
mod consume;
mod format;
mod groups;
mod perf;
mod perf_consume;
mod produce;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kafkawire::{BrokerAddressMap, Client, ClientConfig, Error};

/// A Kafka client in pure Rust: produce, consume and administer Kafka.
#[derive(Parser, Debug)]
#[command(name = "kafkawire", version, about)]
struct Cli {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...]; tried in order until one answers.
    #[arg(
        long,
        global = true,
        env = "KAFKAWIRE_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,

    /// Map an advertised broker address to one this machine can reach: ADVERTISED=REACHABLE,
    /// e.g. kafka:29092=127.0.0.1:9092 (repeatable). For brokers whose advertised.listeners
    /// name an address that only works inside Docker or Kubernetes.
    #[arg(
        long = "broker-map",
        global = true,
        value_name = "ADVERTISED=REACHABLE"
    )]
    broker_map: Vec<String>,

    /// Request timeout in milliseconds.
    #[arg(long, global = true, default_value_t = 30_000)]
    request_timeout_ms: u64,

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
    /// List, create, delete or describe topics.
    #[command(subcommand)]
    Topics(admin::TopicsCommand),
    /// Send one record per line of standard input.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// List, describe or delete consumer groups.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Measure throughput and latency against a broker.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
}

impl Cli {
    fn client_config(&self) -> Result<ClientConfig, Error> {
        let mut config = ClientConfig::new(&self.bootstrap);
        if config.bootstrap.is_empty() {
            return Err(Error::Config("--bootstrap is empty".into()));
        }
        let mut map = BrokerAddressMap::default();
        for spec in &self.broker_map {
            map.insert_spec(spec)?;
        }
        config.address_map = map;
        config.client_id = Some("kafkawire-cli".into());
        // Writing to a missing topic may create it (the broker decides); reading or describing
        // one must not.
        config.allow_auto_topic_creation = matches!(self.command, Command::Produce(_));
        config.request_timeout = Duration::from_millis(self.request_timeout_ms);
        config.connection_setup_timeout =
            Duration::from_millis(self.request_timeout_ms.min(10_000));
        Ok(config)
    }
}

/// One plain sentence for a failure: what failed, why, and what to try.
fn explain(e: &Error, bootstrap: &str) -> String {
    let hint = match e {
        Error::NoBrokerReachable { .. } => format!(
            " Is a Kafka broker running there? Point --bootstrap (or KAFKAWIRE_BOOTSTRAP) at it; now: {bootstrap}."
        ),
        Error::Timeout { .. } => " Try again, or raise --request-timeout-ms.".to_string(),
        Error::UnsupportedVersion { .. } => " The broker is older or newer than this client supports.".to_string(),
        Error::Broker { code, .. } if *code == kafkawire::protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
            " Check the name with `kafkawire topics list`, or create it with `kafkawire topics create`.".to_string()
        }
        _ if e.is_retriable() => " This may be temporary: try again.".to_string(),
        _ => String::new(),
    };
    format!("kafkawire: {e}.{hint}")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(run(&cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", explain(&e, &cli.bootstrap));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<(), Error> {
    let config = cli.client_config()?;
    let client = Client::connect(config).await?;
    match &cli.command {
        Command::Metadata { topic } => admin::metadata(&client, topic.as_deref()).await,
        Command::Topics(cmd) => admin::topics(&client, cmd).await,
        Command::Produce(args) => produce::run(&client, args).await,
        Command::Consume(args) => consume::run(&client, args).await,
        Command::Groups(cmd) => groups::run(&client, cmd).await,
        Command::Perf(cmd) => perf::run(&client, cmd).await,
    }
}
