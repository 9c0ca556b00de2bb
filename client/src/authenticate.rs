//! The SASL exchange on a connection (KIP-43, KIP-152): SaslHandshake v1 naming the mechanism,
//! then SaslAuthenticate rounds driven by the mechanism's state machine
//! ([`crate::sasl::authenticator`]) until it has verified the broker's last message. Used for the
//! first authentication of a connection and for re-authentication (KIP-368), which runs the
//! same exchange on a connection that is in use.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafkawire_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use kafkawire_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafkawire_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;

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
pub(crate) type SendSasl<'a> = Box<
    dyn FnMut(SaslRequest) -> Pin<Box<dyn Future<Output = Result<SaslResponse>> + Send>>
        + Send
        + 'a,
>;

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
    mut send: SendSasl<'_>,
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
    let SaslResponse::Handshake(h) = send(SaslRequest::Handshake(handshake)).await? else {
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
        let SaslResponse::Authenticate(r) = send(SaslRequest::Authenticate(req)).await? else {
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

impl crate::connection::Connection {
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
        let v = self.version_for(kafkawire_protocol::messages::ApiKey::SaslHandshake)?;
        if v < 1
            || self
                .version_for(kafkawire_protocol::messages::ApiKey::SaslAuthenticate)
                .is_err()
        {
            return Err(Error::Authentication {
                broker,
                mechanism: sasl.mechanism.name().to_owned(),
                reason:
                    "the broker does not support SaslAuthenticate (Kafka 1.0 or later is needed)"
                        .into(),
            });
        }
        let send: SendSasl<'_> = Box::new(move |req| match req {
            SaslRequest::Handshake(h) => {
                let fut = self.send_ordered(&h);
                Box::pin(async move { fut?.await.map(SaslResponse::Handshake) })
            }
            SaslRequest::Authenticate(a) => {
                let fut = self.send_ordered(&a);
                Box::pin(async move { fut?.await.map(SaslResponse::Authenticate) })
            }
        });
        authenticate(sasl, &broker, send).await
    }
}
