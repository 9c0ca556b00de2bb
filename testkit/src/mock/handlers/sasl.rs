//! SASL server side (KIP-43, KIP-152, KIP-368), after Kafka's `SaslServerAuthenticator`: the
//! per-connection state ([`ConnAuth`], kept by the serve loop), the gate deciding which requests
//! a connection may send in its state ([`ConnAuth::admit`]), SaslHandshake, SaslAuthenticate and
//! the mechanisms:
//!
//! - PLAIN (RFC 4616), checked against the configured users;
//! - SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the server of the `rsasl` crate,
//!   given stored keys derived with `rsasl`'s own tools, so clients are checked against an
//!   independent implementation;
//! - OAUTHBEARER (RFC 7628) with unsecured JWS tokens (`alg` `none`), as Kafka's unsecured
//!   validator: `sub` names the principal, `exp` must be in the future.
//!
//! Error messages are Kafka's and never contain a password or a token.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafkawire_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use kafkawire_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafkawire_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram;
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::prelude::{
    Mechanism, Mechname, Registry, SASLConfig, SASLServer, Session, SessionError, State, Validation,
};
use rsasl::property::{AuthId, AuthzId};
use rsasl::validate::{Validate, ValidationError};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use tokio::time::Instant;

use super::{Answer, NONE};
use crate::mock::sasl::SaslServerConfig;
use crate::mock::server::{ConnState, Shared};
use crate::mock::{Reply, ScriptedRequest};

const UNSUPPORTED_MECHANISM: i16 = ErrorCode::UNSUPPORTED_SASL_MECHANISM.0;
const AUTHENTICATION_FAILED: i16 = ErrorCode::SASL_AUTHENTICATION_FAILED.0;
const ILLEGAL_SASL_STATE: i16 = ErrorCode::ILLEGAL_SASL_STATE.0;

/// The OAUTHBEARER server's error challenge for a token it does not accept (RFC 7628 §3.2.2).
const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

/// The SCRAM mechanisms offered to `rsasl` (no `-PLUS` variants: no channel binding without
/// TLS).
static SCRAM_MECHANISMS: &[Mechanism] = &[scram::SCRAM_SHA512, scram::SCRAM_SHA256];

/// A cluster's SASL configuration, ready for connections.
pub(crate) struct SaslSetup {
    pub(crate) config: SaslServerConfig,
    passwords: HashMap<String, String>,
    /// The `rsasl` configuration of the SCRAM server, with the users' credentials.
    scram: Arc<SASLConfig>,
}

impl SaslSetup {
    pub(crate) fn new(config: SaslServerConfig) -> SaslSetup {
        let passwords: HashMap<String, String> = config.users.iter().cloned().collect();
        let callback = ScramCallback {
            users: passwords
                .iter()
                .map(|(u, p)| (scram_escape(u), (p.clone(), rand::random::<[u8; 24]>())))
                .collect(),
            iterations: config.scram_iterations,
        };
        let scram = SASLConfig::builder()
            .with_registry(Registry::with_mechanisms(SCRAM_MECHANISMS))
            .with_callback(callback)
            .unwrap_or_else(|e| panic!("cannot set up the SCRAM server: {e}"));
        SaslSetup {
            config,
            passwords,
            scram,
        }
    }
}

/// A user name as SCRAM messages carry it (RFC 5802 §5.1 `saslname`, as Kafka's client sends
/// it): `=` as `=3D`, `,` as `=2C`. `rsasl` hands the name on as received.
fn scram_escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The inverse of [`scram_escape`].
fn scram_unescape(name: &str) -> String {
    name.replace("=2C", ",").replace("=3D", "=")
}

/// What the `rsasl` SCRAM server learns through its callback: a user's stored keys (RFC 5802
/// §3: salt, iterations, `StoredKey`, `ServerKey`), and the outcome of an exchange.
struct ScramCallback {
    /// Password and salt by escaped user name ([`scram_escape`]).
    users: HashMap<String, (String, [u8; 24])>,
    iterations: u32,
}

/// The outcome `rsasl` reports for a SCRAM exchange whose proof was right: the user, or a
/// Kafka error message.
struct ScramOutcome;

impl Validation for ScramOutcome {
    type Value = Result<String, &'static str>;
}

