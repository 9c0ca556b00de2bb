//! An in-process, scriptable mock Kafka cluster for tests of error paths that a real broker
//! cannot be made to show on demand: error codes, several brokers, leader moves, dropped
//! connections, slow or missing responses.
//!
//! Every broker of a [`MockCluster`] is a tokio task listening on its own `127.0.0.1` port.
//! Requests are read with [`kafkawire_protocol::frame::FrameDecoder`] and decoded with the
//! generated request types; every answer is a real response frame encoded with
//! [`kafkawire_protocol::frame::encode_response`] at the request's version, so a client decodes
//! it exactly as it would one from a real broker.
//!
//! # Default behaviour
//!
//! With no scripting, the cluster behaves like a small, healthy Kafka cluster:
//!
//! - **ApiVersions**: every API of [`ApiKey::ALL`] with the versions of [`ApiKey::versions`]
//!   (change with [`MockCluster::set_api_versions`] / [`MockCluster::remove_api`]). A request
//!   above (or below) the advertised ApiVersions range gets `UNSUPPORTED_VERSION` in a v0
//!   response that lists only ApiVersions' own range (KIP-511), so a client can retry lower.
//!   A request of any other API at a version outside the advertised range, or of an API that was
//!   removed, closes the connection (as Kafka does).
//! - **Metadata**: the model's brokers (advertised address = listener address unless
//!   [`MockCluster::set_advertised`]), controller, cluster id and topics. Unknown topics get
//!   `UNKNOWN_TOPIC_OR_PARTITION` (or `UNKNOWN_TOPIC_ID`), unless auto-creation is on
//!   ([`MockCluster::set_auto_create_topics`]). Replicas and ISR are just `[leader]`.
//! - **CreateTopics / DeleteTopics** change the model (any broker accepts them).
//! - **Produce**: the partition leader appends each magic-2 batch to an in-memory log, rewriting
//!   the batch's base offset (and partition leader epoch) header field; nothing past the batch
//!   header is read. Non-leaders answer `NOT_LEADER_OR_FOLLOWER` (with the KIP-951 leader hint
//!   in v10+). `acks = 0` gets no response (and a closed connection on error, like Kafka).
//! - **Idempotent producers** (KIP-98): a batch whose producer id this cluster issued
//!   (InitProducerId) is checked against the partition's state for that id: its epoch and its
//!   last 5 appended batches (first sequence, last sequence, base offset). The state belongs to
//!   the partition, not to a broker, so it survives leader moves (as Kafka's replicated producer
//!   state does). In order:
//!   - an epoch fenced by [`MockCluster::fence_producer`]: `PRODUCER_FENCED` (90);
//!   - no state for the id on the partition: the first sequence must be 0, else
//!     `OUT_OF_ORDER_SEQUENCE_NUMBER` (45; Kafka before 2.5 answered `UNKNOWN_PRODUCER_ID`,
//!     the mock does not);
//!   - an epoch below the known one: `INVALID_PRODUCER_EPOCH` (47);
//!   - a higher epoch must start at sequence 0, else `OUT_OF_ORDER_SEQUENCE_NUMBER`;
//!   - the same epoch and the sequence range of one of the last 5 batches: a duplicate, answered
//!     with success and the base offset it was first written at, and not appended again;
//!   - the same epoch: the first sequence must follow the last one (wrapping from `i32::MAX`
//!     to 0), else `OUT_OF_ORDER_SEQUENCE_NUMBER`.
//!
//!   Batches with producer id -1, or an id this cluster never issued (e.g. hand-built batches
//!   with a zeroed header), are appended unchecked; so are batches seeded with
//!   [`MockCluster::append`]. A failed check appends nothing of that partition's data.
//! - **Fetch**: whole stored batches from the fetch offset, limited roughly by the byte limits
//!   (the first batch is always returned, KIP-74); `OFFSET_OUT_OF_RANGE`,
//!   `NOT_LEADER_OR_FOLLOWER`, `FENCED_LEADER_EPOCH`/`UNKNOWN_LEADER_EPOCH` checks; long-polls
//!   up to `max_wait_ms` until `min_bytes` arrive. Fetch sessions are not modelled: the
//!   session id is always 0 (every response is a full response).
//! - **ListOffsets**: earliest (-2) is the log start offset, latest (-1) the high watermark,
//!   max-timestamp (-3) the last offset of the batch with the highest max timestamp; other
//!   timestamps give the base offset of the first batch whose max timestamp reaches them (batch
//!   granularity), or -1.
//! - **OffsetForLeaderEpoch**: the end offset of the requested epoch, from the leader epochs
//!   stamped into the stored batches (the current epoch ends at the high watermark).
//! - **FindCoordinator**: the coordinator broker (0 unless [`MockCluster::set_coordinator`]).
//! - **OffsetCommit / OffsetFetch**: a plain offset store per (group, topic, partition), on any
//!   broker, with no group membership checks; unknown offsets are -1.
//! - **InitProducerId**: fresh producer ids from 1000, epoch 0; a transactional id bumps the
//!   epoch of its producer id. A KIP-360 request (v3+, no transactional id) naming a producer id
//!   and its current epoch gets the same id with the epoch + 1; a stale epoch of an issued id
//!   gets `INVALID_PRODUCER_EPOCH`, a fenced one `PRODUCER_FENCED`.
//! - **Admin** (`mock/handlers/admin.rs`): CreatePartitions grows a topic; DeleteRecords moves
//!   log start offsets; DescribeConfigs / IncrementalAlterConfigs keep topic and broker configs
//!   per cluster (SET, DELETE, APPEND, SUBTRACT); DescribeCluster lists the brokers; ListGroups
//!   lists the groups with committed offsets; OffsetDelete drops a group's committed offsets.
//! - **Any other API** is decoded with its request type (a bad body closes the connection) and
//!   answered with its response type's `Default` value (all fields default, error code 0).
//!
//! Not modelled: replication/followers, transactions and transaction markers, transactional
//! state in the producer checks (a transactional batch is checked like an idempotent one),
//! producer state expiry, group membership (JoinGroup, SyncGroup, Heartbeat... get default
//! responses), quotas, ACLs, config validation (any name and value is kept), TLS, compression
//! (batches are opaque),
//! log-append-time timestamps, the last stable offset (always the high watermark), fetch
//! sessions, record-level validation (no CRC check). Metadata always lists every broker, even a
//! stopped one.
//!
//! # SASL
//!
//! Off by default (a `PLAINTEXT` listener: SaslHandshake and SaslAuthenticate get default
//! responses). [`MockCluster::enable_sasl`] with a [`SaslServerConfig`] makes every broker a
//! `SASL_PLAINTEXT` listener, for the connections accepted from then on (open ones keep what
//! they had; [`MockCluster::disable_sasl`] likewise). As Kafka's `SaslServerAuthenticator`:
//!
//! - A new connection may send one ApiVersions (answers with `UNSUPPORTED_VERSION`, KIP-511,
//!   or a scripted error code do not count), then SaslHandshake v1 naming an enabled mechanism
//!   (else `UNSUPPORTED_SASL_MECHANISM` (33) listing the enabled ones, and the connection
//!   closes), then SaslAuthenticate (v0-2) requests carrying the mechanism's tokens. Any other
//!   request before the exchange completes closes the connection without an answer (as does
//!   SaslHandshake v0: raw tokens without SaslAuthenticate framing are not modelled).
//! - A failed authentication is answered with `SASL_AUTHENTICATION_FAILED` (58) and Kafka's
//!   message (e.g. `Authentication failed: Invalid username or password`; never a password or
//!   token), then the connection closes.
//! - Success counts in [`MockCluster::authentications`] / [`MockBroker::authentications`] and
//!   returns `session_lifetime_ms` (v1+): [`SaslServerConfig::session_lifetime`], for
//!   OAUTHBEARER at most the token's remaining lifetime (KIP-368). Once it has run out, the next
//!   request other than SaslHandshake closes the connection. A SaslHandshake on an
//!   authenticated connection starts a re-authentication, which must use the same mechanism and
//!   end with the same principal (else 58 and closed); it resets the session clock. Requests
//!   keep being answered in order throughout. SaslAuthenticate outside an exchange gets
//!   `ILLEGAL_SASL_STATE` (34).
//! - Mechanisms: **PLAIN** (RFC 4616 `authzid NUL user NUL password` against
//!   [`SaslServerConfig::users`]); **SCRAM-SHA-256** and **SCRAM-SHA-512** (the server of the
//!   `rsasl` crate, an implementation independent of kafkawire's client, with a random salt per
//!   user and [`SaslServerConfig::scram_iterations`]; an unknown user fails at the last step, as
//!   RFC 5802 suggests); **OAUTHBEARER** (RFC 7628: `n,,^Aauth=Bearer <token>^Akey=value^A^A`;
//!   the token must be an unsecured JWS, header `{"alg":"none"}`, whose payload has a string
//!   `sub` (the principal) and an `exp` in the future; the extensions are recorded for
//!   [`MockCluster::oauth_extensions`]; a bad token gets the error challenge
//!   `{"status":"invalid_token"}` in a successful response, and the client's `%x01` answer then
//!   gets 58).
//! - Scripted actions apply to SaslHandshake and SaslAuthenticate as to any API, after the
//!   state checks above: an injected error code is answered, then the connection closes;
//!   `Respond`, `NoResponse` and `DropConnection` leave the SASL state as it was.
//!
//! Not modelled for SASL: GSSAPI (it may be listed as enabled; choosing it fails), TLS
//! (`SASL_SSL`), delegation tokens, the one-second minimum between re-authentications, the delay
//! before closing after a failed authentication, and connections closed by the broker at expiry
//! without a request.
//!
//! # Scripting
//!
//! [`MockCluster::script`] (any broker) and [`MockBroker::script`] (one broker) queue an
//! [`Action`] per API. Each request takes the first queued action for its API (the broker's own
//! queue first, then the cluster's) and falls back to the default behaviour when none is left.
//!
//! Each connection is served sequentially, like Kafka's one-request-at-a-time per connection: a
//! delayed response delays the responses to later requests on that connection, never reorders
//! them.
//!
//! ```no_run
//! # async fn demo() {
//! use kafkawire_protocol::ErrorCode;
//! use kafkawire_protocol::messages::ApiKey;
//! use kafkawire_testkit::mock::{Action, MockCluster};
//!
//! let cluster = MockCluster::start(3).await;
//! cluster.create_topic("orders", 2);
//! cluster.script(ApiKey::Produce, Action::ErrorCode(ErrorCode::NOT_LEADER_OR_FOLLOWER));
//! cluster.set_leader("orders", 0, 2);
//! // ... run a client against cluster.bootstrap() ...
//! assert_eq!(cluster.log("orders", 0).len(), 1);
//! # }
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::frame::encode_response;
use kafkawire_protocol::messages::{ApiKey, Message, Request};
use kafkawire_protocol::records::RecordSet;
use kafkawire_protocol::{DecodeError, DecodeErrorKind, ErrorCode, Reader, Uuid};
use tokio::net::TcpListener;

