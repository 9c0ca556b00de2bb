//! SCRAM-SHA-256 and SCRAM-SHA-512 clients (RFC 5802, RFC 7677; Kafka KIP-84), sans-io.
//!
//! The exchange: client-first `n,,n=<user>,r=<client nonce>`; server-first
//! `r=<client nonce + server nonce>,s=<salt>,i=<iterations>`; client-final
//! `c=biws,r=<nonce>,p=<proof>`; server-final `v=<server signature>` (or `e=<error>`).
//! No channel binding (`n,,` / `c=biws`), as Kafka.
//!
//! The password is used as its UTF-8 bytes without SASLprep (RFC 4013), as the Java client
//! does, so the keys match the credentials Kafka stored for the same string.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq as _;

use super::{Authenticator, SaslConfig, SaslMechanism, auth_error, sanitize_server_text};
use crate::error::Error;
use crate::security::Secret;

/// Length of the client nonce (random alphanumeric characters, so never a `,`).
const NONCE_LEN: usize = 32;

/// The hash function `H` of the mechanism (RFC 5802 §2.2, RFC 7677).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    /// `HMAC(key, data)` (RFC 2104).
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                // HMAC takes keys of any length.
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `H(data)`.
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)` = PBKDF2 with `HMAC-H` and an output of `H`'s size (RFC 5802
    /// §2.2).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// Where a SCRAM exchange is.
enum State {
    /// client-first not sent yet.
    Start,
    /// client-first sent; server-first awaited.
    SentClientFirst,
    /// client-final sent; server-final awaited, which must carry this signature.
    SentClientFinal { server_signature: Vec<u8> },
    /// The server proved it knows the password.
    Complete,
    /// The exchange failed; nothing more may happen.
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "Start",
            State::SentClientFirst => "SentClientFirst",
            State::SentClientFinal { .. } => "SentClientFinal",
            State::Complete => "Complete",
            State::Failed => "Failed",
        }
    }
}

/// The client side of SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677, KIP-84).
pub(crate) struct ScramAuthenticator {
    broker: String,
    mechanism: SaslMechanism,
    hash: Hash,
    username: String,
    password: Secret,
    max_iterations: u32,
    nonce: String,
    /// `n=<saslname>,r=<nonce>`, part of the AuthMessage.
    client_first_bare: String,
    state: State,
}

impl ScramAuthenticator {
    /// A client for `config` (mechanism SCRAM-SHA-256 or SCRAM-SHA-512) with a fresh random
    /// nonce.
    pub(crate) fn new(config: &SaslConfig, broker: &str) -> Result<ScramAuthenticator, Error> {
        let nonce: String = rand::thread_rng()
            .sample_iter(Alphanumeric)
            .take(NONCE_LEN)
            .map(char::from)
            .collect();
        ScramAuthenticator::build(config, broker, nonce)
    }

    /// A client with a chosen nonce (for test vectors).
    #[cfg(test)]
    pub(crate) fn with_nonce(
        config: &SaslConfig,
        broker: &str,
        nonce: &str,
    ) -> Result<ScramAuthenticator, Error> {
        if nonce.is_empty() || !nonce.bytes().all(is_printable) {
            return Err(auth_error(
                broker,
                config.mechanism,
                "the nonce must be printable characters other than ','",
            ));
        }
        ScramAuthenticator::build(config, broker, nonce.to_owned())
    }

    fn build(
        config: &SaslConfig,
        broker: &str,
        nonce: String,
    ) -> Result<ScramAuthenticator, Error> {
        let mechanism = config.mechanism;
        let fail = |reason: &str| auth_error(broker, mechanism, reason);
        let hash = match mechanism {
            SaslMechanism::ScramSha256 => Hash::Sha256,
            SaslMechanism::ScramSha512 => Hash::Sha512,
            _ => return Err(fail("not a SCRAM mechanism")),
        };
        if config.username.is_empty() {
            return Err(fail("the user name is empty (RFC 5802 needs one)"));
        }
        if config.username.contains('\0') {
            return Err(fail("the user name contains a NUL character (RFC 5802)"));
        }
        if config.password.is_empty() {
            return Err(fail("the password is empty"));
        }
        let client_first_bare = format!("n={},r={nonce}", sasl_name(&config.username));
        Ok(ScramAuthenticator {
            broker: broker.to_owned(),
            mechanism,
            hash,
            username: config.username.clone(),
            password: config.password.clone(),
            max_iterations: config.max_scram_iterations,
            nonce,
            client_first_bare,
            state: State::Start,
        })
    }

    fn error(&mut self, reason: impl Into<String>) -> Error {
        self.state = State::Failed;
        auth_error(&self.broker, self.mechanism, reason)
    }

    /// Reads server-first and builds client-final; remembers the expected server signature.
    fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server-first message is not UTF-8".to_owned())?;
        let parsed = parse_server_first(server_first, &self.nonce, self.max_iterations)?;
        let hash = self.hash;
        let without_proof = format!("c=biws,r={}", parsed.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let salted = hash.salted_password(
            self.password.expose().as_bytes(),
            &parsed.salt,
            parsed.iterations,
        );
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hash.hmac(&salted, b"Server Key");
        let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
        self.state = State::SentClientFinal { server_signature };
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }
}

/// `saslname` (RFC 5802 §5.1): `=` becomes `=3D` and `,` becomes `=2C`.
fn sasl_name(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// `printable` of RFC 5802 §7: `%x21-2B / %x2D-7E` (visible ASCII but `,`).
fn is_printable(b: u8) -> bool {
    matches!(b, 0x21..=0x2B | 0x2D..=0x7E)
}

/// What server-first carries.
#[derive(Debug)]
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

/// Parses server-first (RFC 5802 §7: `[reserved-mext ","] nonce "," salt "," iteration-count
/// ["," extensions]`), checking the nonce and the iteration count against `max_iterations`.
fn parse_server_first<'a>(
    message: &'a str,
    client_nonce: &str,
    max_iterations: u32,
) -> Result<ServerFirst<'a>, String> {
    if let Some(text) = message.strip_prefix("e=") {
        return Err(format!(
            "the server refused: {}",
            sanitize_server_text(text)
        ));
    }
    if message.starts_with("m=") {
        return Err("the server requires a mandatory SCRAM extension (m=), which this client does not support".into());
    }
    let mut attributes = message.split(',');
    let mut field = |name: &str, what: &str| match attributes.next() {
        Some(a) => a
            .strip_prefix(name)
            .ok_or_else(|| format!("malformed server-first message: expected {what} ({name}...)")),
        None => Err(format!(
            "malformed server-first message: no {what} ({name}...)"
        )),
    };
    let nonce = field("r=", "nonce")?;
    let salt = field("s=", "salt")?;
    let iterations = field("i=", "iteration count")?;
    // Further attributes are extensions (RFC 5802 §5.1), ignored.

    if !nonce.bytes().all(is_printable) {
        return Err("the server nonce holds characters RFC 5802 does not allow".into());
    }
    if !nonce.starts_with(client_nonce) {
        return Err("the server nonce does not start with the client nonce".into());
    }
    if nonce.len() == client_nonce.len() {
        return Err("the server added no nonce of its own".into());
    }

    let salt = BASE64
        .decode(salt)
        .map_err(|_| "the salt is not valid base64".to_owned())?;
    if salt.is_empty() {
        return Err("the salt is empty".into());
    }

    let shown = sanitize_server_text(iterations);
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the iteration count {shown:?} is not a positive number"
        ));
    }
    let too_many = || {
        format!(
            "the server asks for {shown} SCRAM iterations, more than the limit of {max_iterations} (max_scram_iterations)"
        )
    };
    let iterations: u32 = iterations.parse().map_err(|_| too_many())?;
    if iterations == 0 {
        return Err("the iteration count is 0".into());
    }
    if iterations > max_iterations {
        return Err(too_many());
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

impl Authenticator for ScramAuthenticator {
    fn initial(&mut self) -> Result<Vec<u8>, Error> {
        if !matches!(self.state, State::Start) {
            return Err(self.error("the first message was already sent"));
        }
        self.state = State::SentClientFirst;
        Ok(format!("n,,{}", self.client_first_bare).into_bytes())
    }

    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::SentClientFirst => match self.client_final(server) {
                Ok(message) => Ok(Some(message)),
                Err(reason) => Err(self.error(reason)),
            },
            State::SentClientFinal { server_signature } => {
                match verify_server_final(server, &server_signature) {
                    Ok(()) => {
                        self.state = State::Complete;
                        Ok(None)
                    }
                    Err(reason) => Err(self.error(reason)),
                }
            }
            State::Start => Err(self.error("a server message came before the first message")),
            State::Complete => Err(self.error("a server message came after the exchange ended")),
            State::Failed => Err(self.error("the exchange already failed")),
        }
    }

    fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }
}

/// Checks server-final (RFC 5802 §7: `(server-error / verifier) ["," extensions]`): the
/// verifier must equal `expected`, compared in constant time.
fn verify_server_final(message: &[u8], expected: &[u8]) -> Result<(), String> {
    let message = std::str::from_utf8(message)
        .map_err(|_| "the server-final message is not UTF-8".to_owned())?;
    let first = message.split(',').next().unwrap_or_default();
    if let Some(text) = first.strip_prefix("e=") {
        return Err(format!(
            "the server refused: {}",
            sanitize_server_text(text)
        ));
    }
    let Some(signature) = first.strip_prefix("v=") else {
        return Err("malformed server-final message: expected v=... or e=...".into());
    };
    let signature = BASE64
        .decode(signature)
        .map_err(|_| "the server signature is not valid base64".to_owned())?;
    if bool::from(signature.ct_eq(expected)) {
        Ok(())
    } else {
        Err("the server's signature is wrong: it does not know the credentials (or another party answered)".into())
    }
}

impl fmt::Debug for ScramAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramAuthenticator")
            .field("broker", &self.broker)
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("max_iterations", &self.max_iterations)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
