//! Credentials in generated messages never show in `Debug` output (the SASL tokens of
//! SaslAuthenticate, which carry passwords for PLAIN and bearer tokens for OAUTHBEARER).

use bytes::Bytes;
use kafkawire_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafkawire_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;

#[test]
fn sasl_authenticate_auth_bytes_are_redacted_in_debug() {
    let secret = "\0alice\0hunter2-password";
    let req = SaslAuthenticateRequest {
        auth_bytes: Bytes::from(secret),
        ..Default::default()
    };
    let shown = format!("{req:?} {req:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redacted, 23 bytes"), "{shown}");
    let resp = SaslAuthenticateResponse {
        auth_bytes: Bytes::from("v=server-signature-secret"),
        error_message: Some("Authentication failed".into()),
        ..Default::default()
    };
    let shown = format!("{resp:?}");
    assert!(!shown.contains("server-signature"), "{shown}");
    assert!(shown.contains("Authentication failed"), "{shown}");
}