mod broker;
mod handlers;
mod model;
mod sasl;
mod server;

pub use sasl::{SASL_MECHANISMS, SaslServerConfig};

use model::State;
use server::Shared;

/// A set of mock brokers (node ids `0..n`) sharing one cluster model. Dropping it stops every
/// broker and closes every connection.
pub struct MockCluster {
    shared: Arc<Shared>,
    brokers: Vec<MockBroker>,
}

/// A handle to one broker of a [`MockCluster`]. Cheap to clone.
#[derive(Clone)]
pub struct MockBroker {
    id: i32,
    shared: Arc<Shared>,
}

/// What a broker does with the next request of an API (see [`MockCluster::script`]).
pub enum Action {
    /// The response the request would get, but with this error code in every error field
    /// (top level, topics, partitions, coordinators) and no side effect (nothing is appended,
    /// created or deleted). Implemented for Produce (every partition; with `acks = 0` the
    /// connection is closed instead), Fetch (every partition; fetch-session codes 70, 71 and 106
    /// at the top level instead), ListOffsets, OffsetForLeaderEpoch, Metadata (each listed
    /// topic, with no partitions), DescribeGroups and ConsumerGroupDescribe (each group),
    /// FindCoordinator, InitProducerId, CreateTopics, DeleteTopics, ApiVersions
    /// (`UNSUPPORTED_VERSION` as a v0 answer), OffsetCommit, OffsetFetch and the APIs whose
    /// response has a top-level error code (Heartbeat, JoinGroup, SyncGroup, LeaveGroup,
    /// EndTxn, AddOffsetsToTxn, ListGroups, DescribeCluster, SaslHandshake, ...).
    /// For other APIs the connection is closed and a warning logged.
    ErrorCode(ErrorCode),
    /// Close the connection after reading the request, without answering.
    DropConnection,
    /// Wait, then behave as by default.
    Delay(Duration),
    /// Wait, then perform the inner action.
    Delayed(Duration, Box<Action>),
    /// Read the request and never answer it (the connection stays open and later requests on it
    /// are still answered).
    NoResponse,
    /// Behave as by default (side effects included: a Produce is appended), then close the
    /// connection without sending the response: a connection cut after the request arrived and
    /// before its answer did.
    ProcessThenDrop,
    /// Answer with whatever the closure returns; the general escape hatch.
    Respond(Responder),
    /// The default behaviour (side effects included), with the response passed through a closure
    /// first. Build with [`Action::modify`].
    Modify(Modifier),
}

