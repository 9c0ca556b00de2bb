//! The OAUTHBEARER client (RFC 7628; Kafka KIP-255, extensions KIP-342), sans-io.
//!
//! The client sends one message, `n,,\x01auth=Bearer <token>\x01<key>=<value>\x01...\x01\x01`
//! (RFC 7628 §3.1; no authorization id, as Kafka). The server answers with nothing on success,
//! or with a JSON error (`{"status":"invalid_token",...}`, RFC 7628 §3.2.2), to which the
//! client must send the dummy response `\x01` before the server fails the exchange.

use std::fmt;

use super::{Authenticator, OAuthToken, SaslMechanism, auth_error, sanitize_server_text};
use crate::error::Error;

/// RFC 7628's `kvsep`.
const KVSEP: u8 = 0x01;

/// Checks a token against RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" /
/// "~" / "+" / "/" ) *"="` (a JWS compact serialization fits). The reason never shows the
/// token.
pub(crate) fn validate_token(token: &str) -> Result<(), String> {
    let body = token.trim_end_matches('=');
    if body.is_empty() {
        return Err("the token is empty".into());
    }
    match body
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
    {
        Some(at) => Err(format!(
            "the token is not an RFC 6750 bearer token: character {} is not allowed",
            at + 1
        )),
        None => Ok(()),
    }
}

/// Checks a SASL extension (KIP-342, RFC 7628 §3.1): the key is `[A-Za-z]+` and not `auth`
/// (in any case); the value is one or more characters of `%x21-7E / SP / HTAB / CR / LF`
/// (RFC 7628 allows an empty value; Kafka does not, nor do we). The reason names the key,
/// never the value.
pub(crate) fn validate_extension(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "SASL extension name {:?} is not letters only (KIP-342)",
            sanitize_server_text(key)
        ));
    }
    if key.eq_ignore_ascii_case("auth") {
        return Err("SASL extension name \"auth\" is reserved (RFC 7628)".into());
    }
    if value.is_empty() {
        return Err(format!("SASL extension {key:?} has an empty value"));
    }
    if let Some(at) = value
        .bytes()
        .position(|b| !matches!(b, 0x21..=0x7E | b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(format!(
            "SASL extension {key:?} has a character RFC 7628 does not allow at position {}",
            at + 1
        ));
    }
    Ok(())
}

/// Where an OAUTHBEARER exchange is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The initial response is not sent yet.
    Start,
    /// The initial response is sent; the server's answer is awaited.
    Sent,
    /// The server sent an error and the client its dummy response; the exchange fails.
    Refused { reason: String },
    /// The server accepted the token.
    Complete,
    /// The exchange failed; nothing more may happen.
    Failed,
}

/// The client side of RFC 7628 OAUTHBEARER with KIP-342 extensions.
pub(crate) struct OAuthBearerAuthenticator {
    broker: String,
    token: OAuthToken,
    state: State,
}

impl OAuthBearerAuthenticator {
    /// Checks the token ([`validate_token`]) and its extensions ([`validate_extension`]).
    pub(crate) fn new(token: OAuthToken, broker: &str) -> Result<OAuthBearerAuthenticator, Error> {
        let fail = |reason: String| auth_error(broker, SaslMechanism::OAuthBearer, reason);
        validate_token(token.value.expose()).map_err(fail)?;
        for (key, value) in &token.extensions {
            validate_extension(key, value).map_err(fail)?;
        }
        Ok(OAuthBearerAuthenticator {
            broker: broker.to_owned(),
            token,
            state: State::Start,
        })
    }

    fn error(&mut self, reason: impl Into<String>) -> Error {
        self.state = State::Failed;
        auth_error(&self.broker, SaslMechanism::OAuthBearer, reason)
    }
}

/// The reason for a server's error response (RFC 7628 §3.2.2: a JSON object with `status`,
/// and optionally `scope` and `openid-configuration`).
fn refusal_reason(server: &[u8]) -> String {
    let field = |v: &serde_json::Value, name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_str)
            .map(sanitize_server_text)
    };
    match serde_json::from_slice::<serde_json::Value>(server) {
        Ok(v) if v.get("status").is_some() => {
            let status = field(&v, "status").unwrap_or_else(|| "(not a string)".into());
            let mut reason = format!("the server refused the token: status {status}");
            if let Some(scope) = field(&v, "scope") {
                reason.push_str(&format!(", scope {scope}"));
            }
            if let Some(openid) = field(&v, "openid-configuration") {
                reason.push_str(&format!(", openid-configuration {openid}"));
            }
            reason
        }
        _ => format!(
            "the server refused the token with {} bytes that are not an RFC 7628 error",
            server.len()
        ),
    }
}

impl Authenticator for OAuthBearerAuthenticator {
    fn initial(&mut self) -> Result<Vec<u8>, Error> {
        if self.state != State::Start {
            return Err(self.error("the first message was already sent"));
        }
        let mut message = b"n,,".to_vec();
        message.push(KVSEP);
        message.extend_from_slice(b"auth=Bearer ");
        message.extend_from_slice(self.token.value.expose().as_bytes());
        message.push(KVSEP);
        for (key, value) in &self.token.extensions {
            message.extend_from_slice(key.as_bytes());
            message.push(b'=');
            message.extend_from_slice(value.as_bytes());
            message.push(KVSEP);
        }
        message.push(KVSEP);
        self.state = State::Sent;
        Ok(message)
    }

    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Sent if server.is_empty() => {
                self.state = State::Complete;
                Ok(None)
            }
            State::Sent => {
                // RFC 7628 §3.2.3: answer an error with the dummy `kvsep`; the server then
                // fails the exchange, and so does the next step here.
                self.state = State::Refused {
                    reason: refusal_reason(server),
                };
                Ok(Some(vec![KVSEP]))
            }
            State::Refused { reason } => Err(self.error(reason)),
            State::Start => Err(self.error("a server message came before the first message")),
            State::Complete => Err(self.error("a server message came after the exchange ended")),
            State::Failed => Err(self.error("the exchange already failed")),
        }
    }

    fn is_complete(&self) -> bool {
        self.state == State::Complete
    }
}

