//! Test support for kafkawire.
//!
//! - [`tansu`]: starts a real Kafka-compatible [Tansu](https://github.com/tansu-io/tansu)
//!   broker (in-memory storage, free `127.0.0.1` port) for integration tests, and kills
//!   it on drop. The binary is installed on first use by `scripts/install-tansu`.
#![warn(missing_docs)]

pub mod mock;
pub mod tansu;

pub use mock::{Action, MockBroker, MockCluster, Reply, RequestRecord, ScriptedRequest};
pub use tansu::{TansuBroker, TansuError};