/// The closure of [`Action::Respond`].
pub type Responder = Box<dyn FnOnce(&ScriptedRequest) -> Reply + Send>;

/// The closure of [`Action::Modify`]: receives the default response as `&mut dyn Any`.
pub type Modifier = Box<dyn FnOnce(&mut dyn Any) + Send>;

impl Action {
    /// [`Action::Respond`] from a closure.
    pub fn respond(f: impl FnOnce(&ScriptedRequest) -> Reply + Send + 'static) -> Action {
        Action::Respond(Box::new(f))
    }

    /// [`Action::Modify`] for response type `M` (e.g. `ProduceResponse`). If the API's response
    /// is not an `M`, the closure is not called and a warning is logged.
    pub fn modify<M: Message>(f: impl FnOnce(&mut M) + Send + 'static) -> Action {
        Action::Modify(Box::new(move |any: &mut dyn Any| {
            match any.downcast_mut::<M>() {
                Some(m) => f(m),
                None => tracing::warn!(
                    "mock broker: Action::modify::<{}> does not match the response type",
                    M::NAME
                ),
            }
        }))
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ErrorCode(c) => f.debug_tuple("ErrorCode").field(c).finish(),
            Action::DropConnection => f.write_str("DropConnection"),
            Action::Delay(d) => f.debug_tuple("Delay").field(d).finish(),
            Action::Delayed(d, a) => f.debug_tuple("Delayed").field(d).field(a).finish(),
            Action::NoResponse => f.write_str("NoResponse"),
            Action::ProcessThenDrop => f.write_str("ProcessThenDrop"),
            Action::Respond(_) => f.write_str("Respond(..)"),
            Action::Modify(_) => f.write_str("Modify(..)"),
        }
    }
}

