//! [`Client`]: bootstrap, metadata cache, connections per broker, and routing of requests to
//! partition leaders.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use kafkawire_protocol::messages::Request;
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};

use crate::address_map::BrokerAddressMap;
use crate::connection::{Connection, ConnectionConfig};
use crate::error::{Error, Result};
use crate::metadata::ClusterMetadata;
use crate::security::SecurityConfig;
use crate::stats::{BrokerCounters, ClientStats};
use crate::tls::{self, TlsConnector};

/// Settings of a [`Client`]. Defaults follow the Java client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Bootstrap `host:port` addresses, tried in order until one answers.
    pub bootstrap: Vec<String>,
    /// Sent in every request header (`client.id`).
    pub client_id: Option<String>,
    /// Time to wait for each response (`request.timeout.ms`, default 30 s).
    pub request_timeout: Duration,
    /// Time allowed to set up a connection: TCP connect and the ApiVersions handshake
    /// (`socket.connection.setup.timeout.ms`, default 10 s). After each consecutive failure
    /// to reach the same broker it doubles (with ±20% jitter) up to
    /// [`connection_setup_timeout_max`](Self::connection_setup_timeout_max).
    pub connection_setup_timeout: Duration,
    /// Upper bound of the growing setup timeout (`socket.connection.setup.timeout.max.ms`,
    /// default 30 s).
    pub connection_setup_timeout_max: Duration,
    /// Wait before connecting again to a broker that just failed (`reconnect.backoff.ms`,
    /// default 50 ms); doubles after each consecutive failure, with ±20% jitter.
    pub reconnect_backoff: Duration,
    /// Upper bound of the reconnect backoff (`reconnect.backoff.max.ms`, default 1 s).
    pub reconnect_backoff_max: Duration,
    /// Refresh metadata at least this often (`metadata.max.age.ms`, default 5 min).
    pub metadata_max_age: Duration,
    /// Rewrites advertised broker addresses to reachable ones.
    pub address_map: BrokerAddressMap,
    /// Largest response frame accepted, in bytes (default 100 MiB).
    pub max_frame_size: usize,
    /// Whether Metadata requests may create missing topics (broker's `auto.create.topics.enable`
    /// must allow it too). Default true, as in the Java client.
    pub allow_auto_topic_creation: bool,
    /// TLS and SASL (`security.protocol` and the `ssl.*`/`sasl.*` settings); default plaintext.
    pub security: SecurityConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap: vec!["127.0.0.1:9092".into()],
            client_id: Some("kafkawire".into()),
            request_timeout: Duration::from_secs(30),
            connection_setup_timeout: Duration::from_secs(10),
            connection_setup_timeout_max: Duration::from_secs(30),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            metadata_max_age: Duration::from_secs(300),
            address_map: BrokerAddressMap::default(),
            max_frame_size: kafkawire_protocol::frame::DEFAULT_MAX_FRAME_SIZE,
            allow_auto_topic_creation: true,
            security: SecurityConfig::default(),
        }
    }
}

impl ClientConfig {
    /// A configuration with these bootstrap addresses (comma-separated `host:port` list).
    pub fn new(bootstrap: &str) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ..Default::default()
        }
    }

    fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig {
            client_id: self.client_id.clone(),
            request_timeout: self.request_timeout,
            max_frame_size: self.max_frame_size,
            sasl: self.security.sasl.clone(),
            ..Default::default()
        }
    }
}

struct Inner {
    config: ClientConfig,
    /// The bootstrap address that answered, and its connection.
    bootstrap: tokio::sync::Mutex<Option<(String, Arc<Connection>)>>,
    bootstrap_addr: RwLock<Option<String>>,
    /// One slot per broker; a slot's own lock is held across a connect to that broker only, so
    /// an unreachable broker delays no traffic to the others.
    brokers: std::sync::Mutex<HashMap<i32, Arc<tokio::sync::Mutex<BrokerSlot>>>>,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// The TLS connector of every connection, built once from `config.security.tls` when the
    /// security protocol uses TLS.
    tls: Option<TlsConnector>,
    /// The counters of each broker address dialled (locked only to open a connection and to
    /// take a snapshot).
    stats: std::sync::Mutex<HashMap<String, Arc<BrokerCounters>>>,
}

