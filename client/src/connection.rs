//! One connection to one broker: correlation ids, several requests in flight, ApiVersions
//! handshake and per-API version negotiation (KIP-35, KIP-511), request timeouts.
//!
//! The connection owns two background tasks: a writer that sends queued frames in order, and a
//! reader that splits the byte stream into frames and hands each to the request waiting for its
//! correlation id. When the broker closes the stream, every waiting request fails with
//! [`Error::ConnectionClosed`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::frame::{self, FrameDecoder};
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafkawire_protocol::messages::{ApiKey, Message, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::stats::{BrokerCounters, BrokerStats};
use crate::tls::{self, TlsConnector};

/// The target of the per-request events (`--debug protocol` on the command line): each request
/// written and each response read, at TRACE level.
const PROTOCOL: &str = "kafkawire_client::protocol";

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header so brokers can tell clients apart in logs and quotas.
    pub client_id: Option<String>,
    /// How long to wait for each response (Kafka's `request.timeout.ms`, default 30 s).
    pub request_timeout: Duration,
    /// Largest response frame accepted, in bytes (default 100 MiB).
    pub max_frame_size: usize,
    /// Client software name and version sent in ApiVersions v3+ (KIP-511).
    pub software: (String, String),
    /// TLS: when set, [`Connection::connect`] runs a TLS handshake after the TCP connect
    /// (`security.protocol` SSL or SASL_SSL). A [`crate::Client`] builds one connector and
    /// passes it to every connection.
    pub tls: Option<TlsConnector>,
    /// The name the broker's certificate is verified against (and sent as SNI): the broker's
    /// advertised host, or the bootstrap host as configured, also when the address dialled is
    /// another (a [`crate::BrokerAddressMap`] entry). `None`: the host part of the address
    /// dialled. Unused without [`tls`](Self::tls).
    pub server_name: Option<String>,
    /// SASL: when set, [`Connection::connect`] authenticates after ApiVersions
    /// (`security.protocol` SASL_PLAINTEXT or SASL_SSL), and again before the session the
    /// broker granted ends (KIP-368).
    pub sasl: Option<crate::sasl::SaslConfig>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: Some("kafkawire".into()),
            request_timeout: Duration::from_secs(30),
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            software: ("kafkawire".into(), env!("CARGO_PKG_VERSION").into()),
            tls: None,
            server_name: None,
            sasl: None,
        }
    }
}

pub(crate) struct Pending {
    pub(crate) api: ApiKey,
    pub(crate) tx: oneshot::Sender<Result<Bytes>>,
    /// The writer has started writing the request: from then on the broker may act on it.
    pub(crate) written: bool,
    /// Throttle time left when it was queued (it is held back that long before writing), or
    /// the time the writer waited for a throttle before it, if longer.
    pub(crate) held: Duration,
    /// When its caller gives up (queued + timeout), and the timeout.
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) timeout: Duration,
}

/// A frame for the writer; `id` is set when a response is expected, so a request whose caller
/// has given up (timed out while held back) is not written at all.
struct Outgoing {
    id: Option<i32>,
    frame: Bytes,
}

pub(crate) struct Shared {
    pub(crate) broker: String,
    /// Requests waiting for a response. `closed` is set while this lock is held, so no request
    /// can be added to a connection that has already failed its waiters.
    pub(crate) pending: Mutex<HashMap<i32, Pending>>,
    /// Correlation ids, shared by the request path and the writer's own re-authentication.
    pub(crate) next_correlation: AtomicI32,
    /// The client id of request headers.
    pub(crate) client_id: Option<String>,
    /// The connection's request timeout; also the longest throttle honoured, so that a throttle
    /// never makes a request wait past its own timeout.
    pub(crate) request_timeout: Duration,
    /// Woken whenever a response is handed to its request (re-authentication waits for the
    /// connection to have no request in flight).
    pub(crate) answered: tokio::sync::Notify,
    /// When and how to authenticate again (KIP-368), after a SASL authentication whose
    /// session has a lifetime.
    pub(crate) reauth: Mutex<Option<crate::authenticate::Reauth>>,
    pub(crate) closed: AtomicBool,
    /// Set to true when the connection is retired: the reader and writer stop, which closes the
    /// socket.
    shutdown: watch::Sender<bool>,
    /// Until when the broker asked not to be sent requests (KIP-219); the writer holds frames
    /// back until then.
    throttled_until: Mutex<Option<tokio::time::Instant>>,
    /// The counters of this broker (shared by the client's connections to it).
    pub(crate) stats: Arc<BrokerCounters>,
}

