//! Unsecured JWS tokens for testing OAUTHBEARER, as Kafka's
//! `OAuthBearerUnsecuredLoginCallbackHandler` makes them (KIP-255).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;

use super::oauthbearer::validate_extension;
use super::{OAuthToken, TokenFuture, TokenProvider};
use crate::error::Error;
use crate::security::Secret;

/// A [`TokenProvider`] of unsecured JSON Web Signatures (RFC 7515 with `"alg":"none"`, RFC
/// 7519 §6), for brokers using Kafka's unsecured validator
/// (`OAuthBearerUnsecuredValidatorCallbackHandler`, KIP-255). **For testing only**: anyone can
/// make such a token for any principal.
///
/// Each call to [`TokenProvider::token`] makes a new token
/// `base64url({"alg":"none"}).base64url(claims).` (an empty signature), with the claims `sub`
/// (the principal), `iat` and `exp` (seconds since the Unix epoch) and, when set, `scope` (a
/// list of strings), like Kafka's `OAuthBearerUnsecuredLoginCallbackHandler`. Its extensions
/// (KIP-342) go with the token.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use kafkawire_client::SaslConfig;
/// use kafkawire_client::sasl::UnsecuredJwsProvider;
///
/// let provider = UnsecuredJwsProvider::new("alice")
///     .lifetime(Duration::from_secs(600))
///     .scope(["produce", "consume"])
///     .extension("traceId", "abc");
/// let sasl = SaslConfig::oauthbearer(Arc::new(provider));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredJwsProvider {
    principal: String,
    lifetime: Duration,
    scope: Vec<String>,
    extensions: BTreeMap<String, String>,
}

impl UnsecuredJwsProvider {
    /// Tokens for `principal` (the `sub` claim), living one hour (Kafka's default), with no
    /// scope and no extensions.
    pub fn new(principal: impl Into<String>) -> UnsecuredJwsProvider {
        UnsecuredJwsProvider {
            principal: principal.into(),
            lifetime: Duration::from_secs(3600),
            scope: Vec::new(),
            extensions: BTreeMap::new(),
        }
    }

    /// How long each token is valid (`exp - iat`), in whole seconds, at least one (default one
    /// hour; Kafka's `unsecuredLoginLifetimeSeconds`).
    pub fn lifetime(mut self, lifetime: Duration) -> UnsecuredJwsProvider {
        self.lifetime = lifetime;
        self
    }

    /// The `scope` claim (Kafka's `unsecuredLoginListClaim_scope`); left out when empty.
    pub fn scope<I, S>(mut self, scope: I) -> UnsecuredJwsProvider
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scope = scope.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a SASL extension sent with each token (KIP-342; Kafka's
    /// `unsecuredLoginExtension_<key>`). The key must be letters only and not `auth`; the value
    /// visible ASCII, spaces, tabs, CR or LF. Checked when a token is made.
    pub fn extension(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> UnsecuredJwsProvider {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// The token this provider makes at `now_ms` (milliseconds since the Unix epoch).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty principal or an invalid extension.
    pub fn token_at(&self, now_ms: i64) -> Result<OAuthToken, Error> {
        if self.principal.is_empty() {
            return Err(Error::Config(
                "the unsecured JWS principal (sub claim) is empty".into(),
            ));
        }
        for (key, value) in &self.extensions {
            validate_extension(key, value).map_err(Error::Config)?;
        }
        let issued_at = now_ms.div_euclid(1000);
        let lifetime = i64::try_from(self.lifetime.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let expires_at = issued_at.saturating_add(lifetime);
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), self.principal.clone().into());
        claims.insert("iat".into(), issued_at.into());
        claims.insert("exp".into(), expires_at.into());
        if !self.scope.is_empty() {
            claims.insert("scope".into(), self.scope.clone().into());
        }
        let claims = serde_json::Value::Object(claims).to_string();
        let value = format!(
            "{}.{}.",
            BASE64URL.encode(br#"{"alg":"none"}"#),
            BASE64URL.encode(claims)
        );
        Ok(OAuthToken {
            value: Secret::new(value),
            principal: self.principal.clone(),
            expires_at_ms: expires_at.saturating_mul(1000),
            extensions: self.extensions.clone(),
        })
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl TokenProvider for UnsecuredJwsProvider {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move { self.token_at(now_ms()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::oauthbearer::validate_token;

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&BASE64URL.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn token_is_an_unsecured_jws_with_the_claims() {
        let provider = UnsecuredJwsProvider::new("alice")
            .lifetime(Duration::from_secs(600))
            .scope(["produce", "consume"])
            .extension("logicalCluster", "lkc-1");
        let token = provider.token_at(1_700_000_000_500).unwrap();
        let value = token.value.expose();
        validate_token(value).unwrap();
        let parts: Vec<&str> = value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "empty signature");
        assert_eq!(decode(parts[0]), serde_json::json!({"alg": "none"}));
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({
                "sub": "alice",
                "iat": 1_700_000_000i64,
                "exp": 1_700_000_600i64,
                "scope": ["produce", "consume"],
            })
        );
        assert_eq!(token.principal, "alice");
        assert_eq!(token.expires_at_ms, 1_700_000_600_000);
        assert_eq!(token.extensions["logicalCluster"], "lkc-1");
    }

    #[test]
    fn defaults_and_odd_principals() {
        let token = UnsecuredJwsProvider::new("we\"ird, ü")
            .lifetime(Duration::ZERO)
            .token_at(0)
            .unwrap();
        let claims = decode(token.value.expose().split('.').nth(1).unwrap());
        assert_eq!(claims["sub"], "we\"ird, ü");
        assert_eq!(claims["exp"], 1, "at least one second");
        assert!(claims.get("scope").is_none());
        let token = UnsecuredJwsProvider::new("bob").token_at(0).unwrap();
        assert_eq!(token.expires_at_ms, 3_600_000, "one hour by default");
    }

    #[test]
    fn bad_settings_are_config_errors() {
        assert!(matches!(
            UnsecuredJwsProvider::new("").token_at(0),
            Err(Error::Config(_))
        ));
        let e = UnsecuredJwsProvider::new("a")
            .extension("auth", "x")
            .token_at(0)
            .unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[tokio::test]
    async fn provides_current_tokens() {
        let provider = UnsecuredJwsProvider::new("alice");
        let token = provider.token().await.unwrap();
        let now = now_ms();
        assert!(token.expires_at_ms > now + 3_590_000 && token.expires_at_ms <= now + 3_600_000);
    }

    #[test]
    fn debug_hides_the_token() {
        let provider = UnsecuredJwsProvider::new("alice");
        let token = provider.token_at(0).unwrap();
        let text = format!("{provider:?} {token:?}");
        assert!(text.contains("alice"), "{text}");
        assert!(!text.contains(token.value.expose()), "{text}");
    }
}
