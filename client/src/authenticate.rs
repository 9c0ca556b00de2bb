//! The SASL exchange on a connection (KIP-43, KIP-152): SaslHandshake v1 naming the mechanism,
//! then SaslAuthenticate rounds driven by the mechanism's state machine
//! ([`crate::sasl::authenticator`]) until it has verified the broker's last message. Used for the
//! first authentication of a connection and for re-authentication (KIP-368), which runs the
//! same exchange on a connection that is in use.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafkawire_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use kafkawire_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafkawire_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;

use bytes::BytesMut;
use kafkawire_protocol::frame;
use kafkawire_protocol::messages::{ApiKey, Request};
use rand::Rng;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

use crate::connection::{Connection, Pending, Shared};
use crate::error::{Error, Result};
use crate::sasl::{SaslConfig, SaslMechanism};

/// A request of the exchange.
pub(crate) enum SaslRequest {
    Handshake(SaslHandshakeRequest),
    Authenticate(SaslAuthenticateRequest),
}

/// Its answer.
pub(crate) enum SaslResponse {
    Handshake(SaslHandshakeResponse),
    Authenticate(SaslAuthenticateResponse),
}

/// How the exchange reaches the broker: the connection's request path for a first
/// authentication, the writer task's own for a re-authentication.
pub(crate) trait SaslTransport: Send {
    /// Sends one request of the exchange and waits for its answer.
    fn send(&mut self, req: SaslRequest) -> impl Future<Output = Result<SaslResponse>> + Send;
}

/// Runs the whole exchange. Returns the session lifetime the broker set (SaslAuthenticate v1+,
/// KIP-368), if any: the connection must authenticate again before it ends.
///
/// # Errors
/// [`Error::Authentication`] (not retriable) when the broker does not enable the mechanism
/// (naming those it does), refuses the credentials, or sends something the mechanism cannot
/// verify; transport errors as they come.
pub(crate) async fn authenticate(
    sasl: &SaslConfig,
    broker: &str,
    transport: &mut impl SaslTransport,
) -> Result<Option<Duration>> {
    let fail = |reason: String| Error::Authentication {
        broker: broker.to_owned(),
        mechanism: sasl.mechanism.name().to_owned(),
        reason,
    };
    let handshake = SaslHandshakeRequest {
        mechanism: sasl.mechanism.name().to_owned(),
        ..Default::default()
    };
    let SaslResponse::Handshake(h) = transport.send(SaslRequest::Handshake(handshake)).await?
    else {
        return Err(fail(
            "the broker answered SaslHandshake with another message".into(),
        ));
    };
    if h.error_code != 0 {
        let code = ErrorCode(h.error_code);
        return Err(fail(if code == ErrorCode::UNSUPPORTED_SASL_MECHANISM {
            format!(
                "the broker does not enable {}; it offers {}",
                sasl.mechanism,
                if h.mechanisms.is_empty() {
                    "none".to_owned()
                } else {
                    h.mechanisms.join(", ")
                }
            )
        } else {
            format!("SaslHandshake refused: {code}")
        }));
    }
    let token = match (sasl.mechanism, &sasl.token_provider) {
        (SaslMechanism::OAuthBearer, Some(p)) => Some(p.token().await?),
        (SaslMechanism::OAuthBearer, None) => {
            return Err(Error::Config(
                "OAUTHBEARER needs a token provider (SaslConfig::oauthbearer)".into(),
            ));
        }
        _ => None,
    };
    let mut mechanism = crate::sasl::authenticator(sasl, token, broker)?;
    let mut out = Some(mechanism.initial()?);
    let mut lifetime = None;
    // Every mechanism here completes within a few rounds; a broker that keeps asking is wrong.
    for _round in 0..8 {
        let Some(bytes) = out.take() else {
            return Ok(lifetime);
        };
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from(bytes),
            ..Default::default()
        };
        let SaslResponse::Authenticate(r) = transport.send(SaslRequest::Authenticate(req)).await?
        else {
            return Err(fail(
                "the broker answered SaslAuthenticate with another message".into(),
            ));
        };
        if r.error_code != 0 {
            let code = ErrorCode(r.error_code);
            return Err(fail(match r.error_message {
                Some(m) if !m.is_empty() => format!("{m} ({code})"),
                _ => code.to_string(),
            }));
        }
        if r.session_lifetime_ms > 0 {
            lifetime = Some(Duration::from_millis(r.session_lifetime_ms as u64));
        }
        out = mechanism.step(&r.auth_bytes)?;
        if out.is_none() && !mechanism.is_complete() {
            return Err(fail(
                "the exchange ended before the broker was verified".into(),
            ));
        }
    }
    if out.is_some() {
        return Err(fail(
            "the broker kept the exchange going past 8 rounds".into(),
        ));
    }
    Ok(lifetime)
}