impl Shared {
    /// Notes a response's throttle time: nothing more is written before it has passed. A
    /// throttle above the request timeout is capped to it (and logged).
    fn throttle(&self, ms: i32, api: ApiKey) {
        if ms <= 0 {
            return;
        }
        self.stats.on_throttle(ms);
        let asked = Duration::from_millis(ms as u64);
        let held = asked.min(self.request_timeout);
        if held < asked {
            tracing::warn!(broker = %self.broker, ?api, ms, cap_ms = held.as_millis() as u64,
                "broker asked for a throttle longer than the request timeout; capped");
        }
        let until = tokio::time::Instant::now() + held;
        tracing::debug!(broker = %self.broker, ?api, ms, "throttled by the broker (quota)");
        if let Ok(mut t) = self.throttled_until.lock()
            && t.is_none_or(|old| old < until)
        {
            *t = Some(until);
        }
    }

    /// What is left of the throttle time.
    fn throttle_remaining(&self) -> Duration {
        self.throttled_until
            .lock()
            .ok()
            .and_then(|t| *t)
            .map_or(Duration::ZERO, |u| {
                u.saturating_duration_since(tokio::time::Instant::now())
            })
    }

    /// Retires the connection: every waiting request fails at once with `make(api)`, no request
    /// can be added any more, and the reader and writer stop (closing the socket).
    fn fail_all(&self, make: impl Fn(ApiKey) -> Error) {
        let drained: Vec<Pending> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.store(true, Ordering::SeqCst);
            p.drain().map(|(_, v)| v).collect()
        };
        self.shutdown.send_replace(true);
        for p in drained {
            let _ = p.tx.send(Err(make(p.api)));
        }
    }

    /// Retires the connection with [`Error::ConnectionClosed`] for every waiting request.
    fn retire(&self, why: &str) {
        if !self.closed.load(Ordering::SeqCst) {
            tracing::debug!(broker = %self.broker, why, "retiring connection");
        }
        self.fail_all(|api| Error::ConnectionClosed {
            broker: self.broker.clone(),
            api: Some(api),
        });
    }

    /// Marks request `id` as being written (`waited`: how long the writer just waited for a
    /// throttle); false when it must not be written: its caller has given up on it, or it was
    /// held back by a throttle and less than half its timeout is left. Such a request stays
    /// unsent and times out as throttled, leaving the connection open: written with a sliver
    /// of its time left, it could hardly be answered in time, and the timeout of a written
    /// request retires the connection.
    fn start_writing(&self, id: i32, waited: Duration) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = pending.get_mut(&id) else {
            return false;
        };
        p.held = p.held.max(waited);
        let left = p
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if !p.held.is_zero() && left < p.timeout / 2 {
            return false;
        }
        p.written = true;
        true
    }
}

/// Runs when a request's future is dropped before an answer (the caller gave up, e.g. under
/// its own timeout or a `select!`): a frame not yet written is removed from the waiting ones
/// and then not written at all. A frame already written stays registered, so that its answer,
/// when it comes, is matched and discarded: removing it would make that answer name no waiting
/// request, which retires the connection and fails every other request on it.
struct Forget {
    shared: Arc<Shared>,
    id: i32,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.shared.stats.on_settled();
        if let Ok(mut p) = self.shared.pending.lock()
            && p.get(&self.id).is_some_and(|w| !w.written)
        {
            p.remove(&self.id);
        }
    }
}

impl Shared {
    /// The next correlation id.
    pub(crate) fn next_id(&self) -> i32 {
        self.next_correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }
}

/// Resolves once the connection is retired.
pub(crate) async fn retired(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// A connection to one broker, safe to share between tasks (`Arc<Connection>`); requests from
/// several tasks are pipelined on the one stream.
///
/// Lifecycle: the connection is retired (every request waiting on it fails at once with a
/// retriable [`Error::ConnectionClosed`], and the socket is closed) when the broker closes it,
/// on a read or write error, on a response that cannot be framed or names no waiting request,
/// when a request that was written gets no answer within its timeout (as the Java client does:
/// the connection may be half-open), or by [`Connection::retire`]. A retired connection refuses
/// new requests; open a new one.
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Outgoing>,
    config: ConnectionConfig,
    versions: HashMap<i16, (i16, i16)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.shared.broker)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Keepalive probes on every broker socket, so a peer that vanished (a half-open connection
/// behind a NAT or a dead host) is found even when no request is waiting: first probe after
/// 30 s idle, then every 10 s.
fn set_keepalive(stream: &tokio::net::TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10));
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "cannot enable TCP keepalive");
    }
}