/// `(StoredKey, ServerKey)` of a password for digest `$d`, with `rsasl`'s SCRAM tools (the
/// computation of its documented server example).
macro_rules! stored_keys {
    ($d:ty, $password:expr, $salt:expr, $iterations:expr) => {{
        let mut salted = Default::default();
        scram::tools::hash_password::<$d>($password, $iterations, $salt, &mut salted);
        let (client_key, server_key) = scram::tools::derive_keys::<$d>(salted.as_slice());
        (<$d>::digest(client_key).to_vec(), server_key.to_vec())
    }};
}

impl SessionCallback for ScramCallback {
    fn callback(
        &self,
        session_data: &SessionData,
        context: &Context,
        request: &mut Request,
    ) -> Result<(), SessionError> {
        if !request.is::<ScramStoredPassword>() {
            return Ok(());
        }
        // An unknown user gets no keys: rsasl then answers with a made-up salt and fails the
        // exchange at its last step.
        let Some((password, salt)) = context.get_ref::<AuthId>().and_then(|u| self.users.get(u))
        else {
            return Ok(());
        };
        let (stored, server) = match session_data.mechanism().mechanism.as_str() {
            "SCRAM-SHA-256" => stored_keys!(Sha256, password.as_bytes(), salt, self.iterations),
            "SCRAM-SHA-512" => stored_keys!(Sha512, password.as_bytes(), salt, self.iterations),
            _ => return Ok(()),
        };
        request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
            self.iterations,
            salt,
            &stored,
            &server,
        ))?;
        Ok(())
    }

    fn validate(
        &self,
        _session_data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        let user = scram_unescape(context.get_ref::<AuthId>().unwrap_or_default());
        let outcome = match context.get_ref::<AuthzId>().map(scram_unescape) {
            Some(authzid) if !authzid.is_empty() && authzid != user => Err(
                "Authentication failed: Client requested an authorization id that is different from username",
            ),
            _ => Ok(user),
        };
        validate.finalize::<ScramOutcome>(outcome);
        Ok(())
    }
}

/// SASL state of one connection.
pub(crate) struct ConnAuth {
    setup: Arc<SaslSetup>,
    phase: Phase,
    /// The last successful (re-)authentication.
    session: Option<AuthSession>,
}

struct AuthSession {
    mechanism: String,
    principal: String,
    /// When the session ends (KIP-368); `None`: never.
    expires: Option<Instant>,
}

enum Phase {
    /// Nothing received yet: ApiVersions or SaslHandshake.
    Initial,
    /// ApiVersions answered: SaslHandshake only.
    Handshake,
    /// Handshake answered: SaslAuthenticate tokens for this exchange.
    Authenticate(Exchange),
    /// Authenticated: any request; SaslHandshake starts a re-authentication.
    Complete,
}

/// The server side of one mechanism's exchange.
enum Exchange {
    Plain,
    Scram(String, Box<Session<ScramOutcome>>),
    /// The error challenge sent, if one was (the client's `%x01` answer then fails the
    /// exchange).
    OAuthBearer(Option<String>),
    /// The next token fails with this message (an unimplemented mechanism, or a
    /// re-authentication with another mechanism).
    Refused(String),
}

/// What one SaslAuthenticate step gives.
enum Step {
    /// Send these bytes; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated as `principal`; send `bytes`. `credential` is how long the credential
    /// remains valid, if it expires (an OAUTHBEARER token).
    Done {
        principal: String,
        bytes: Vec<u8>,
        credential: Option<Duration>,
    },
    /// `SASL_AUTHENTICATION_FAILED` with this message, then the connection closes.
    Failed(String),
}

/// Kafka's message for a mechanism's failure that has no message of its own.
fn invalid_credentials(mechanism: &str) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    )
}

impl ConnAuth {
    pub(crate) fn new(setup: Arc<SaslSetup>) -> ConnAuth {
        ConnAuth {
            setup,
            phase: Phase::Initial,
            session: None,
        }
    }

    /// Whether a request of `api` may be served now; `false` closes the connection.
    pub(crate) fn admit(&self, broker: i32, api: ApiKey, version: i16) -> bool {
        let refuse = |why: &str| {
            tracing::warn!(
                "mock broker {broker}: {} v{version} {why}, closing",
                api.name()
            );
            false
        };
        match (&self.phase, api) {
            (_, ApiKey::SaslHandshake) if version < 1 => {
                refuse("(SASL tokens without SaslAuthenticate framing are not modelled)")
            }
            (Phase::Initial | Phase::Handshake | Phase::Complete, ApiKey::SaslHandshake) => true,
            (Phase::Authenticate(_), ApiKey::SaslAuthenticate) => true,
            (Phase::Initial, ApiKey::ApiVersions) => true,
            (Phase::Complete, _) => match self.session.as_ref().and_then(|s| s.expires) {
                Some(at) if Instant::now() >= at => refuse("after the SASL session expired"),
                _ => true,
            },
            (Phase::Authenticate(_), _) => refuse("during a SASL exchange"),
            (Phase::Initial | Phase::Handshake, _) => refuse("before SASL authentication"),
        }
    }