/// The first authentication goes through the connection's ordinary request path.
struct ThroughConnection<'a>(&'a Connection);

impl SaslTransport for ThroughConnection<'_> {
    async fn send(&mut self, req: SaslRequest) -> Result<SaslResponse> {
        match req {
            SaslRequest::Handshake(h) => {
                self.0.send_ordered(&h)?.await.map(SaslResponse::Handshake)
            }
            SaslRequest::Authenticate(a) => self
                .0
                .send_ordered(&a)?
                .await
                .map(SaslResponse::Authenticate),
        }
    }
}

impl Connection {
    /// Authenticates this connection with SASL through its ordinary request path (before any
    /// other request is sent on it). Returns the session lifetime (KIP-368), if the broker set
    /// one.
    ///
    /// # Errors
    /// As [`authenticate`].
    pub(crate) async fn sasl_authenticate(&self, sasl: &SaslConfig) -> Result<Option<Duration>> {
        let broker = self.broker().to_owned();
        // SaslHandshake v1 and later: the tokens travel in SaslAuthenticate requests (KIP-152),
        // which every broker since Kafka 1.0 supports.
        let v = self.version_for(ApiKey::SaslHandshake)?;
        if v < 1 || self.version_for(ApiKey::SaslAuthenticate).is_err() {
            return Err(Error::Authentication {
                broker,
                mechanism: sasl.mechanism.name().to_owned(),
                reason:
                    "the broker does not support SaslAuthenticate (Kafka 1.0 or later is needed)"
                        .into(),
            });
        }
        authenticate(sasl, &broker, &mut ThroughConnection(self)).await
    }
}

/// When and how a connection authenticates again (KIP-368).
pub(crate) struct Reauth {
    sasl: SaslConfig,
    /// Not before this instant: between 85% and 95% of the session lifetime, as the Java
    /// client, so that many connections do not all re-authenticate at once.
    due: tokio::time::Instant,
    handshake_version: i16,
    authenticate_version: i16,
}

/// Notes the session lifetime of a connection that just authenticated: it authenticates again
/// before the session ends. Nothing to do without a lifetime.
pub(crate) fn schedule_reauth(shared: &Shared, sasl: &SaslConfig, lifetime: Option<Duration>) {
    let (Some(lifetime), Ok(mut slot)) = (lifetime, shared.reauth.lock()) else {
        return;
    };
    let (handshake_version, authenticate_version) = match &*slot {
        Some(r) => (r.handshake_version, r.authenticate_version),
        None => (1, 0),
    };
    let factor = rand::thread_rng().gen_range(0.85..0.95);
    *slot = Some(Reauth {
        sasl: sasl.clone(),
        due: tokio::time::Instant::now() + lifetime.mul_f64(factor),
        handshake_version,
        authenticate_version,
    });
}

impl Connection {
    /// Records the versions a re-authentication uses (the writer has no access to the
    /// negotiated versions).
    pub(crate) fn set_reauth_versions(&self) {
        let hs = self.version_for(ApiKey::SaslHandshake).unwrap_or(1).max(1);
        let au = self.version_for(ApiKey::SaslAuthenticate).unwrap_or(0);
        if let Ok(mut slot) = self.shared.reauth.lock()
            && let Some(r) = slot.as_mut()
        {
            r.handshake_version = hs;
            r.authenticate_version = au;
        }
    }
}

/// Whether the session of this connection is about to end.
pub(crate) fn reauth_due(shared: &Shared) -> bool {
    shared
        .reauth
        .lock()
        .ok()
        .and_then(|r| r.as_ref().map(|r| r.due))
        .is_some_and(|due| tokio::time::Instant::now() >= due)
}