/// A plaintext stream that keeps the first bytes the broker sends, so a failed ApiVersions
/// handshake can tell a TLS listener (it answers a Kafka request with a TLS alert record) from
/// other failures.
struct FirstBytes<S> {
    inner: S,
    seen: Arc<Mutex<Vec<u8>>>,
    done: bool,
}

/// What a [`FirstBytes`] stream saw.
struct SeenBytes(Arc<Mutex<Vec<u8>>>);

impl<S> FirstBytes<S> {
    const KEEP: usize = 3;

    fn new(inner: S) -> (FirstBytes<S>, SeenBytes) {
        let seen = Arc::new(Mutex::new(Vec::with_capacity(Self::KEEP)));
        let s = FirstBytes {
            inner,
            seen: seen.clone(),
            done: false,
        };
        (s, SeenBytes(seen))
    }
}

impl SeenBytes {
    /// Whether the first bytes are a TLS record header: content type alert (21) or handshake
    /// (22), then major version 3. A Kafka response starts with its length, which would be
    /// over 350 MB here.
    fn looks_like_tls(&self) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        matches!(seen.as_slice(), [0x15 | 0x16, 0x03, ..])
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytes<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.done && r.is_ready() {
            let new = &buf.filled()[before..];
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let take = (Self::KEEP - seen.len()).min(new.len());
            seen.extend_from_slice(&new[..take]);
            let full = seen.len() >= Self::KEEP || new.is_empty();
            drop(seen);
            self.done = full;
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytes<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connection {
    /// Opens a TCP connection to `addr` (`host:port`), runs the TLS handshake when
    /// [`ConnectionConfig::tls`] is set (verifying the broker's certificate against
    /// [`ConnectionConfig::server_name`]), then the ApiVersions handshake, the whole setup
    /// bounded by `setup_timeout` (Java's `socket.connection.setup.timeout.ms`). TCP_NODELAY
    /// and TCP keepalive are turned on.
    ///
    /// # Errors
    /// [`Error::Io`] if the address cannot be resolved or connected, or the setup does not
    /// finish within `setup_timeout` (kind `TimedOut`); [`Error::Tls`] (not retriable) when the
    /// TLS handshake fails, when a TLS broker rejects the connection right after it (a missing
    /// client certificate), and, without TLS, when the broker answers with TLS (a TLS
    /// listener: `security.protocol` SSL is needed); handshake errors as in
    /// [`Connection::handshake`].
    pub async fn connect(
        addr: &str,
        config: ConnectionConfig,
        setup_timeout: Duration,
    ) -> Result<Connection> {
        let stats = Arc::new(BrokerCounters::new(addr));
        Connection::connect_counted(addr, config, setup_timeout, stats).await
    }

    /// As [`Connection::connect`], counting into `stats` (the client's counters of this
    /// broker). Logs the setup: each step at DEBUG, the connection set up at INFO.
    pub(crate) async fn connect_counted(
        addr: &str,
        config: ConnectionConfig,
        setup_timeout: Duration,
        stats: Arc<BrokerCounters>,
    ) -> Result<Connection> {
        let io = |source| Error::Io {
            broker: addr.to_owned(),
            source,
        };
        // How far the setup got, for the timeout's message: 0 TCP, 1 TLS, 2 ApiVersions, 3 SASL.
        let stage = std::sync::atomic::AtomicU8::new(0);
        let tls = config.tls.is_some();
        let sasl = config.sasl.clone();
        let mechanism = sasl.as_ref().map(|s| s.mechanism.to_string());
        let started = tokio::time::Instant::now();
        tracing::debug!(
            broker = addr,
            tls,
            sasl = mechanism.as_deref(),
            "connecting"
        );
        let setup = async {
            let conn = Connection::open(addr, config, &stage, stats).await?;
            if let Some(sasl) = &sasl {
                stage.store(3, Ordering::Relaxed);
                let lifetime = conn.sasl_authenticate(sasl).await?;
                tracing::debug!(
                    broker = addr,
                    mechanism = %sasl.mechanism,
                    session_lifetime_ms = lifetime.map(|l| l.as_millis() as u64),
                    "SASL authenticated"
                );
                crate::authenticate::schedule_reauth(&conn.shared, sasl, lifetime);
                conn.set_reauth_versions();
            }
            Ok(conn)
        };
        let result = tokio::time::timeout(setup_timeout, setup)
            .await
            .map_err(|_| {
                let what = match (tls, sasl.is_some()) {
                    (false, false) => "TCP connect and ApiVersions",
                    (true, false) => "TCP connect, TLS handshake and ApiVersions",
                    (false, true) => "TCP connect, ApiVersions and SASL authentication",
                    (true, true) => {
                        "TCP connect, TLS handshake, ApiVersions and SASL authentication"
                    }
                };
                let stuck = match stage.load(Ordering::Relaxed) {
                    0 => "the TCP connect",
                    1 => "the TLS handshake; does the broker speak TLS on this port?",
                    2 => "ApiVersions",
                    _ => "the SASL authentication",
                };
                io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "connection setup ({what}) did not finish within {} ms (stuck in {stuck})",
                        setup_timeout.as_millis()
                    ),
                ))
            })
            .and_then(|r| r);
        match &result {
            Ok(conn) => tracing::info!(
                broker = addr,
                tls,
                sasl = mechanism.as_deref(),
                apis = conn.versions.len(),
                setup_ms = started.elapsed().as_millis() as u64,
                "connected"
            ),
            Err(e) => tracing::debug!(broker = addr, error = %e, "connection setup failed"),
        }
        result
    }

    /// TCP connect, TLS (if configured) and ApiVersions; `stage` follows the progress.
    async fn open(
        addr: &str,
        config: ConnectionConfig,
        stage: &std::sync::atomic::AtomicU8,
        stats: Arc<BrokerCounters>,
    ) -> Result<Connection> {
        let io = |source| Error::Io {
            broker: addr.to_owned(),
            source,
        };
        {
            let stream = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
            let _ = stream.set_nodelay(true);
            set_keepalive(&stream);
            tracing::debug!(
                broker = addr,
                peer = ?stream.peer_addr().ok(),
                local = ?stream.local_addr().ok(),
                "TCP connected"
            );
            match config.tls.clone() {
                Some(connector) => {
                    stage.store(1, Ordering::Relaxed);
                    let name = config
                        .server_name
                        .clone()
                        .unwrap_or_else(|| tls::host_of(addr).to_owned());
                    let stream = connector.connect(stream, &name, addr).await?;
                    tracing::debug!(broker = addr, server_name = %name, "TLS handshake done");
                    let watch = stream.watch();
                    stage.store(2, Ordering::Relaxed);
                    Connection::handshake_counted(stream, addr, config, stats)
                        .await
                        .map_err(|e| watch.explain(e))
                }
                None => {
                    stage.store(2, Ordering::Relaxed);
                    let (stream, first) = FirstBytes::new(stream);
                    Connection::handshake_counted(stream, addr, config, stats)
                        .await
                        .map_err(|e| match first.looks_like_tls() {
                            true => Error::Tls {
                                broker: addr.to_owned(),
                                reason: "the broker speaks TLS on this port (it answered with a \
                                    TLS record); set security.protocol SSL (or SASL_SSL), or use \
                                    the broker's PLAINTEXT listener"
                                    .into(),
                            },
                            false => e,
                        })
                }
            }
        }
    }

    /// Starts the connection's tasks on any byte stream (a TCP socket, or an in-memory duplex in
    /// tests) and negotiates versions with ApiVersions: first the newest version this client
    /// knows, then, if the broker answers UNSUPPORTED_VERSION, the newest the broker names (or
    /// v0), as KIP-511 describes.
    ///
    /// # Errors
    /// Any transport, decode or broker error of the ApiVersions exchange.
    pub async fn handshake<S>(
        stream: S,
        broker: &str,
        config: ConnectionConfig,
    ) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let stats = Arc::new(BrokerCounters::new(broker));
        Connection::handshake_counted(stream, broker, config, stats).await
    }

    /// As [`Connection::handshake`], counting into `stats`.
    async fn handshake_counted<S>(
        stream: S,
        broker: &str,
        config: ConnectionConfig,
        stats: Arc<BrokerCounters>,
    ) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut conn = Connection::start(stream, broker, config, stats);
        let ours = ApiKey::ApiVersions.versions().1;
        let mut version = ours;
        for _attempt in 0..3 {
            let req = ApiVersionsRequest {
                client_software_name: conn.config.software.0.clone(),
                client_software_version: conn.config.software.1.clone(),
                ..Default::default()
            };
            let frame = conn.round_trip(&req, version).await?;
            // A broker that does not know our version answers in v0 (KIP-511).
            let resp = match frame::decode_response::<ApiVersionsResponse>(
                frame.clone(),
                ApiKey::ApiVersions,
                version,
            ) {
                Ok((_, r)) => r,
                Err(first) => match frame::decode_response::<ApiVersionsResponse>(
                    frame,
                    ApiKey::ApiVersions,
                    0,
                ) {
                    Ok((_, r)) if r.error_code == ErrorCode::UNSUPPORTED_VERSION.0 => r,
                    _ => {
                        return Err(Error::Decode {
                            broker: broker.to_owned(),
                            api: ApiKey::ApiVersions,
                            source: first,
                        });
                    }
                },
            };
            if resp.error_code == ErrorCode::UNSUPPORTED_VERSION.0 {
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                let next = theirs.min(ours).max(0);
                let next = if next >= version { 0 } else { next };
                tracing::debug!(
                    broker,
                    version,
                    next,
                    "the broker does not support this ApiVersions version; asking again (KIP-511)"
                );
                version = next;
                continue;
            }
            if resp.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(resp.error_code),
                    ApiKey::ApiVersions,
                    Some(broker),
                    None,
                    None,
                    None,
                ));
            }
            conn.versions = resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            tracing::debug!(
                broker,
                version,
                apis = conn.versions.len(),
                "ApiVersions answered: versions negotiated"
            );
            return Ok(conn);
        }
        Err(Error::UnsupportedVersion {
            broker: broker.to_owned(),
            api: ApiKey::ApiVersions,
            ours: ApiKey::ApiVersions.versions(),
            theirs: None,
        })
    }

    fn start<S>(
        stream: S,
        broker: &str,
        config: ConnectionConfig,
        stats: Arc<BrokerCounters>,
    ) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            broker: broker.to_owned(),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
            throttled_until: Mutex::new(None),
            next_correlation: AtomicI32::new(0),
            client_id: config.client_id.clone(),
            request_timeout: config.request_timeout,
            answered: tokio::sync::Notify::new(),
            reauth: Mutex::new(None),
            stats,
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        let s = shared.clone();
        let mut stop = shared.shutdown.subscribe();
        let writer = tokio::spawn(async move {
            loop {
                let out = tokio::select! {
                    out = rx.recv() => out,
                    _ = retired(&mut stop) => None,
                };
                let Some(out) = out else { break };
                if crate::authenticate::reauth_due(&s) {
                    // KIP-368: the session is near its end; authenticate again before this
                    // request, once the requests before it have their answers.
                    if let Err(e) =
                        crate::authenticate::reauthenticate(&s, &mut wr, &mut stop).await
                    {
                        s.fail_all(|_| e.clone());
                        return;
                    }
                }
                let wait = s.throttle_remaining();
                let mut waited = Duration::ZERO;
                if !wait.is_zero() {
                    // KIP-219: the broker answered at once and now holds this connection's
                    // requests for the throttle time; waiting here keeps them from piling up
                    // (and timing out) in its socket buffer.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => waited = wait,
                        _ = retired(&mut stop) => break,
                    }
                }
                if let Some(id) = out.id
                    && !s.start_writing(id, waited)
                {
                    // Its caller gave up while it was held back, or too little of its time
                    // is left after the throttle: never sent.
                    continue;
                }
                // Counted before the write: the answer may be read (on another thread) before
                // this task runs again, and an answered request must already be counted.
                s.stats.on_written(&out.frame);
                let written = tokio::select! {
                    w = wr.write_all(&out.frame) => w,
                    _ = retired(&mut stop) => break,
                };
                if let Err(e) = written {
                    let kind = e.kind();
                    let msg = e.to_string();
                    s.fail_all(|_| Error::Io {
                        broker: s.broker.clone(),
                        source: std::io::Error::new(kind, msg.clone()),
                    });
                    return;
                }
                tracing::trace!(
                    target: PROTOCOL,
                    broker = %s.broker,
                    api = frame_i16(&out.frame, 4).and_then(ApiKey::from_i16).map(ApiKey::name),
                    version = frame_i16(&out.frame, 6),
                    correlation_id = out.id,
                    bytes = out.frame.len(),
                    "request written"
                );
            }
            let _ = wr.shutdown().await;
        });
        let s = shared.clone();
        let mut stop = shared.shutdown.subscribe();
        let max = config.max_frame_size;
        let reader = tokio::spawn(async move {
            let mut dec = FrameDecoder::new(max);
            loop {
                loop {
                    match dec.next_frame() {
                        Ok(Some(f)) => {
                            if let Err(e) = s.deliver(f) {
                                s.fail_all(|api| Error::Decode {
                                    broker: s.broker.clone(),
                                    api,
                                    source: e.clone(),
                                });
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            s.fail_all(|api| Error::Decode {
                                broker: s.broker.clone(),
                                api,
                                source: e.clone(),
                            });
                            return;
                        }
                    }
                }
                let buf = dec.buffer_mut();
                if buf.capacity() - buf.len() < 8192 {
                    buf.reserve(64 * 1024);
                }
                let read = tokio::select! {
                    r = rd.read_buf(buf) => r,
                    _ = retired(&mut stop) => return,
                };
                match read {
                    Ok(0) => {
                        s.fail_all(|api| Error::ConnectionClosed {
                            broker: s.broker.clone(),
                            api: Some(api),
                        });
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let kind = e.kind();
                        let msg = e.to_string();
                        s.fail_all(|_| Error::Io {
                            broker: s.broker.clone(),
                            source: std::io::Error::new(kind, msg.clone()),
                        });
                        return;
                    }
                }
            }
        });
        Connection {
            shared,
            writer: tx,
            config,
            versions: HashMap::new(),
            tasks: vec![writer, reader],
        }
    }

    /// The broker's address as this connection was opened.
    pub fn broker(&self) -> &str {
        &self.shared.broker
    }

    /// Whether the connection is retired (closed by the broker, failed, timed out, or
    /// [`Connection::retire`]d): it is then useless; open a new one.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Retires the connection now: every request waiting on it fails with a retriable
    /// [`Error::ConnectionClosed`] and the socket is closed. For callers that no longer trust
    /// the stream (e.g. a response whose body does not decode).
    pub fn retire(&self) {
        self.shared.retire("retired by its user");
    }

    /// What was counted for this connection's broker: this connection's requests, or, for a
    /// connection a [`crate::Client`] opened, those of every connection of the client to the
    /// same address (see [`crate::Client::stats`]).
    pub fn stats(&self) -> BrokerStats {
        self.shared.stats.snapshot()
    }

    /// The version range the broker announced for `api`, if it supports it.
    pub fn broker_versions(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.versions.get(&(api as i16)).copied()
    }

    /// The highest version of `api` both this client and the broker support.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`] when the ranges do not overlap or the broker lacks the API.
    pub fn version_for(&self, api: ApiKey) -> Result<i16> {
        let ours = api.versions();
        let theirs = self.broker_versions(api);
        match theirs {
            Some((lo, hi)) if lo.max(ours.0) <= hi.min(ours.1) => Ok(hi.min(ours.1)),
            _ => Err(Error::UnsupportedVersion {
                broker: self.broker().to_owned(),
                api,
                ours,
                theirs,
            }),
        }
    }

    /// Queues `req`; with `response_timeout`, registers it as waiting for a response for that
    /// long.
    fn enqueue<R: Request>(
        &self,
        req: &R,
        version: i16,
        response_timeout: Option<Duration>,
    ) -> Result<Option<(i32, oneshot::Receiver<Result<Bytes>>)>> {
        let closed = || Error::ConnectionClosed {
            broker: self.broker().to_owned(),
            api: Some(R::API_KEY),
        };
        if self.is_closed() {
            return Err(closed());
        }
        let id = self.shared.next_id();
        let mut buf = BytesMut::new();
        frame::encode_request(&mut buf, id, self.config.client_id.as_deref(), version, req)
            .map_err(|source| Error::Encode {
                api: R::API_KEY,
                source,
            })?;
        let rx = if let Some(timeout) = response_timeout {
            let (tx, rx) = oneshot::channel();
            let mut pending = self.shared.pending.lock().map_err(|_| closed())?;
            // Checked under the lock that `fail_all` takes: a request is either failed by it
            // or never added.
            if self.is_closed() {
                return Err(closed());
            }
            pending.insert(
                id,
                Pending {
                    api: R::API_KEY,
                    tx,
                    written: false,
                    held: self.shared.throttle_remaining(),
                    deadline: tokio::time::Instant::now() + timeout,
                    timeout,
                },
            );
            Some((id, rx))
        } else {
            None
        };
        let out = Outgoing {
            id: rx.as_ref().map(|(id, _)| *id),
            frame: buf.freeze(),
        };
        if self.writer.send(out).is_err() {
            if let Ok(mut p) = self.shared.pending.lock() {
                p.remove(&id);
            }
            return Err(closed());
        }
        Ok(rx)
    }

    /// Queues `req` in `version` and returns a future of the raw response frame, failing with
    /// [`Error::Timeout`] after `timeout`. A request that was written and not answered in time
    /// retires the connection (it may be half-open, and later requests on it would wait the
    /// same); one still held back by a throttle (or held back so long that less than half its
    /// timeout was left to write it in) is dropped unsent and leaves the connection open. Owns
    /// what it needs, so it can be awaited anywhere.
    fn raw_request<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<impl std::future::Future<Output = Result<Bytes>> + Send + 'static> {
        // The longest wait a request can be given (the protocol's own timeouts are i32
        // milliseconds): a larger one, `Duration::MAX` included, means that long.
        let timeout = timeout.min(Duration::from_millis(i32::MAX as u64));
        let queued = tokio::time::Instant::now();
        let (id, mut rx) = match self.enqueue(req, version, Some(timeout)) {
            Ok(r) => r.expect("response expected"),
            Err(e) => {
                self.shared.stats.on_failed(R::API_KEY);
                return Err(e);
            }
        };
        let shared = self.shared.clone();
        shared.stats.on_queued();
        let guard = Forget {
            shared: shared.clone(),
            id,
        };
        Ok(async move {
            let _guard = guard;
            let r = Self::wait_answer::<R>(&shared, id, &mut rx, timeout).await;
            match &r {
                Ok(_) => shared.stats.on_answered(R::API_KEY, queued.elapsed()),
                Err(_) => shared.stats.on_failed(R::API_KEY),
            }
            r
        })
    }

    /// Waits up to `timeout` for the answer to request `id` (see [`Connection::raw_request`]).
    async fn wait_answer<R: Request>(
        shared: &Arc<Shared>,
        id: i32,
        rx: &mut oneshot::Receiver<Result<Bytes>>,
        timeout: Duration,
    ) -> Result<Bytes> {
        match tokio::time::timeout(timeout, &mut *rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::ConnectionClosed {
                broker: shared.broker.clone(),
                api: Some(R::API_KEY),
            }),
            Err(_) => {
                let gave_up = shared.pending.lock().ok().and_then(|mut p| p.remove(&id));
                let Some(p) = gave_up else {
                    // Answered (or failed) just as the time ran out.
                    return rx.try_recv().unwrap_or_else(|_| {
                        Err(Error::ConnectionClosed {
                            broker: shared.broker.clone(),
                            api: Some(R::API_KEY),
                        })
                    });
                };
                let throttled_ms = if !p.written && !p.held.is_zero() {
                    p.held.min(timeout).as_millis() as u64
                } else {
                    shared.retire("a request was not answered within its timeout");
                    0
                };
                Err(Error::Timeout {
                    broker: shared.broker.clone(),
                    api: R::API_KEY,
                    timeout_ms: timeout.as_millis() as u64,
                    throttled_ms,
                })
            }
        }
    }

    /// Sends `req` in `version` and waits (request timeout) for the raw response frame.
    async fn round_trip<R: Request>(&self, req: &R, version: i16) -> Result<Bytes> {
        self.raw_request(req, version, self.config.request_timeout)?
            .await
    }

    /// As [`Connection::raw_request`], decoding the response.
    fn request<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static> {
        let frame = self.raw_request(req, version, timeout)?;
        let shared = self.shared.clone();
        Ok(async move {
            let (_, body) =
                frame::decode_response::<R::Response>(frame.await?, R::API_KEY, version).map_err(
                    |source| {
                        shared.stats.on_failed(R::API_KEY);
                        Error::Decode {
                            broker: shared.broker.clone(),
                            api: R::API_KEY,
                            source,
                        }
                    },
                )?;
            shared.throttle(body.throttle_time_ms(), R::API_KEY);
            Ok(body)
        })
    }

    /// Queues `req` (negotiated version) on the connection now, so requests queued one after
    /// the other are written in that order, and returns a future of its decoded response that
    /// can be awaited anywhere (it owns what it needs). Producers use it to keep batches of a
    /// partition in order on the wire.
    ///
    /// # Errors
    /// At once: [`Error::UnsupportedVersion`], [`Error::Encode`], [`Error::ConnectionClosed`].
    /// From the future: as [`Connection::send_version`].
    pub fn send_ordered<R: Request>(
        &self,
        req: &R,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static> {
        self.send_ordered_within(req, self.config.request_timeout)
    }

    /// As [`Connection::send_ordered`], with `timeout` instead of the connection's request
    /// timeout (a producer's own `request.timeout.ms`, or less when a delivery deadline comes
    /// sooner).
    ///
    /// # Errors
    /// As [`Connection::send_ordered`].
    pub fn send_ordered_within<R: Request>(
        &self,
        req: &R,
        timeout: Duration,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static> {
        let version = self.version_for(R::API_KEY)?;
        self.request(req, version, timeout)
    }

    /// Sends `req` in the negotiated version and waits up to `timeout` (instead of the
    /// connection's request timeout) for the answer: for requests the broker may hold longer,
    /// such as a JoinGroup, which waits for every member to rejoin (up to the rebalance
    /// timeout, KIP-62).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub async fn send_with_timeout<R: Request>(
        &self,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.version_for(R::API_KEY)?;
        self.request(req, version, timeout)?.await
    }

    /// Sends `req` in an explicit `version` and decodes the response.
    ///
    /// # Errors
    /// Transport errors, [`Error::Timeout`], [`Error::Encode`], [`Error::Decode`]. Error codes
    /// inside the response are not checked here: that is the caller's, per topic and partition.
    pub async fn send_version<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        self.request(req, version, self.config.request_timeout)?
            .await
    }

    /// Sends `req` in the negotiated version ([`Connection::version_for`]) and decodes the
    /// response.
    ///
    /// # Errors
    /// As [`Connection::send_version`], and [`Error::UnsupportedVersion`].
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let v = self.version_for(R::API_KEY)?;
        self.send_version(req, v).await
    }

    /// Sends a request the broker will not answer (Produce with acks=0). Returns once the frame
    /// is queued for writing.
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] and [`Error::Encode`].
    pub fn send_no_response<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        self.enqueue(req, version, None).map(|_| ())
    }
}