/// What to send back for a request (result of an [`Action::Respond`] closure).
#[derive(Debug, Clone)]
pub enum Reply {
    /// These bytes, as they are: a whole frame including its size prefix (see
    /// [`ScriptedRequest::reply`]), or anything else to test a client's handling of garbage.
    Frame(Bytes),
    /// Nothing; the connection stays open.
    Nothing,
    /// Close the connection.
    Close,
}

/// A request handed to an [`Action::Respond`] closure.
#[derive(Debug)]
pub struct ScriptedRequest {
    /// Node id of the broker that received it.
    pub broker_id: i32,
    /// Its API.
    pub api_key: ApiKey,
    /// Its API version.
    pub version: i16,
    /// Its correlation id.
    pub correlation_id: i32,
    /// The client id from its header.
    pub client_id: Option<String>,
    body: Reader,
}

impl ScriptedRequest {
    /// Decodes the request body as `R`.
    ///
    /// # Errors
    /// [`DecodeError`] if the body is invalid or `R` is not this request's API.
    pub fn decode<R: Request>(&self) -> Result<R, DecodeError> {
        if R::API_KEY != self.api_key {
            return Err(self.body.error(
                R::NAME,
                DecodeErrorKind::Invalid(format!(
                    "request is {}, not {}",
                    self.api_key.name(),
                    R::API_KEY.name()
                )),
            ));
        }
        R::decode(&mut self.body.clone(), self.version)
    }

    /// A whole response frame for this request (its API, correlation id and version). If the
    /// response cannot be encoded in that version, logs a warning and closes the connection.
    pub fn reply<M: Message>(&self, response: &M) -> Reply {
        self.reply_with_version(self.version, response)
    }