    /// An ApiVersions request was answered with the API list (not a KIP-511 error): before
    /// authentication, only SaslHandshake may follow.
    pub(crate) fn api_versions_answered(&mut self) {
        if matches!(self.phase, Phase::Initial) {
            self.phase = Phase::Handshake;
        }
    }
}

impl Exchange {
    fn start(setup: &SaslSetup, mechanism: &str) -> Exchange {
        match mechanism {
            "PLAIN" => Exchange::Plain,
            "OAUTHBEARER" => Exchange::OAuthBearer(None),
            "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
                let session = Mechname::parse(mechanism.as_bytes())
                    .map_err(|e| e.to_string())
                    .and_then(|name| {
                        SASLServer::<ScramOutcome>::new(setup.scram.clone())
                            .start_suggested(name)
                            .map_err(|e| e.to_string())
                    });
                match session {
                    Ok(s) => Exchange::Scram(mechanism.to_owned(), Box::new(s)),
                    Err(e) => Exchange::Refused(format!("{mechanism} is not available: {e}")),
                }
            }
            other => Exchange::Refused(format!(
                "SASL mechanism {other} is not implemented by the mock broker"
            )),
        }
    }

    fn step(&mut self, shared: &Shared, setup: &SaslSetup, input: &[u8]) -> Step {
        match self {
            Exchange::Plain => plain(setup, input),
            Exchange::Scram(mechanism, session) => {
                let mut out = Vec::new();
                // rsasl's parser can panic on truncated attributes (`n`, `r` without `=`); a
                // malformed message fails the authentication instead.
                let step = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    session.step(Some(input), &mut out)
                }));
                let Ok(step) = step else {
                    return Step::Failed(invalid_credentials(mechanism));
                };
                match step {
                    Ok(State::Running) => Step::Challenge(out),
                    Ok(State::Finished(_)) => match session.validation() {
                        Some(Ok(principal)) => Step::Done {
                            principal,
                            bytes: out,
                            credential: None,
                        },
                        Some(Err(message)) => Step::Failed(message.to_owned()),
                        // rsasl wrote `e=invalid-proof` or `e=unknown-user`; Kafka sends
                        // no bytes with the error.
                        None => Step::Failed(invalid_credentials(mechanism)),
                    },
                    Err(e) => {
                        tracing::debug!("mock broker: {mechanism} exchange failed: {e}");
                        Step::Failed(invalid_credentials(mechanism))
                    }
                }
            }
            Exchange::OAuthBearer(error) => oauth_bearer(shared, error, input),
            Exchange::Refused(message) => Step::Failed(message.clone()),
        }
    }
}

/// PLAIN (RFC 4616): `authzid NUL user NUL password`, with Kafka's `PlainSaslServer` checks.
fn plain(setup: &SaslSetup, input: &[u8]) -> Step {
    let text = String::from_utf8_lossy(input);
    let tokens: Vec<&str> = text.splitn(4, '\0').collect();
    let [authzid, user, password] = tokens[..] else {
        return Step::Failed(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            tokens.len()
        ));
    };
    let failed = |m: &str| Step::Failed(format!("Authentication failed: {m}"));
    if user.is_empty() {
        return failed("username not specified");
    }
    if password.is_empty() {
        return failed("password not specified");
    }
    if setup.passwords.get(user).map(String::as_str) != Some(password) {
        return failed("Invalid username or password");
    }
    if !authzid.is_empty() && authzid != user {
        return failed("Client requested an authorization id that is different from username");
    }
    Step::Done {
        principal: user.to_owned(),
        bytes: Vec::new(),
        credential: None,
    }
}