impl fmt::Debug for OAuthBearerAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerAuthenticator")
            .field("broker", &self.broker)
            .field("principal", &self.token.principal)
            .field("expires_at_ms", &self.token.expires_at_ms)
            .field("token", &self.token.value)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::security::Secret;

    fn token(value: &str, extensions: &[(&str, &str)]) -> OAuthToken {
        OAuthToken {
            value: Secret::from(value),
            principal: "alice".into(),
            expires_at_ms: 0,
            extensions: extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn client(value: &str, extensions: &[(&str, &str)]) -> Result<OAuthBearerAuthenticator, Error> {
        OAuthBearerAuthenticator::new(token(value, extensions), "broker:9092")
    }

    #[test]
    fn initial_response_is_rfc7628_with_extensions() {
        let mut c = client("eyJh.eyJz.", &[]).unwrap();
        assert_eq!(
            c.initial().unwrap(),
            b"n,,\x01auth=Bearer eyJh.eyJz.\x01\x01"
        );
        let mut c = client(
            "abc-_.~+/==",
            &[("logicalCluster", "lkc-1"), ("identityPoolId", "pool x")],
        )
        .unwrap();
        assert_eq!(
            c.initial().unwrap(),
            b"n,,\x01auth=Bearer abc-_.~+/==\x01identityPoolId=pool x\x01logicalCluster=lkc-1\x01\x01"
        );
        assert!(!c.is_complete());
        assert_eq!(c.step(b"").unwrap(), None);
        assert!(c.is_complete());
        assert!(c.step(b"").is_err(), "nothing after completion");
    }

    #[test]
    fn server_error_gets_the_dummy_response_then_fails_with_its_status() {
        let mut c = client("tok", &[]).unwrap();
        c.initial().unwrap();
        let json = br#"{"status":"invalid_token","scope":"kafka","openid-configuration":"https://idp/.well-known"}"#;
        assert_eq!(c.step(json).unwrap(), Some(vec![0x01]));
        assert!(!c.is_complete());
        let e = c.step(b"").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("invalid_token") && text.contains("scope kafka"),
            "{text}"
        );
        assert!(
            text.contains("broker:9092") && text.contains("OAUTHBEARER"),
            "{text}"
        );
        assert!(!c.is_complete());
        assert!(c.step(b"").is_err());

        // Not JSON, or JSON without a status: still refused, with the byte count.
        for bad in [
            &b"\xff\x00garbage"[..],
            b"{\"x\":1}",
            b"[1,2]",
            b"{\"status\":7}",
        ] {
            let mut c = client("tok", &[]).unwrap();
            c.initial().unwrap();
            assert_eq!(c.step(bad).unwrap(), Some(vec![0x01]));
            let text = c.step(b"").unwrap_err().to_string();
            assert!(text.contains("refused"), "{text}");
        }
    }

    #[test]
    fn bad_tokens_and_extensions_are_refused_without_showing_them() {
        for bad in ["", "===", "has space", "tab\tx", "a\x01b", "ä", "a=b"] {
            let e = client(bad, &[]).unwrap_err();
            assert!(e.to_string().contains("token"), "{bad:?}: {e}");
        }
        for (k, v) in [
            ("auth", "x"),
            ("AUTH", "x"),
            ("", "x"),
            ("bad key", "x"),
            ("k1", "x"),
            ("key", ""),
            ("key", "secret\x01value"),
            ("key", "secret\u{e9}value"),
        ] {
            let e = client("tok", &[(k, v)]).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("extension"), "{k:?}={v:?}: {text}");
            assert!(!text.contains("secret"), "{text}");
        }
        // Tabs, spaces, CR and LF are allowed in values (RFC 7628).
        assert!(client("tok", &[("key", "a b\tc\r\n")]).is_ok());
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut c = client("tok", &[]).unwrap();
        assert!(c.step(b"").is_err());
        let mut c = client("tok", &[]).unwrap();
        c.initial().unwrap();
        assert!(c.initial().is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let mut c = client("secret-token-value", &[]).unwrap();
        c.initial().unwrap();
        let text = format!("{c:?}");
        assert!(text.contains("alice"), "{text}");
        assert!(!text.contains("secret-token-value"), "{text}");
    }

    #[test]
    fn random_server_answers_never_panic() {
        use rand::{Rng, SeedableRng};
        let seed = std::env::var("SASL_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::thread_rng().r#gen::<u64>());
        println!("SASL_FUZZ_SEED={seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..500 {
            let len = rng.gen_range(0..80);
            let answer: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let mut c = client("tok", &[]).unwrap();
            c.initial().unwrap();
            match c.step(&answer) {
                Ok(None) => assert!(answer.is_empty()),
                Ok(Some(dummy)) => {
                    assert_eq!(dummy, [0x01], "seed {seed}");
                    assert!(c.step(&answer).is_err(), "seed {seed}");
                }
                Err(e) => panic!("seed {seed}: {e}"),
            }
        }
    }
}
