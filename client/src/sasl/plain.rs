//! SASL PLAIN (RFC 4616) as Kafka uses it (KIP-43): one message, `authzid NUL authcid NUL
//! passwd` with an empty authorization id, answered by an empty success message.

use std::fmt;

use super::{Authenticator, SaslConfig, SaslMechanism, auth_error};
use crate::error::Error;
use crate::security::Secret;

/// Where a PLAIN exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The message is not sent yet.
    Start,
    /// The message is sent; the server's answer is awaited.
    Sent,
    /// The server accepted it.
    Complete,
    /// The exchange failed; nothing more may happen.
    Failed,
}

/// The client side of RFC 4616 PLAIN: sends `\0<user>\0<password>` (the authzid, RFC 4616 §2,
/// left empty as Kafka does) and completes on the server's empty answer.
pub(crate) struct PlainAuthenticator {
    broker: String,
    username: String,
    password: Secret,
    state: State,
}

impl PlainAuthenticator {
    /// Checks the credentials against RFC 4616 §2 (`authcid` and `passwd` are `1*SAFE`: not
    /// empty, no NUL).
    pub(crate) fn new(config: &SaslConfig, broker: &str) -> Result<PlainAuthenticator, Error> {
        let fail = |reason: &str| auth_error(broker, SaslMechanism::Plain, reason);
        if config.username.is_empty() {
            return Err(fail("the user name is empty (RFC 4616 needs one)"));
        }
        if config.username.contains('\0') {
            return Err(fail("the user name contains a NUL character (RFC 4616)"));
        }
        if config.password.is_empty() {
            return Err(fail("the password is empty (RFC 4616 needs one)"));
        }
        if config.password.expose().contains('\0') {
            return Err(fail("the password contains a NUL character (RFC 4616)"));
        }
        Ok(PlainAuthenticator {
            broker: broker.to_owned(),
            username: config.username.clone(),
            password: config.password.clone(),
            state: State::Start,
        })
    }

    fn error(&mut self, reason: impl Into<String>) -> Error {
        self.state = State::Failed;
        auth_error(&self.broker, SaslMechanism::Plain, reason)
    }
}

impl Authenticator for PlainAuthenticator {
    fn initial(&mut self) -> Result<Vec<u8>, Error> {
        if self.state != State::Start {
            return Err(self.error("the first message was already sent"));
        }
        let password = self.password.expose().as_bytes();
        let mut message = Vec::with_capacity(2 + self.username.len() + password.len());
        message.push(0);
        message.extend_from_slice(self.username.as_bytes());
        message.push(0);
        message.extend_from_slice(password);
        self.state = State::Sent;
        Ok(message)
    }

    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match self.state {
            State::Sent if server.is_empty() => {
                self.state = State::Complete;
                Ok(None)
            }
            State::Sent => {
                let reason = format!(
                    "the server answered with {} bytes where PLAIN expects none",
                    server.len()
                );
                Err(self.error(reason))
            }
            State::Start => Err(self.error("a server message came before the first message")),
            State::Complete => Err(self.error("a server message came after the exchange ended")),
            State::Failed => Err(self.error("the exchange already failed")),
        }
    }

    fn is_complete(&self) -> bool {
        self.state == State::Complete
    }
}

impl fmt::Debug for PlainAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainAuthenticator")
            .field("broker", &self.broker)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("state", &self.state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(user: &str, password: &str) -> Result<PlainAuthenticator, Error> {
        PlainAuthenticator::new(&SaslConfig::plain(user, password), "broker:9092")
    }

    #[test]
    fn message_is_rfc4616_with_empty_authzid_and_empty_answer_completes() {
        let mut a = plain("alice", "s3cret pass").unwrap();
        assert!(!a.is_complete());
        assert_eq!(a.initial().unwrap(), b"\0alice\0s3cret pass");
        assert!(!a.is_complete());
        assert_eq!(a.step(b"").unwrap(), None);
        assert!(a.is_complete());
    }

    #[test]
    fn unicode_credentials_are_sent_as_utf8() {
        let mut a = plain("jöran", "pässwörd").unwrap();
        let mut expected = vec![0];
        expected.extend_from_slice("jöran".as_bytes());
        expected.push(0);
        expected.extend_from_slice("pässwörd".as_bytes());
        assert_eq!(a.initial().unwrap(), expected);
    }

    #[test]
    fn bad_credentials_are_refused_without_showing_the_password() {
        for (user, password) in [("", "p"), ("a\0b", "p"), ("u", ""), ("u", "pw\0secret")] {
            let e = plain(user, password).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("broker:9092") && text.contains("PLAIN"),
                "{text}"
            );
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn unexpected_server_data_and_out_of_order_calls_are_errors() {
        let mut a = plain("u", "p").unwrap();
        assert!(a.step(b"").is_err(), "step before initial");
        let mut a = plain("u", "p").unwrap();
        a.initial().unwrap();
        assert!(a.initial().is_err(), "initial twice");
        let mut a = plain("u", "p").unwrap();
        a.initial().unwrap();
        let e = a.step(b"surprise").unwrap_err();
        assert!(e.to_string().contains("8 bytes"), "{e}");
        assert!(!a.is_complete());
        assert!(a.step(b"").is_err(), "no success after a failure");
        let mut a = plain("u", "p").unwrap();
        a.initial().unwrap();
        a.step(b"").unwrap();
        assert!(a.step(b"").is_err(), "nothing after completion");
    }

    #[test]
    fn debug_hides_the_password() {
        let a = plain("alice", "hunter2-secret").unwrap();
        let text = format!("{a:?}");
        assert!(text.contains("alice"), "{text}");
        assert!(!text.contains("hunter2-secret"), "{text}");
    }
}