/// OAUTHBEARER (RFC 7628): the client's initial response, or its `%x01` after an error
/// challenge. The extensions of every initial response that parses are recorded.
fn oauth_bearer(shared: &Shared, error: &mut Option<String>, input: &[u8]) -> Step {
    if let Some(message) = error.take() {
        // §3.2.3: the client acknowledges the error challenge (with %x01); the exchange fails.
        return Step::Failed(message);
    }
    let Some(initial) = parse_oauth_initial(input) else {
        return Step::Failed(invalid_credentials("OAUTHBEARER"));
    };
    shared.with(|s| s.oauth_extensions.push(initial.extensions));
    match validate_unsecured_jws(&initial.token) {
        Ok((sub, _)) if !initial.authzid.is_empty() && initial.authzid != sub => Step::Failed(
            "Authentication failed: Client requested an authorization id that is different from the token's principal name"
                .to_owned(),
        ),
        Ok((principal, remaining)) => Step::Done {
            principal,
            bytes: Vec::new(),
            credential: Some(remaining),
        },
        Err(why) => {
            tracing::debug!("mock broker: OAUTHBEARER token refused: {why}");
            *error = Some(INVALID_TOKEN.to_owned());
            Step::Challenge(INVALID_TOKEN.as_bytes().to_vec())
        }
    }
}

/// An OAUTHBEARER client initial response.
struct OAuthInitial {
    authzid: String,
    token: String,
    extensions: BTreeMap<String, String>,
}

/// Parses `n,[a=authzid],^Aauth=Bearer <token>^A[key=value^A]...^A` (RFC 7628 §3.1), with
/// Kafka's rules for extension names (`[A-Za-z]+`) and values (`[\x21-\x7E \t\r\n]+`).
fn parse_oauth_initial(input: &[u8]) -> Option<OAuthInitial> {
    let text = std::str::from_utf8(input).ok()?;
    let (authz, rest) = text.strip_prefix("n,")?.split_once(',')?;
    let authzid = if authz.is_empty() {
        ""
    } else {
        authz.strip_prefix("a=")?
    };
    let pairs = rest.strip_prefix('\u{1}')?.strip_suffix("\u{1}\u{1}")?;
    let mut token = None;
    let mut extensions = BTreeMap::new();
    for pair in pairs.split('\u{1}') {
        let (key, value) = pair.split_once('=')?;
        if key == "auth" {
            let (scheme, t) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_some() {
                return None;
            }
            token = Some(t.trim_start_matches(' ').to_owned());
        } else {
            let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
            let value_ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'));
            if !key_ok || !value_ok {
                return None;
            }
            extensions.insert(key.to_owned(), value.to_owned());
        }
    }
    Some(OAuthInitial {
        authzid: authzid.to_owned(),
        token: token.filter(|t| !t.is_empty())?,
        extensions,
    })
}

/// Validates an unsecured JWS (`header.payload.`, header `{"alg":"none"}`) as Kafka's
/// `OAuthBearerUnsecuredValidatorCallbackHandler`: the payload needs a string `sub` and a
/// numeric `exp` (seconds since the epoch) in the future; an `iat`, if any, must be a number.
/// Returns the subject and the token's remaining lifetime.
fn validate_unsecured_jws(token: &str) -> Result<(String, Duration), &'static str> {
    let engine = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let json = |part: &str| -> Result<serde_json::Map<String, Value>, &'static str> {
        let bytes = engine.decode(part).map_err(|_| "not base64url")?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("not a JSON object"),
        }
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("not a compact JWS of three parts");
    };
    if !signature.is_empty() {
        return Err("signed; only unsecured tokens are accepted");
    }
    if json(header)?.get("alg").and_then(Value::as_str) != Some("none") {
        return Err("alg is not none");
    }
    let claims = json(payload)?;
    let sub = match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => return Err("no sub claim"),
    };
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or("no numeric exp claim")?;
    if claims.get("iat").is_some_and(|iat| !iat.is_number()) {
        return Err("iat is not a number");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if exp <= now {
        return Err("expired");
    }
    Ok((sub, Duration::from_secs_f64((exp - now).min(1e12))))
}