impl Shared {
    /// Hands a response frame to the request waiting for its correlation id (a request whose
    /// caller gave up after it was written is still registered; its answer is dropped here). A
    /// frame too short for a header, or naming no registered request, means the stream cannot
    /// be trusted (requests given up on before being written are never written, and a
    /// timed-out written one retires the connection), so it is an error that retires the
    /// connection.
    fn deliver(&self, frame: Bytes) -> std::result::Result<(), kafkawire_protocol::DecodeError> {
        self.stats.on_received(frame.len() + 4);
        let id = frame::peek_correlation_id(&frame)?;
        tracing::trace!(
            target: PROTOCOL,
            broker = %self.broker,
            correlation_id = id,
            bytes = frame.len() + 4,
            "response read"
        );
        let pending = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        match pending {
            Some(p) => {
                let _ = p.tx.send(Ok(frame));
                self.answered.notify_waiters();
                Ok(())
            }
            None => Err(kafkawire_protocol::DecodeError::new(
                "correlation_id",
                0,
                kafkawire_protocol::DecodeErrorKind::Invalid(format!(
                    "response with correlation id {id}, which no request on this connection is waiting for"
                )),
            )),
        }
    }
}

/// The big-endian `i16` at `at` in a request frame (size prefix included): the API key at 4,
/// its version at 6.
fn frame_i16(frame: &[u8], at: usize) -> Option<i16> {
    frame
        .get(at..at + 2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
}
