//! The tokio layer of kafkawire: connections to brokers with version negotiation, the cluster
//! metadata cache, routing of requests to partition leaders, advertised-listener handling, and
//! admin operations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kafkawire_client::Error> {
//! use kafkawire_client::{Admin, Client, ClientConfig, NewTopic};
//! let mut config = ClientConfig::new("127.0.0.1:9092");
//! // The broker advertises a name only visible inside Docker: map it to the published port.
//! config.address_map.insert("kafka:29092", "127.0.0.1:9092")?;
//! let client = Client::connect(config).await?;
//! Admin::new(&client)
//!     .create_topics(&[NewTopic::new("orders", 3)], std::time::Duration::from_secs(10))
//!     .await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod address_map;
mod admin;
mod authenticate;
mod client;
mod connection;
mod error;
mod groups;
mod metadata;
pub mod sasl;
mod security;
pub mod stats;
pub mod tls;

pub use address_map::{BrokerAddressMap, Resolver};
pub use admin::{
    Admin, AlterConfigOp, AlterConfigOpType, ClusterDescription, ConfigEntry, ConfigResource,
    ConfigResourceType, ConfigSource, GroupLag, LagMember, ListedOffset, NewPartitions, NewTopic,
    PartitionLag, offset_spec,
};
pub use client::{Client, ClientConfig};
pub use connection::{Connection, ConnectionConfig};
pub use error::{Error, Result};
pub use groups::{GroupDescription, GroupListing, GroupMember, GroupMembership, OffsetToCommit};
pub use metadata::{BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata};
pub use sasl::{
    OAuthToken, RefreshingTokenProvider, SaslConfig, SaslMechanism, TokenProvider,
    UnsecuredJwsProvider,
};
pub use security::{Secret, SecurityConfig, SecurityProtocol};
pub use stats::{ApiStats, BrokerStats, ClientStats, LatencyHistogram, LatencySummary};
pub use tls::{ClientCertificate, PemSource, TlsConfig, TrustRoots};