/// SaslHandshake on a SASL connection: names an enabled mechanism or gets
/// `UNSUPPORTED_SASL_MECHANISM` (and the connection closes). On an authenticated connection it
/// starts a re-authentication (KIP-368), which must use the same mechanism. An injected error
/// is answered (with the enabled mechanisms), then the connection closes.
pub(super) fn handshake(req: &ScriptedRequest, answer: Answer, conn: &mut ConnState) -> Reply {
    let Some(auth) = conn.sasl.as_mut() else {
        return Reply::Close;
    };
    let mechanisms = auth.setup.config.mechanisms.clone();
    let response = |error_code| SaslHandshakeResponse {
        error_code,
        mechanisms,
        ..Default::default()
    };
    if let Some(code) = answer.error() {
        conn.close_after_reply = true;
        return answer.reply(req, response(code));
    }
    let mechanism = decode_or_close!(req, SaslHandshakeRequest).mechanism;
    if !auth.setup.config.mechanisms.contains(&mechanism) {
        tracing::warn!(
            "mock broker {}: SASL mechanism {mechanism:?} is not enabled, closing",
            req.broker_id
        );
        conn.close_after_reply = true;
        return answer.reply(req, response(UNSUPPORTED_MECHANISM));
    }
    let exchange = match &auth.session {
        Some(s) if s.mechanism != mechanism => Exchange::Refused(format!(
            "SASL mechanism '{mechanism}' requested by client is not supported for re-authentication of mechanism '{}'",
            s.mechanism
        )),
        _ => Exchange::start(&auth.setup, &mechanism),
    };
    auth.phase = Phase::Authenticate(exchange);
    answer.reply(req, response(NONE))
}

/// SaslAuthenticate on a SASL connection: one step of the exchange. Success completes the
/// (re-)authentication, counts it and returns the session lifetime (v1+); failure answers
/// `SASL_AUTHENTICATION_FAILED` and closes the connection. After authentication it is
/// answered with `ILLEGAL_SASL_STATE` (as Kafka). An injected error is answered, then the
/// connection closes.
pub(super) fn authenticate(
    shared: &Shared,
    req: &ScriptedRequest,
    answer: Answer,
    conn: &mut ConnState,
) -> Reply {
    let Some(auth) = conn.sasl.as_mut() else {
        return Reply::Close;
    };
    let response = |error_code, error_message: Option<&str>, bytes: Vec<u8>, lifetime_ms| {
        SaslAuthenticateResponse {
            error_code,
            error_message: error_message.map(str::to_owned),
            auth_bytes: bytes.into(),
            session_lifetime_ms: lifetime_ms,
            ..Default::default()
        }
    };
    if let Some(code) = answer.error() {
        conn.close_after_reply = true;
        return answer.reply(req, response(code, None, Vec::new(), 0));
    }
    let input = decode_or_close!(req, SaslAuthenticateRequest).auth_bytes;
    let exchange = match &mut auth.phase {
        Phase::Authenticate(exchange) => exchange,
        Phase::Complete => {
            let message = "SaslAuthenticate request received after successful authentication";
            return answer.reply(
                req,
                response(ILLEGAL_SASL_STATE, Some(message), Vec::new(), 0),
            );
        }
        // The gate closes the connection first.
        Phase::Initial | Phase::Handshake => return Reply::Close,
    };
    let (principal, bytes, credential) = match exchange.step(shared, &auth.setup, &input) {
        Step::Challenge(bytes) => return answer.reply(req, response(NONE, None, bytes, 0)),
        Step::Failed(message) => {
            conn.close_after_reply = true;
            return answer.reply(
                req,
                response(AUTHENTICATION_FAILED, Some(&message), Vec::new(), 0),
            );
        }
        Step::Done {
            principal,
            bytes,
            credential,
        } => (principal, bytes, credential),
    };
    if let Some(previous) = auth.session.as_ref().filter(|s| s.principal != principal) {
        let message = format!(
            "Cannot change principals during re-authentication from User:{}: User:{principal}",
            previous.principal
        );
        conn.close_after_reply = true;
        return answer.reply(
            req,
            response(AUTHENTICATION_FAILED, Some(&message), Vec::new(), 0),
        );
    }
    let configured = auth.setup.config.session_lifetime.filter(|d| !d.is_zero());
    let lifetime = match (configured, credential) {
        (Some(c), Some(t)) => Some(c.min(t)),
        (c, _) => c,
    };
    let mechanism = match std::mem::replace(&mut auth.phase, Phase::Complete) {
        Phase::Authenticate(Exchange::Plain) => "PLAIN".to_owned(),
        Phase::Authenticate(Exchange::OAuthBearer(_)) => "OAUTHBEARER".to_owned(),
        Phase::Authenticate(Exchange::Scram(mechanism, _)) => mechanism,
        _ => String::new(),
    };
    auth.session = Some(AuthSession {
        mechanism,
        principal,
        expires: lifetime.map(|d| Instant::now() + d),
    });
    shared.with(|s| {
        if let Some(b) = s.brokers.get_mut(req.broker_id as usize) {
            b.authentications += 1;
        }
    });
    let lifetime_ms = lifetime.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    answer.reply(req, response(NONE, None, bytes, lifetime_ms))
}