    /// Like [`reply`](Self::reply), at another version (e.g. v0 for an ApiVersions error).
    pub fn reply_with_version<M: Message>(&self, version: i16, response: &M) -> Reply {
        let mut buf = BytesMut::new();
        match encode_response(
            &mut buf,
            self.api_key,
            self.correlation_id,
            version,
            response,
        ) {
            Ok(()) => Reply::Frame(buf.freeze()),
            Err(e) => {
                tracing::warn!(
                    "mock broker {}: cannot encode {} v{version}: {e}",
                    self.broker_id,
                    M::NAME
                );
                Reply::Close
            }
        }
    }
}

/// A record of a partition's log, in [`MockCluster::records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
}

/// One request as received, in [`MockCluster::requests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Node id of the broker that received it.
    pub broker_id: i32,
    /// API key as sent (also unknown ones).
    pub api_key: i16,
    /// API version as sent.
    pub version: i16,
    /// Correlation id as sent.
    pub correlation_id: i32,
    /// Client id from the header.
    pub client_id: Option<String>,
}

impl RequestRecord {
    /// The API, if the protocol crate knows the key.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::from_i16(self.api_key)
    }
}

impl MockCluster {
    /// Starts `n_brokers` brokers (node ids `0..n_brokers`), each on a free `127.0.0.1` port.
    /// Must be called inside a tokio runtime.
    ///
    /// # Panics
    /// If a loopback port cannot be bound (see [`try_start`](Self::try_start)) or `n_brokers`
    /// is 0.
    pub async fn start(n_brokers: usize) -> MockCluster {
        match Self::try_start(n_brokers).await {
            Ok(c) => c,
            Err(e) => panic!("cannot start the mock cluster: {e}"),
        }
    }

