//! Test support for kafkawire.
//!
//! - [`tansu`]: starts a real Kafka-compatible [Tansu](https://github.com/tansu-io/tansu)
//!   broker (in-memory storage, free `127.0.0.1` port) for integration tests, and kills
//!   it on drop. The binary is installed on first use by `scripts/install-tansu`.
//! - [`proxy`]: [`FaultProxy`], a seeded TCP proxy that injects network faults (cuts after N
//!   bytes, blackhole, latency, refused connections, broker restarts) between a client and a
//!   broker.
//! - [`tls_proxy`]: [`TlsProxy`], TLS (rustls) in front of a plaintext broker, and [`TestPki`],
//!   test certificates made with rcgen (CA, server, expired, wrong name, client).
//! - [`metrics_recorder`]: [`TestRecorder`], an in-memory `metrics` recorder.
#![warn(missing_docs)]

pub mod metrics_recorder;
pub mod mock;
pub mod proxy;
pub mod tansu;
pub mod tls_proxy;

pub use metrics_recorder::TestRecorder;
pub use mock::{Action, MockBroker, MockCluster, Reply, RequestRecord, ScriptedRequest};
pub use proxy::{Direction, FaultProxy, ProxyStats};
pub use tansu::{TansuBroker, TansuError};
pub use tls_proxy::{Identity, TestPki, TlsProxy, TlsProxyConfig, TlsProxyStats};