/// Authenticates the connection again (KIP-368), from its writer task, before the next request
/// is written: first waits until every request written before has its answer (the broker
/// answers a connection's requests in order), then runs the exchange writing its frames
/// directly. Requests queued meanwhile wait in the writer's queue, in order; nothing is lost.
///
/// # Errors
/// [`Error::Authentication`] when the broker refuses (the connection is then retired), and
/// transport errors.
pub(crate) async fn reauthenticate<W>(
    shared: &Shared,
    wr: &mut W,
    stop: &mut watch::Receiver<bool>,
) -> Result<()>
where
    W: AsyncWrite + Unpin + Send,
{
    let closed = || closed(shared);
    loop {
        let answered = shared.answered.notified();
        tokio::pin!(answered);
        answered.as_mut().enable();
        let busy = shared
            .pending
            .lock()
            .map_err(|_| closed())?
            .values()
            .any(|p| p.written);
        if !busy {
            break;
        }
        tokio::select! {
            _ = answered => {}
            _ = crate::connection::retired(stop) => return Err(closed()),
        }
    }
    let Some((sasl, versions)) = shared.reauth.lock().ok().and_then(|r| {
        r.as_ref().map(|r| {
            (
                r.sasl.clone(),
                (r.handshake_version, r.authenticate_version),
            )
        })
    }) else {
        return Ok(());
    };
    tracing::debug!(broker = %shared.broker, mechanism = %sasl.mechanism, "re-authenticating (KIP-368)");
    let mut transport = FromWriter {
        shared,
        wr,
        stop,
        versions,
    };
    match authenticate(&sasl, &shared.broker, &mut transport).await {
        Ok(lifetime) => {
            match lifetime {
                Some(_) => schedule_reauth(shared, &sasl, lifetime),
                None => {
                    if let Ok(mut r) = shared.reauth.lock() {
                        *r = None;
                    }
                }
            }
            Ok(())
        }
        Err(Error::Authentication {
            broker,
            mechanism,
            reason,
        }) => Err(Error::Authentication {
            broker,
            mechanism,
            reason: format!("re-authentication refused: {reason}"),
        }),
        Err(e) => Err(e),
    }
}

/// The re-authentication's own request path: frames written by the writer task itself,
/// answers matched by the reader as any other.
struct FromWriter<'a, W> {
    shared: &'a Shared,
    wr: &'a mut W,
    stop: &'a mut watch::Receiver<bool>,
    versions: (i16, i16),
}

impl<W: AsyncWrite + Unpin + Send> FromWriter<'_, W> {
    async fn round_trip<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let s = self.shared;
        let id = s.next_id();
        let mut buf = BytesMut::new();
        frame::encode_request(&mut buf, id, s.client_id.as_deref(), version, req).map_err(
            |source| Error::Encode {
                api: R::API_KEY,
                source,
            },
        )?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = s.pending.lock().map_err(|_| closed(s))?;
            if s.closed.load(Ordering::SeqCst) {
                return Err(closed(s));
            }
            pending.insert(
                id,
                Pending {
                    api: R::API_KEY,
                    tx,
                    written: true,
                    held: Duration::ZERO,
                    deadline: tokio::time::Instant::now() + s.request_timeout,
                    timeout: s.request_timeout,
                },
            );
        }
        let written = tokio::select! {
            w = self.wr.write_all(&buf) => w,
            _ = crate::connection::retired(self.stop) => return Err(closed(s)),
        };
        written.map_err(|source| Error::Io {
            broker: s.broker.clone(),
            source,
        })?;
        let frame = match tokio::time::timeout(s.request_timeout, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(closed(s)),
            Err(_) => {
                return Err(Error::Timeout {
                    broker: s.broker.clone(),
                    api: R::API_KEY,
                    timeout_ms: s.request_timeout.as_millis() as u64,
                    throttled_ms: 0,
                });
            }
        };
        frame::decode_response::<R::Response>(frame, R::API_KEY, version)
            .map(|(_, r)| r)
            .map_err(|source| Error::Decode {
                broker: s.broker.clone(),
                api: R::API_KEY,
                source,
            })
    }
}

/// The error of a re-authentication cut short by the connection closing.
fn closed(s: &Shared) -> Error {
    Error::ConnectionClosed {
        broker: s.broker.clone(),
        api: Some(ApiKey::SaslAuthenticate),
    }
}

impl<W: AsyncWrite + Unpin + Send> SaslTransport for FromWriter<'_, W> {
    async fn send(&mut self, req: SaslRequest) -> Result<SaslResponse> {
        let (hs, au) = self.versions;
        match req {
            SaslRequest::Handshake(h) => self.round_trip(&h, hs).await.map(SaslResponse::Handshake),
            SaslRequest::Authenticate(a) => self
                .round_trip(&a, au)
                .await
                .map(SaslResponse::Authenticate),
        }
    }
}