    /// Like [`start`](Self::start), returning the bind error instead of panicking.
    ///
    /// # Errors
    /// The I/O error of binding a listener; `InvalidInput` when `n_brokers` is 0.
    pub async fn try_start(n_brokers: usize) -> io::Result<MockCluster> {
        if n_brokers == 0 || n_brokers > i32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a mock cluster needs at least one broker",
            ));
        }
        let mut listeners = Vec::with_capacity(n_brokers);
        for _ in 0..n_brokers {
            listeners.push(TcpListener::bind(("127.0.0.1", 0)).await?);
        }
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<SocketAddr>>>()?;
        let shared = Arc::new(Shared::new(State::new(&addrs)));
        let mut brokers = Vec::with_capacity(n_brokers);
        for (id, listener) in listeners.into_iter().enumerate() {
            let id = id as i32;
            server::spawn_broker(&shared, id, listener);
            brokers.push(MockBroker {
                id,
                shared: shared.clone(),
            });
        }
        Ok(MockCluster { shared, brokers })
    }

    /// The bootstrap list `"127.0.0.1:p0,127.0.0.1:p1,..."` (real listener addresses).
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(MockBroker::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listener address `"127.0.0.1:port"` of broker `id`.
    ///
    /// # Panics
    /// If there is no broker `id`.
    pub fn broker_addr(&self, id: i32) -> String {
        self.broker(id).addr()
    }

    /// The handle of broker `id`.
    ///
    /// # Panics
    /// If there is no broker `id`.
    pub fn broker(&self, id: i32) -> &MockBroker {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.brokers.get(i))
            .unwrap_or_else(|| panic!("mock cluster has no broker {id}"))
    }

    /// All broker handles, by node id.
    pub fn brokers(&self) -> &[MockBroker] {
        &self.brokers
    }

    /// Queues `action` for the next request of `key` on any broker (after the receiving
    /// broker's own queue, see [`MockBroker::script`]).
    pub fn script(&self, key: ApiKey, action: Action) {
        self.shared.push_script(None, key, action);
    }

    /// Queues `action` `n` times (each built by `make`).
    pub fn script_n(&self, key: ApiKey, n: usize, mut make: impl FnMut() -> Action) {
        for _ in 0..n {
            self.script(key, make());
        }
    }

    /// Scripted actions not yet consumed, on all brokers and the cluster.
    pub fn pending_scripts(&self) -> usize {
        self.shared
            .with(|s| s.scripts.values().map(VecDeque::len).sum())
    }

    /// Drops every queued action.
    pub fn clear_scripts(&self) {
        self.shared.with(|s| s.scripts.clear());
    }

    /// Creates topic `name` with `partitions` partitions; partition `p`'s leader is broker
    /// `p % n_brokers`, leader epoch 0. Replaces an existing topic of that name.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.shared.with(|s| s.create_topic(name, partitions, None));
    }

    /// Deletes topic `name` and its logs; returns whether it existed.
    pub fn delete_topic(&self, name: &str) -> bool {
        self.shared.with(|s| s.topics.remove(name).is_some())
    }

    /// Names of the topics in the model, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.shared.with(|s| s.topics.keys().cloned().collect())
    }

    /// Topic id of `name` (assigned at creation, never zero).
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.shared.with(|s| s.topics.get(name).map(|t| t.id))
    }

    /// Moves the leadership of a partition to `broker_id` and bumps its leader epoch.
    ///
    /// # Panics
    /// If the partition does not exist.
    pub fn set_leader(&self, topic: &str, partition: i32, broker_id: i32) {
        self.shared.with(|s| {
            let p = s.partition_mut_or_panic(topic, partition);
            p.leader = broker_id;
            p.leader_epoch += 1;
        });
    }

    /// The leader and leader epoch of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        self.shared.with(|s| {
            s.partition(topic, partition)
                .map(|p| (p.leader, p.leader_epoch))
        })
    }

    /// Sets the error code Metadata reports for a partition (`ErrorCode::NONE` to clear). Only
    /// Metadata is affected.
    ///
    /// # Panics
    /// If the partition does not exist.
    pub fn set_partition_error(&self, topic: &str, partition: i32, code: ErrorCode) {
        self.shared
            .with(|s| s.partition_mut_or_panic(topic, partition).error = code.0);
    }

    /// Sets the error code Metadata reports for a whole topic, which is then listed without
    /// partitions (`ErrorCode::NONE` to clear).
    ///
    /// # Panics
    /// If the topic does not exist.
    pub fn set_topic_error(&self, topic: &str, code: ErrorCode) {
        self.shared.with(|s| match s.topics.get_mut(topic) {
            Some(t) => t.error = code.0,
            None => panic!("mock cluster has no topic {topic:?}"),
        });
    }

    /// Advertises broker `id` as `host_port` (`"host:port"`) in Metadata and FindCoordinator,
    /// e.g. an unreachable address. The listener itself does not move.
    ///
    /// # Panics
    /// If there is no broker `id` or `host_port` has no `:port`.
    pub fn set_advertised(&self, id: i32, host_port: &str) {
        let (host, port) = host_port
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<i32>().ok()?)))
            .unwrap_or_else(|| panic!("{host_port:?} is not host:port"));
        self.shared
            .with(|s| s.broker_mut_or_panic(id).advertised = Some((host, port)));
    }

    /// The controller id Metadata reports (default 0).
    pub fn set_controller(&self, id: i32) {
        self.shared.with(|s| s.controller_id = id);
    }

    /// The broker FindCoordinator names for every key (default 0).
    pub fn set_coordinator(&self, id: i32) {
        self.shared.with(|s| s.coordinator_id = id);
    }

    /// The cluster id Metadata reports (default `"mock-cluster"`).
    pub fn set_cluster_id(&self, id: &str) {
        self.shared.with(|s| s.cluster_id = id.to_owned());
    }

    /// Makes Metadata create unknown topics it is asked for (when the request allows it) with
    /// `Some(partitions)` partitions; `None` (the default) turns that off.
    pub fn set_auto_create_topics(&self, partitions: Option<i32>) {
        self.shared.with(|s| s.auto_create = partitions);
    }

    /// Advertises versions `min..=max` of `key` in ApiVersions (adding it if removed). Requests
    /// outside the range close the connection, except ApiVersions itself, which is answered
    /// with `UNSUPPORTED_VERSION` (KIP-511).
    pub fn set_api_versions(&self, key: ApiKey, min: i16, max: i16) {
        self.shared.with(|s| {
            s.api_versions.insert(key as i16, (min, max));
        });
    }

    /// Stops advertising `key`; its requests then close the connection. Removing ApiVersions
    /// only hides it from the list: ApiVersions requests are still answered.
    pub fn remove_api(&self, key: ApiKey) {
        self.shared.with(|s| {
            s.api_versions.remove(&(key as i16));
        });
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.with(|s| s.requests.clone())
    }

    /// How many requests of `key` were received.
    pub fn request_count(&self, key: ApiKey) -> usize {
        self.shared.with(|s| {
            s.requests
                .iter()
                .filter(|r| r.api_key == key as i16)
                .count()
        })
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.with(|s| s.requests.clear());
    }

    /// The stored batches of a partition (base offsets and leader epochs as assigned), empty if
    /// the partition does not exist.
    pub fn log(&self, topic: &str, partition: i32) -> Vec<Bytes> {
        self.shared.with(|s| {
            s.partition(topic, partition)
                .map(|p| p.batches.iter().map(|b| b.bytes.clone()).collect())
                .unwrap_or_default()
        })
    }

    /// Every magic-2 batch that Produce requests carried to a leader, in arrival order and as
    /// received (before the idempotence checks, so retries, duplicates and refused batches are
    /// all here): `(topic, partition, batch bytes)`. For checking what a producer sent, e.g.
    /// that a retried batch kept its producer id, epoch, sequence and records.
    pub fn produced_batches(&self) -> Vec<(String, i32, Bytes)> {
        self.shared.with(|s| s.produced.clone())
    }

    /// How many records a partition's log holds (from the stored batches' record counts; 0 if
    /// the partition does not exist).
    pub fn record_count(&self, topic: &str, partition: i32) -> usize {
        self.shared.with(|s| {
            s.partition(topic, partition)
                .map_or(0, model::PartitionModel::record_count)
        })
    }

    /// The records of a partition's log (offset, key, value), decoded from the stored batches
    /// with [`RecordSet`]; empty if the partition does not exist.
    ///
    /// # Errors
    /// The [`DecodeError`] of the first stored batch or record that does not decode (e.g.
    /// hand-built batches whose records are placeholders).
    pub fn records(&self, topic: &str, partition: i32) -> Result<Vec<StoredRecord>, DecodeError> {
        let mut out = Vec::new();
        for stored in self.log(topic, partition) {
            for batch in RecordSet::new(stored) {
                let batch = batch?;
                for r in batch.records() {
                    let r = r?;
                    out.push(StoredRecord {
                        offset: r.offset(),
                        key: r.key().map(Bytes::copy_from_slice),
                        value: r.value().map(Bytes::copy_from_slice),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Fences producer id `id`, as a new instance with its transactional id would: every epoch
    /// issued so far is stale, and a later Produce carrying one of them gets `PRODUCER_FENCED`
    /// (90), as does an InitProducerId bumping one. Returns the first epoch still allowed.
    pub fn fence_producer(&self, id: i64) -> i16 {
        self.shared.with(|s| s.fence_producer(id))
    }

    /// The idempotence state of producer `id` on a partition: its epoch and last appended
    /// sequence; `None` if it has appended nothing there.
    pub fn producer_state(&self, topic: &str, partition: i32, id: i64) -> Option<(i16, i32)> {
        self.shared.with(|s| {
            let e = s.partition(topic, partition)?.producers.get(&id)?;
            Some((e.epoch, e.last_sequence()?))
        })
    }

    /// The high watermark (next offset) of a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared
            .with(|s| s.partition(topic, partition).map(|p| p.high_watermark))
    }

    /// Appends record batches (one or more magic-2 batches) as a Produce to the leader would,
    /// for seeding data; returns the base offset.
    ///
    /// # Errors
    /// `UNKNOWN_TOPIC_OR_PARTITION`, or `CORRUPT_MESSAGE` when the bytes are not whole magic-2
    /// batches.
    pub fn append(&self, topic: &str, partition: i32, batches: &[u8]) -> Result<i64, ErrorCode> {
        let r = self.shared.with(|s| s.append(topic, partition, batches));
        self.shared.appended.notify_waiters();
        r.map_err(ErrorCode)
    }

    /// Moves a partition's log start offset (as retention or DeleteRecords would), dropping the
    /// batches wholly below it. Clamped to the high watermark.
    ///
    /// # Panics
    /// If the partition does not exist.
    pub fn set_log_start_offset(&self, topic: &str, partition: i32, offset: i64) {
        self.shared.with(|s| {
            let p = s.partition_mut_or_panic(topic, partition);
            p.log_start = offset.clamp(0, p.high_watermark);
            let start = p.log_start;
            p.batches.retain(|b| b.last_offset >= start);
        });
    }

    /// How many connections broker `id` has accepted in total.
    pub fn connections(&self, broker_id: i32) -> usize {
        self.broker(broker_id).connections()
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        for b in &self.brokers {
            self.shared.abort(b.id);
        }
    }
}

impl fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockCluster")
            .field("bootstrap", &self.bootstrap())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