/// A handle on a Kafka cluster: clone it freely, all clones share connections and metadata.
///
/// ```no_run
/// # async fn demo() -> Result<(), kafkawire_client::Error> {
/// use kafkawire_client::{Client, ClientConfig};
/// let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
/// let meta = client.refresh_metadata(&["orders"]).await?;
/// println!("{} brokers", meta.brokers.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.config.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the first bootstrap address that answers, negotiates versions and loads the
    /// broker list. Starts a background metadata refresh every `metadata_max_age`.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty bootstrap list or TLS settings that cannot be loaded (a
    /// CA or key file), [`Error::Tls`] when a bootstrap broker failed the TLS handshake (or
    /// speaks TLS to a plaintext client) and none answered, [`Error::NoBrokerReachable`]
    /// naming each address tried and why it failed.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        if config.bootstrap.is_empty() {
            return Err(Error::Config("the bootstrap list is empty".into()));
        }
        config.security.validate()?;
        let tls = match config.security.protocol.uses_tls() {
            true => Some(TlsConnector::new(&config.security.tls)?),
            false => None,
        };
        let client = Client {
            inner: Arc::new(Inner {
                tls,
                config,
                bootstrap: tokio::sync::Mutex::new(None),
                bootstrap_addr: RwLock::new(None),
                brokers: std::sync::Mutex::new(HashMap::new()),
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                stats: std::sync::Mutex::new(HashMap::new()),
            }),
        };
        client.refresh_metadata(&[]).await?;
        let weak = Arc::downgrade(&client.inner);
        let every = client.inner.config.metadata_max_age;
        tokio::spawn(refresh_loop(weak, every));
        Ok(client)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// What this client (and every producer and consumer on it) has counted so far, per broker
    /// address: requests per API, bytes both ways, latency, requests in flight, throttle time,
    /// failed requests, connects and reconnects. Counting costs a few relaxed atomic operations
    /// per request; a snapshot takes a lock and reads them. With the `metrics` feature the same
    /// counters go to the `metrics` recorder (see [`crate::stats`]).
    pub fn stats(&self) -> ClientStats {
        let counters: Vec<Arc<BrokerCounters>> = self
            .inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut brokers: Vec<_> = counters.iter().map(|c| c.snapshot()).collect();
        brokers.sort_by(|a, b| a.address.cmp(&b.address));
        ClientStats { brokers }
    }

    /// The counters of broker address `address` (created on first use), with its node id when
    /// known.
    fn counters(&self, address: &str, node_id: Option<i32>) -> Arc<BrokerCounters> {
        let c = self
            .inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(address.to_owned())
            .or_insert_with(|| Arc::new(BrokerCounters::new(address)))
            .clone();
        if let Some(id) = node_id {
            c.set_node_id(id);
        }
        c
    }

    /// Sets up a connection to `address`, counting it (a reconnect when it replaces a lost
    /// shared connection, as `kind` says).
    async fn dial(
        &self,
        address: &str,
        node_id: Option<i32>,
        config: ConnectionConfig,
        setup_timeout: Duration,
        kind: Dial,
    ) -> Result<Connection> {
        let counters = self.counters(address, node_id);
        let c =
            Connection::connect_counted(address, config, setup_timeout, counters.clone()).await?;
        let again = match kind {
            Dial::Bootstrap => counters.bootstrapped(),
            Dial::Shared { again } => again,
            Dial::Dedicated => false,
        };
        counters.on_connect(again);
        Ok(c)
    }

    /// The bootstrap address that answered last.
    pub fn bootstrap_address(&self) -> Option<String> {
        self.inner
            .bootstrap_addr
            .read()
            .ok()
            .and_then(|a| a.clone())
    }

    /// The current metadata snapshot (may be stale; see [`Client::refresh_metadata`]).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        match self.inner.metadata.read() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The settings of a connection whose broker's certificate must name `server_name` (the
    /// advertised host, or the bootstrap host as configured).
    fn connection_config(&self, server_name: &str) -> ConnectionConfig {
        ConnectionConfig {
            tls: self.inner.tls.clone(),
            server_name: Some(server_name.to_owned()),
            ..self.inner.config.connection_config()
        }
    }

    async fn bootstrap_connection(&self) -> Result<Arc<Connection>> {
        let mut guard = self.inner.bootstrap.lock().await;
        if let Some((_, c)) = guard.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let mut attempts = Vec::new();
        let mut settings_failure = None;
        for addr in &self.inner.config.bootstrap {
            match self
                .dial(
                    addr,
                    None,
                    self.connection_config(tls::host_of(addr)),
                    self.inner.config.connection_setup_timeout,
                    Dial::Bootstrap,
                )
                .await
            {
                Ok(c) => {
                    let c = Arc::new(c);
                    *guard = Some((addr.clone(), c.clone()));
                    if let Ok(mut a) = self.inner.bootstrap_addr.write() {
                        *a = Some(addr.clone());
                    }
                    return Ok(c);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap address failed");
                    attempts.push((addr.clone(), e.to_string()));
                    if matches!(e, Error::Tls { .. } | Error::Authentication { .. })
                        && settings_failure.is_none()
                    {
                        settings_failure = Some(e);
                    }
                }
            }
        }
        // A TLS or authentication failure is a setting to fix (trust roots, security protocol,
        // client certificate, credentials), not an outage: it is reported as itself, not
        // retriable.
        if let Some(e) = settings_failure {
            return Err(e);
        }
        Err(Error::NoBrokerReachable { attempts })
    }

    /// A live connection to some broker: the bootstrap connection (opened again from the
    /// configured bootstrap list whenever it is gone, so a client whose known brokers all
    /// vanished starts again from that list, KIP-899), else an open connection to any broker,
    /// else a new connection to a broker of the cached metadata (for a cluster that no longer
    /// answers at its bootstrap addresses).
    ///
    /// # Errors
    /// [`Error::NoBrokerReachable`].
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let e = match self.bootstrap_connection().await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let slots: Vec<_> = self.slots().into_iter().map(|(_, s)| s).collect();
        for slot in slots {
            if let Ok(g) = slot.try_lock()
                && let Some(c) = g.conn.as_ref().filter(|c| !c.is_closed())
            {
                return Ok(c.clone());
            }
        }
        let meta = self.metadata();
        let mut known: Vec<_> = meta.brokers.iter().collect();
        known.sort_unstable_by_key(|(id, _)| **id);
        for (id, b) in known {
            let slot = self.slot(*id);
            let Ok(mut g) = slot.try_lock() else { continue };
            let target = self.inner.config.address_map.resolve(&b.address());
            let setup = self.inner.config.connection_setup_timeout;
            if let Ok(c) = self
                .dial(
                    &target,
                    Some(*id),
                    self.connection_config(&b.host),
                    setup,
                    Dial::Shared { again: g.reached },
                )
                .await
            {
                let c = Arc::new(c);
                g.conn = Some(c.clone());
                return Ok(c);
            }
        }
        Err(e)
    }

    /// Fetches metadata for `topics` (all topics when empty is not wanted: pass the names; an
    /// empty slice asks for brokers only on brokers that support it, all topics otherwise) and
    /// merges it into the cache.
    ///
    /// # Errors
    /// Transport errors of the Metadata request. Topic-level errors are kept in the returned
    /// metadata ([`crate::TopicMetadata::error`]) for the caller to judge.
    pub async fn refresh_metadata(&self, topics: &[&str]) -> Result<Arc<ClusterMetadata>> {
        let req = MetadataRequest {
            topics: Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic {
                        name: Some((*t).to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: self.inner.config.allow_auto_topic_creation,
            ..Default::default()
        };
        self.metadata_request(req, false).await
    }

    /// Fetches metadata for every topic in the cluster and replaces the cache.
    ///
    /// # Errors
    /// Transport errors of the Metadata request.
    pub async fn refresh_all_metadata(&self) -> Result<Arc<ClusterMetadata>> {
        let req = MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        self.metadata_request(req, true).await
    }

    async fn metadata_request(
        &self,
        mut req: MetadataRequest,
        replace: bool,
    ) -> Result<Arc<ClusterMetadata>> {
        let conn = self.any_connection().await?;
        let version = conn.version_for(MetadataRequest::API_KEY)?;
        if version == 0 && req.topics.as_ref().is_some_and(Vec::is_empty) {
            // v0 has no "no topics" form: an empty list means all topics there.
            req.topics = Some(Vec::new());
        }
        if version < 4 {
            req.allow_auto_topic_creation = true;
        }
        let resp = match conn.send_version(&req, version).await {
            Ok(r) => r,
            Err(e) => {
                self.drop_bootstrap(&conn).await;
                return Err(e);
            }
        };
        let fresh = ClusterMetadata::from_response(&resp);
        tracing::debug!(
            broker = conn.broker(),
            version,
            brokers = fresh.brokers.len(),
            topics = fresh.topics.len(),
            replace,
            "metadata refreshed"
        );
        let merged = if replace {
            fresh
        } else {
            self.metadata().merge(fresh)
        };
        let merged = Arc::new(merged);
        if let Ok(mut m) = self.inner.metadata.write() {
            *m = merged.clone();
        }
        Ok(merged)
    }

    async fn drop_bootstrap(&self, conn: &Arc<Connection>) {
        let mut g = self.inner.bootstrap.lock().await;
        if g.as_ref().is_some_and(|(_, c)| Arc::ptr_eq(c, conn)) {
            *g = None;
        }
    }

    /// Metadata that knows `topic`, refreshing once if the cache does not.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Broker`] with the topic's error code (e.g.
    /// UNKNOWN_TOPIC_OR_PARTITION) when the cluster does not have it.
    pub async fn topic_metadata(&self, topic: &str) -> Result<crate::TopicMetadata> {
        if let Some(t) = self.metadata().topics.get(topic)
            && t.error.is_ok()
            && !t.partitions.is_empty()
        {
            return Ok(t.clone());
        }
        let m = self.refresh_metadata(&[topic]).await?;
        match m.topics.get(topic) {
            Some(t) if t.error.is_ok() && !t.partitions.is_empty() => Ok(t.clone()),
            Some(t) => Err(Error::broker_error(
                if t.error.is_ok() {
                    kafkawire_protocol::ErrorCode::LEADER_NOT_AVAILABLE
                } else {
                    t.error
                },
                MetadataRequest::API_KEY,
                None,
                Some(topic),
                None,
                None,
            )),
            None => Err(Error::broker_error(
                kafkawire_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                MetadataRequest::API_KEY,
                None,
                Some(topic),
                None,
                None,
            )),
        }
    }

    /// The node id of the partition's leader, refreshing metadata once if unknown.
    ///
    /// # Errors
    /// As [`Client::topic_metadata`], and [`Error::NoLeader`] (retriable) when the partition has
    /// no leader right now.
    pub async fn leader_for(&self, topic: &str, partition: i32) -> Result<i32> {
        let lookup =
            |m: &ClusterMetadata| m.partition(topic, partition).map(|p| (p.leader, p.error));
        if let Some((leader, _)) = lookup(&self.metadata()).filter(|(l, _)| *l >= 0) {
            return Ok(leader);
        }
        // Unknown partition, or no leader in the cached metadata (an election may have ended
        // since): ask again.
        self.refresh_metadata(&[topic]).await?;
        match lookup(&self.metadata()) {
            Some((leader, _)) if leader >= 0 => Ok(leader),
            Some((_, err)) => Err(Error::NoLeader {
                topic: topic.to_owned(),
                partition,
                reason: (!err.is_ok()).then(|| err.to_string()),
            }),
            None => {
                // Distinguish a missing topic (its error) from a missing partition.
                self.topic_metadata(topic).await?;
                Err(Error::broker_error(
                    kafkawire_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    MetadataRequest::API_KEY,
                    None,
                    Some(topic),
                    Some(partition),
                    None,
                ))
            }
        }
    }

    /// A connection to broker `node_id`, opened to its advertised address after the address map.
    ///
    /// The broker's slot is locked across the connect, so concurrent callers for the same broker
    /// share one connect while traffic to other brokers goes on. After a failed connect, the
    /// next one waits a reconnect backoff (`reconnect_backoff`, doubling per consecutive failure
    /// up to `reconnect_backoff_max`, ±20% jitter) and gets a longer setup timeout
    /// (`connection_setup_timeout` doubling up to `connection_setup_timeout_max`), as the Java
    /// client does.
    ///
    /// # Errors
    /// [`Error::AdvertisedListenerUnreachable`] when the bootstrap broker answered but this
    /// broker's advertised address cannot be resolved or connected (the advertised-listener
    /// trap); [`Error::Io`] for a broker that is down while others answer;
    /// [`Error::UnknownBroker`] (retriable) when the node is not in the metadata even after a
    /// refresh.
    pub async fn broker_connection(&self, node_id: i32) -> Result<Arc<Connection>> {
        let slot = self.slot(node_id);
        let mut slot = slot.lock().await;
        if let Some(c) = slot.conn.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        slot.conn = None;
        if let Some(at) = slot.retry_at {
            tokio::time::sleep_until(at).await;
        }
        let cfg = &self.inner.config;
        let setup = grow(
            cfg.connection_setup_timeout,
            cfg.connection_setup_timeout_max,
            slot.failures,
        );
        // A broker reached before that fails now is down or restarting, not misconfigured; one
        // never reached is diagnosed (the advertised-listener trap) when its host name does not
        // resolve, or when it has failed 3 times over at least a second (a broker that is just
        // restarting is not the trap).
        let persistent = slot.failures >= 2
            && slot
                .first_failure
                .is_some_and(|t| t.elapsed() >= Duration::from_secs(1));
        let diagnose = match slot.reached {
            true => Diagnose::Never,
            false if persistent => Diagnose::Always,
            false => Diagnose::Unresolvable,
        };
        let kind = Dial::Shared {
            again: slot.reached,
        };
        match self.open_connection(node_id, setup, diagnose, kind).await {
            Ok(c) => {
                slot.reached = true;
                slot.failures = 0;
                slot.first_failure = None;
                slot.retry_at = None;
                let c = Arc::new(c);
                slot.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                if !matches!(e, Error::UnknownBroker { .. }) {
                    let wait = grow(
                        cfg.reconnect_backoff,
                        cfg.reconnect_backoff_max,
                        slot.failures,
                    );
                    slot.failures = slot.failures.saturating_add(1);
                    slot.first_failure
                        .get_or_insert_with(tokio::time::Instant::now);
                    slot.retry_at = Some(tokio::time::Instant::now() + wait);
                }
                Err(e)
            }
        }
    }

    /// The slot of broker `node_id`, created on first use.
    fn slot(&self, node_id: i32) -> Arc<tokio::sync::Mutex<BrokerSlot>> {
        let mut map = self.inner.brokers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(node_id).or_default().clone()
    }

    fn slots(&self) -> Vec<(i32, Arc<tokio::sync::Mutex<BrokerSlot>>)> {
        let map = self.inner.brokers.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// A new connection to broker `node_id` that is not shared with the client's other
    /// requests: for a conversation whose requests the broker may hold for long (a group
    /// member's JoinGroup waits for the whole group to rejoin, KIP-62) and that must not wait
    /// behind, or hold up, other traffic on a shared connection (responses come in request
    /// order per connection).
    ///
    /// # Errors
    /// As [`Client::broker_connection`].
    pub async fn dedicated_connection(&self, node_id: i32) -> Result<Connection> {
        self.open_connection(
            node_id,
            self.inner.config.connection_setup_timeout,
            Diagnose::Always,
            Dial::Dedicated,
        )
        .await
    }

    /// Opens a connection to `node_id`; a failure goes through the advertised-listener
    /// diagnosis as `diagnose` says; `kind` says whether it is a reconnect.
    async fn open_connection(
        &self,
        node_id: i32,
        setup_timeout: Duration,
        diagnose: Diagnose,
        kind: Dial,
    ) -> Result<Connection> {
        let mut meta = self.metadata();
        if !meta.brokers.contains_key(&node_id) {
            // A leader or coordinator the cached broker list does not name yet: the metadata
            // is behind (or the broker list came back empty); ask again once.
            meta = self.refresh_metadata(&[]).await?;
        }
        let Some(b) = meta.brokers.get(&node_id) else {
            let mut known: Vec<i32> = meta.brokers.keys().copied().collect();
            known.sort_unstable();
            return Err(Error::UnknownBroker { node_id, known });
        };
        let advertised = b.address();
        let target = self.inner.config.address_map.resolve(&advertised);
        match self
            .dial(
                &target,
                Some(node_id),
                self.connection_config(&b.host),
                setup_timeout,
                kind,
            )
            .await
        {
            Ok(c) => Ok(c),
            // A TLS failure is a setting to fix, never the advertised-listener trap.
            Err(e @ (Error::Tls { .. } | Error::Authentication { .. })) => Err(e),
            Err(e) if diagnose == Diagnose::Never => Err(e),
            Err(e) => Err(self
                .diagnose(
                    node_id,
                    &advertised,
                    &target,
                    e,
                    &meta,
                    diagnose == Diagnose::Always,
                )
                .await),
        }
    }

    /// Turns a failed connect to an advertised address into the advertised-listener diagnosis
    /// when the evidence says so, and leaves it a plain (retriable) I/O error otherwise:
    /// - the advertised address is the bootstrap address itself: the broker is simply down;
    /// - the advertised host name does not resolve: the trap;
    /// - the bootstrap address still answers now, and either this is the only broker (so the
    ///   bootstrap address reaches this very broker) or the bootstrap address is not among the
    ///   advertised ones (clients reach the cluster through another listener), and the failure is
    ///   `persistent` (3 failures over at least a second): the trap.
    async fn diagnose(
        &self,
        node_id: i32,
        advertised: &str,
        target: &str,
        e: Error,
        meta: &ClusterMetadata,
        persistent: bool,
    ) -> Error {
        let Some(bootstrap) = self.bootstrap_address() else {
            return e;
        };
        let Error::Io { source, .. } = &e else {
            return e;
        };
        if target == bootstrap {
            return e;
        }
        let text = source.to_string();
        let unresolvable =
            text.contains("lookup") || text.contains("resolve") || text.contains("Name or service");
        let trap = unresolvable
            || persistent && {
                let single_broker = meta.brokers.len() == 1;
                let bootstrap_is_advertised =
                    meta.brokers.values().any(|b| b.address() == bootstrap);
                (single_broker || !bootstrap_is_advertised) && self.bootstrap_answers().await
            };
        if !trap {
            return e;
        }
        let reason = if unresolvable {
            format!("the host name does not resolve: {text}")
        } else {
            text
        };
        Error::AdvertisedListenerUnreachable {
            bootstrap,
            node_id,
            advertised: advertised.to_owned(),
            mapped_to: (target != advertised).then(|| target.to_owned()),
            reason,
        }
    }

    /// Whether the bootstrap connection is open, or can be opened again right now.
    async fn bootstrap_answers(&self) -> bool {
        self.bootstrap_connection().await.is_ok()
    }

    /// The node id of the coordinator for `key`: a consumer group (`key_type` 0) or a
    /// transactional id (`key_type` 1) (FindCoordinator; KIP-699 batches keys from v4). A
    /// coordinator missing from the cached metadata triggers a metadata refresh.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Broker`] with the coordinator error (e.g.
    /// COORDINATOR_NOT_AVAILABLE, retriable).
    pub async fn find_coordinator(&self, key_type: i8, key: &str) -> Result<i32> {
        use kafkawire_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
        let conn = self.any_connection().await?;
        let version = conn.version_for(FindCoordinatorRequest::API_KEY)?;
        let req = FindCoordinatorRequest {
            key: if version < 4 {
                key.to_owned()
            } else {
                String::new()
            },
            key_type,
            coordinator_keys: if version >= 4 {
                vec![key.to_owned()]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        let (code, node, message) = if version >= 4 {
            match resp.coordinators.iter().find(|c| c.key == key) {
                Some(c) => (c.error_code, c.node_id, c.error_message.clone()),
                None => (
                    kafkawire_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE.0,
                    -1,
                    Some("the response names no coordinator for the key".into()),
                ),
            }
        } else {
            (resp.error_code, resp.node_id, resp.error_message.clone())
        };
        if code != 0 {
            return Err(Error::broker_error(
                kafkawire_protocol::ErrorCode(code),
                FindCoordinatorRequest::API_KEY,
                Some(conn.broker()),
                None,
                None,
                message
                    .map(|m| format!("{m} (key {key})"))
                    .or_else(|| Some(format!("key {key}"))),
            ));
        }
        if !self.metadata().brokers.contains_key(&node) {
            self.refresh_metadata(&[]).await?;
        }
        Ok(node)
    }

    /// Retires the shared connection to `node_id` (every request waiting on it fails with a
    /// retriable error), so the next request opens a new one. A connection retires itself on
    /// transport errors and unanswered requests; this is for callers that stop trusting it for
    /// another reason (a response body that does not decode). Does nothing while a connect to
    /// that broker is under way (the connection it makes is new).
    pub async fn drop_connection(&self, node_id: i32) {
        let slot = self
            .inner
            .brokers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node_id)
            .cloned();
        if let Some(slot) = slot
            && let Ok(mut g) = slot.try_lock()
            && let Some(c) = g.conn.take()
        {
            c.retire();
        }
    }

    /// Sends `req` to broker `node_id` in the negotiated version.
    ///
    /// # Errors
    /// As [`Client::broker_connection`] and [`Connection::send`]. A transport failure or an
    /// unanswered request retires the connection (the next call reconnects); so does a response
    /// that does not decode.
    pub async fn send_to<R: Request>(&self, node_id: i32, req: &R) -> Result<R::Response> {
        let conn = self.broker_connection(node_id).await?;
        let r = conn.send(req).await;
        if matches!(r, Err(Error::Decode { .. })) {
            conn.retire();
        }
        r
    }

    /// Sends `req` to the leader of `topic`/`partition`.
    ///
    /// # Errors
    /// As [`Client::leader_for`] and [`Client::send_to`].
    pub async fn send_to_leader<R: Request>(
        &self,
        topic: &str,
        partition: i32,
        req: &R,
    ) -> Result<R::Response> {
        let leader = self.leader_for(topic, partition).await?;
        self.send_to(leader, req).await
    }

    /// Sends `req` to any broker (the bootstrap connection when it is alive).
    ///
    /// # Errors
    /// As [`Client::any_connection`] and [`Connection::send`].
    pub async fn send_any<R: Request>(&self, req: &R) -> Result<R::Response> {
        let conn = self.any_connection().await?;
        let r = conn.send(req).await;
        if r.is_err() && !conn.is_closed() && matches!(r, Err(Error::Decode { .. })) {
            conn.retire();
        }
        if conn.is_closed() {
            self.drop_bootstrap(&conn).await;
        }
        r
    }
}

/// What a connection is for, to count reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dial {
    /// The bootstrap connection: a reconnect when one to the same address was set up before.
    Bootstrap,
    /// A broker's shared connection; `again`: one was set up before (and was lost).
    Shared { again: bool },
    /// A connection of its own (a group member's to its coordinator): never a reconnect.
    Dedicated,
}

/// When a failed connect goes through the advertised-listener diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Diagnose {
    /// Never (the broker was reached before: it is down or restarting).
    Never,
    /// Only for a host name that does not resolve.
    Unresolvable,
    /// Whenever the evidence says so.
    Always,
}

/// A broker's shared connection and its reconnect state.
#[derive(Default)]
struct BrokerSlot {
    conn: Option<Arc<Connection>>,
    /// Consecutive failed connects.
    failures: u32,
    /// A connection to this broker was set up once: later failures are outages, never the
    /// advertised-listener trap.
    reached: bool,
    /// When the current run of failures began.
    first_failure: Option<tokio::time::Instant>,
    /// No connect before this instant (reconnect backoff).
    retry_at: Option<tokio::time::Instant>,
}

/// `base * 2^failures`, capped at `max`, with ±20% jitter (the Java client's exponential
/// reconnect backoff and setup timeout, KIP-601).
fn grow(base: Duration, max: Duration, failures: u32) -> Duration {
    use rand::Rng;
    let exp = base.saturating_mul(1u32 << failures.min(16)).min(max);
    exp.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
        .min(max.max(base))
}

async fn refresh_loop(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        let client = Client { inner };
        let names: Vec<String> = client.metadata().topics.keys().cloned().collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Err(e) = client.refresh_metadata(&refs).await {
            tracing::warn!(error = %e, "periodic metadata refresh failed");
        }
    }
}
