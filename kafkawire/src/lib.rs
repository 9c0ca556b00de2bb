//! kafkawire: a Kafka client in pure Rust, from the wire protocol up.
//!
//! One dependency for applications; it re-exports the layers:
//! - [`protocol`]: sans-io codecs (messages, record batches, frames, error codes);
//! - [`client`]: connections, version negotiation, metadata, advertised-listener mapping, admin;
//! - [`producer`] and [`consumer`].
//!
//! ```no_run
//! use kafkawire::{Client, ClientConfig, Producer, ProducerConfig, ProducerRecord};
//! use kafkawire::{ConsumerConfig, PartitionConsumer, StartOffset};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kafkawire::Error> {
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//!
//! let producer = Producer::new(&client, ProducerConfig::default())?; // acks=all, idempotent
//! let written = producer
//!     .send_and_wait(ProducerRecord::new("greetings", "hello").key("k1").header("lang", "en"))
//!     .await?;
//!
//! let mut consumer = PartitionConsumer::new(&client, ConsumerConfig::default());
//! consumer
//!     .assign("greetings", written.partition, StartOffset::Offset(written.offset))
//!     .await?;
//! let fetched = consumer.poll().await?;
//! for part in &fetched.partitions {
//!     for record in part.records() {
//!         let record = record?; // Error::CorruptRecord names the partition
//!         assert_eq!(record.value(), Some(&b"hello"[..]));
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//! None of these is on by default (the codecs gzip, snappy, lz4 and zstd are), and the default
//! build needs no C compiler.
//! - `tls-ring`: TLS (`SecurityProtocol::Ssl`, `SaslSsl`) with rustls's *ring* crypto provider
//!   built in; ring compiles C. Without it, TLS uses the rustls provider the application
//!   installs as the process default or sets in [`TlsConfig::crypto_provider`], and asking for
//!   TLS with neither is an [`Error::Config`] at [`Client::connect`] (see [`client::tls`]).
//! - `zstd-c`: zstd through libzstd (C) instead of the pure-Rust codec: faster, with levels.
//! - `metrics`: the client's, producers' and consumers' statistics through the `metrics` crate.
#![warn(missing_docs)]

pub use kafkawire_client as client;
pub use kafkawire_consumer as consumer;
pub use kafkawire_producer as producer;
pub use kafkawire_protocol as protocol;

pub use kafkawire_client::{
    Admin, BrokerAddressMap, Client, ClientConfig, ClusterMetadata, Error, NewTopic, Result,
};
pub use kafkawire_client::{
    AlterConfigOp, AlterConfigOpType, ClusterDescription, ConfigEntry, ConfigResource,
    ConfigResourceType, ConfigSource, GroupLag, LagMember, ListedOffset, NewPartitions,
    PartitionLag, offset_spec,
};
pub use kafkawire_client::{
    ClientCertificate, OAuthToken, PemSource, RefreshingTokenProvider, SaslConfig, SaslMechanism,
    Secret, SecurityConfig, SecurityProtocol, TlsConfig, TokenProvider, TrustRoots,
    UnsecuredJwsProvider,
};
pub use kafkawire_client::{GroupDescription, GroupListing, GroupMembership, OffsetToCommit};
pub use kafkawire_consumer::{
    Consumer, ConsumerBuilder, ConsumerConfig, ConsumerRecord, Fetched, FetchedPartition,
    GroupConfig, GroupConsumer, IsolationLevel, OffsetManager, OffsetReset, PartitionConsumer,
    RebalanceListener, Records, ResetReport, StartOffset,
};
pub use kafkawire_producer::{
    Acks, ConsumerGroupMetadata, DeliveryFuture, Partitioner, Producer, ProducerBuilder,
    ProducerConfig, ProducerRecord, RecordMetadata, TopicName, TopicPartitionOffset,
};
pub use kafkawire_protocol::records::Compression;
// Statistics snapshots: Client::stats, Producer::stats, Consumer::stats.
pub use kafkawire_client::{ApiStats, BrokerStats, ClientStats, LatencySummary};
pub use kafkawire_consumer::{ConsumerStats, PartitionStats};
pub use kafkawire_producer::ProducerStats;

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
