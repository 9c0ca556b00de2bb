//! SASL on the mock broker, seen from the wire: raw frames built by hand (PLAIN, OAUTHBEARER)
//! or by the `rsasl` crate's SCRAM client, so nothing here depends on kafkawire's client.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::frame::{FrameDecoder, decode_response, encode_request};
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::metadata_request::MetadataRequest;
use kafkawire_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafkawire_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use kafkawire_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafkawire_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use kafkawire_protocol::messages::{ApiKey, Request};
use kafkawire_testkit::mock::{Action, MockCluster, SaslServerConfig};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);
const FAILED: i16 = ErrorCode::SASL_AUTHENTICATION_FAILED.0;

/// A bare connection speaking frames.
struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    next_correlation_id: i32,
}

impl Conn {
    async fn connect(addr: &str) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            decoder: FrameDecoder::new(1 << 24),
            next_correlation_id: 1,
        }
    }

    /// Sends a request; returns its correlation id.
    async fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut buf = BytesMut::new();
        encode_request(&mut buf, id, Some("sasl-test"), version, req).expect("encode");
        // The broker may have closed the connection already; the read then tells.
        let _ = self.stream.write_all(&buf).await;
        id
    }

    /// The next frame, or `None` on end of stream.
    async fn frame(&mut self) -> Option<Bytes> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(f) = self.decoder.next_frame().expect("frame") {
                    return Some(f);
                }
                let read = self.stream.read_buf(self.decoder.buffer_mut()).await;
                if read.unwrap_or_default() == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("no frame within the timeout")
    }

    /// The response to the request `id` of `R`, or `None` if the connection closed.
    async fn recv<R: Request>(&mut self, version: i16, id: i32) -> Option<R::Response> {
        let frame = self.frame().await?;
        let (header, body) =
            decode_response::<R::Response>(frame, R::API_KEY, version).expect("decode response");
        assert_eq!(header.correlation_id, id, "responses in request order");
        Some(body)
    }

    async fn call<R: Request>(&mut self, version: i16, req: &R) -> Option<R::Response> {
        let id = self.send(version, req).await;
        self.recv::<R>(version, id).await
    }

    /// Whether the broker closed the connection (no frame before end of stream).
    async fn is_closed(&mut self) -> bool {
        self.frame().await.is_none()
    }

    async fn api_versions(&mut self) -> bool {
        let req = ApiVersionsRequest {
            client_software_name: "t".into(),
            client_software_version: "1".into(),
            ..Default::default()
        };
        self.call(3, &req).await.is_some_and(|r| r.error_code == 0)
    }

    async fn handshake(&mut self, mechanism: &str) -> Option<SaslHandshakeResponse> {
        let req = SaslHandshakeRequest {
            mechanism: mechanism.to_owned(),
            ..Default::default()
        };
        self.call(1, &req).await
    }

    async fn authenticate(
        &mut self,
        version: i16,
        bytes: &[u8],
    ) -> Option<SaslAuthenticateResponse> {
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(bytes),
            ..Default::default()
        };
        self.call(version, &req).await
    }

    /// A Metadata request for all topics: whether it was answered.
    async fn metadata(&mut self) -> bool {
        let req = MetadataRequest {
            topics: None,
            ..Default::default()
        };
        self.call(12, &req).await.is_some()
    }

    /// Handshake and one PLAIN token; the SaslAuthenticate (v2) response.
    async fn plain(&mut self, user: &str, password: &str) -> Option<SaslAuthenticateResponse> {
        let h = self.handshake("PLAIN").await.expect("handshake answered");
        assert_eq!(h.error_code, 0);
        self.authenticate(2, format!("\0{user}\0{password}").as_bytes())
            .await
    }

    /// A whole SCRAM exchange with the `rsasl` client: `Ok` with the final response once the
    /// client has verified the server's signature, `Err` with the failed response.
    async fn scram(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<SaslAuthenticateResponse, Option<SaslAuthenticateResponse>> {
        let h = self.handshake(mechanism).await.expect("handshake answered");
        assert_eq!(h.error_code, 0, "{h:?}");
        let config = SASLConfig::with_credentials(None, user.into(), password.into()).unwrap();
        let name = Mechname::parse(mechanism.as_bytes()).unwrap();
        let mut client = SASLClient::new(config).start_suggested(&[name]).unwrap();
        let mut out = Cursor::new(Vec::new());
        let mut state = client.step(None, &mut out).expect("client-first");
        loop {
            let resp = self.authenticate(2, out.get_ref()).await.ok_or(None)?;
            if resp.error_code != 0 {
                return Err(Some(resp));
            }
            assert!(state.is_running(), "no more server messages expected");
            out = Cursor::new(Vec::new());
            state = client
                .step(Some(&resp.auth_bytes), &mut out)
                .expect("the client accepts the server's message");
            if !state.is_running() {
                assert_eq!(state, State::Finished(rsasl::prelude::MessageSent::No));
                return Ok(resp);
            }
        }
    }
}

fn plain_cluster_config() -> SaslServerConfig {
    SaslServerConfig::default()
        .user("alice", "alice-secret")
        .user("bob", "bob-secret")
}

async fn cluster(config: SaslServerConfig) -> MockCluster {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    cluster.enable_sasl(config);
    cluster
}

/// An unsecured JWS (`alg` `none`) with these claims.
fn unsecured_jws(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The RFC 7628 client initial response.
fn oauth_initial(token: &str, extensions: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("n,,\x01auth=Bearer {token}\x01");
    for (k, v) in extensions {
        s.push_str(&format!("{k}={v}\x01"));
    }
    s.push('\x01');
    s.into_bytes()
}

#[tokio::test]
async fn plain_authenticates_then_requests_are_served() {
    let cluster = cluster(plain_cluster_config()).await;
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    assert!(c.api_versions().await, "ApiVersions is allowed first");
    let h = c.handshake("PLAIN").await.unwrap();
    assert_eq!(h.error_code, 0);
    assert_eq!(
        h.mechanisms,
        ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
    );
    let r = c.authenticate(2, b"\0alice\0alice-secret").await.unwrap();
    assert_eq!((r.error_code, r.error_message.as_deref()), (0, None));
    assert_eq!(r.session_lifetime_ms, 0, "no session lifetime configured");
    assert!(c.metadata().await);
    assert!(
        c.api_versions().await,
        "ApiVersions again after authentication"
    );
    assert_eq!(cluster.authentications(), 1);
    assert_eq!(cluster.broker(0).authentications(), 1);

    // KIP-511: ApiVersions answered with UNSUPPORTED_VERSION (too new, or scripted) may be
    // retried before the handshake.
    let (min, max) = ApiKey::ApiVersions.versions();
    cluster.set_api_versions(ApiKey::ApiVersions, min, 2);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let req = ApiVersionsRequest::default();
    let id = c.send(3, &req).await;
    let r = c.recv::<ApiVersionsRequest>(0, id).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::UNSUPPORTED_VERSION.0);
    cluster.script(
        ApiKey::ApiVersions,
        Action::ErrorCode(ErrorCode::UNSUPPORTED_VERSION),
    );
    let id = c.send(2, &req).await;
    let r = c.recv::<ApiVersionsRequest>(0, id).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::UNSUPPORTED_VERSION.0);
    let id = c.send(2, &req).await;
    let r = c.recv::<ApiVersionsRequest>(2, id).await.unwrap();
    assert_eq!(r.error_code, 0);
    cluster.set_api_versions(ApiKey::ApiVersions, min, max);
    assert_eq!(
        c.plain("alice", "alice-secret").await.unwrap().error_code,
        0
    );

    // Without ApiVersions first, and with an authorization id equal to the user.
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.handshake("PLAIN").await.unwrap();
    let r = c.authenticate(0, b"bob\0bob-secret\0bob-secret").await;
    assert_eq!(
        r.unwrap().error_code,
        FAILED,
        "tokens: authzid, user, password"
    );
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.handshake("PLAIN").await.unwrap();
    let r = c.authenticate(0, b"bob\0bob\0bob-secret").await.unwrap();
    assert_eq!(r.error_code, 0);
    assert!(c.metadata().await);
    assert_eq!(cluster.authentications(), 3);
}

#[tokio::test]
async fn plain_failures_answer_58_without_secrets_and_close() {
    let cluster = cluster(plain_cluster_config()).await;
    let cases: [(&[u8], &str); 5] = [
        (
            b"\0alice\0wrong-password",
            "Authentication failed: Invalid username or password",
        ),
        (
            b"\0mallory\0alice-secret",
            "Authentication failed: Invalid username or password",
        ),
        (
            b"bob\0alice\0alice-secret",
            "Authentication failed: Client requested an authorization id that is different from username",
        ),
        (
            b"\0alice\0",
            "Authentication failed: password not specified",
        ),
        (
            b"alice-secret",
            "Invalid SASL/PLAIN response: expected 3 tokens, got 1",
        ),
    ];
    for (token, message) in cases {
        let mut c = Conn::connect(&cluster.bootstrap()).await;
        assert!(c.api_versions().await);
        c.handshake("PLAIN").await.unwrap();
        let r = c.authenticate(1, token).await.expect("answered");
        assert_eq!(r.error_code, FAILED);
        assert_eq!(r.error_message.as_deref(), Some(message));
        assert!(r.auth_bytes.is_empty());
        assert!(c.is_closed().await, "closed after a failed authentication");
    }
    assert_eq!(cluster.authentications(), 0);
}

#[tokio::test]
async fn unknown_mechanism_gets_33_listing_the_enabled_ones_and_closes() {
    let cluster = cluster(SaslServerConfig::new(&["SCRAM-SHA-512", "PLAIN"])).await;
    for mechanism in ["GSSAPI", "SCRAM-SHA-256", "plain"] {
        let mut c = Conn::connect(&cluster.bootstrap()).await;
        let h = c.handshake(mechanism).await.expect("answered");
        assert_eq!(h.error_code, ErrorCode::UNSUPPORTED_SASL_MECHANISM.0);
        assert_eq!(h.mechanisms, ["SCRAM-SHA-512", "PLAIN"]);
        assert!(c.is_closed().await);
    }
}

#[tokio::test]
async fn requests_before_authentication_close_the_connection() {
    let cluster = cluster(plain_cluster_config()).await;
    let addr = cluster.bootstrap();

    let mut c = Conn::connect(&addr).await;
    assert!(!c.metadata().await, "Metadata first");

    let mut c = Conn::connect(&addr).await;
    assert!(c.api_versions().await);
    assert!(!c.metadata().await, "Metadata after ApiVersions");

    let mut c = Conn::connect(&addr).await;
    assert!(c.api_versions().await);
    assert!(
        !c.api_versions().await,
        "a second ApiVersions before the handshake"
    );

    let mut c = Conn::connect(&addr).await;
    assert!(
        c.authenticate(2, b"\0alice\0alice-secret").await.is_none(),
        "no handshake"
    );

    let mut c = Conn::connect(&addr).await;
    assert_eq!(c.handshake("PLAIN").await.unwrap().error_code, 0);
    assert!(
        !c.metadata().await,
        "Metadata between handshake and authenticate"
    );

    let mut c = Conn::connect(&addr).await;
    let req = SaslHandshakeRequest {
        mechanism: "PLAIN".into(),
        ..Default::default()
    };
    assert!(
        c.call(0, &req).await.is_none(),
        "SaslHandshake v0 (raw tokens) is not modelled"
    );

    // A scripted Metadata action is not consumed by a refused request.
    cluster.script(
        ApiKey::Metadata,
        Action::ErrorCode(ErrorCode::NOT_CONTROLLER),
    );
    let mut c = Conn::connect(&addr).await;
    assert!(!c.metadata().await);
    assert_eq!(cluster.pending_scripts(), 1);
    assert_eq!(cluster.authentications(), 0);

    // After disable_sasl, new connections need no authentication.
    cluster.disable_sasl();
    let mut c = Conn::connect(&addr).await;
    assert!(c.metadata().await);
}

#[tokio::test]
async fn scram_sha_256_and_512_full_exchanges_with_the_rsasl_client() {
    let cluster = cluster(plain_cluster_config().scram_iterations(8192)).await;
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let mut c = Conn::connect(&cluster.bootstrap()).await;
        assert!(c.api_versions().await);
        // The server-first message carries the configured iteration count.
        let h = c.handshake(mechanism).await.unwrap();
        assert_eq!(h.error_code, 0);
        let r = c
            .authenticate(2, b"n,,n=alice,r=abcdefghijklmnop")
            .await
            .unwrap();
        let server_first = String::from_utf8(r.auth_bytes.to_vec()).unwrap();
        assert!(
            server_first.starts_with("r=abcdefghijklmnop"),
            "{server_first}"
        );
        assert!(server_first.ends_with(",i=8192"), "{server_first}");

        let mut c = Conn::connect(&cluster.bootstrap()).await;
        assert!(c.api_versions().await);
        let last = c
            .scram(mechanism, "bob", "bob-secret")
            .await
            .expect("authenticated");
        assert!(last.auth_bytes.starts_with(b"v="), "server signature sent");
        assert!(c.metadata().await);
    }
    assert_eq!(cluster.authentications(), 2);
}

#[tokio::test]
async fn scram_with_a_wrong_password_or_user_fails_and_closes() {
    let cluster = cluster(plain_cluster_config()).await;
    for (mechanism, user, password) in [
        ("SCRAM-SHA-256", "alice", "bob-secret"),
        ("SCRAM-SHA-512", "alice", "wrong"),
        ("SCRAM-SHA-512", "mallory", "alice-secret"),
    ] {
        let mut c = Conn::connect(&cluster.bootstrap()).await;
        let failed = c
            .scram(mechanism, user, password)
            .await
            .expect_err("refused")
            .expect("answered");
        assert_eq!(failed.error_code, FAILED);
        let expected = format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
        );
        assert_eq!(failed.error_message, Some(expected));
        assert!(c.is_closed().await);
    }
    // Malformed client-first messages (the last one makes rsasl's parser panic, which the
    // mock turns into a failed authentication; the panic message may show in the output).
    for message in [&b"\0alice\0alice-secret"[..], b"n,,n=alice", b"n,,n"] {
        let mut c = Conn::connect(&cluster.bootstrap()).await;
        c.handshake("SCRAM-SHA-256").await.unwrap();
        let r = c.authenticate(2, message).await.unwrap();
        assert_eq!(r.error_code, FAILED);
        assert!(c.is_closed().await);
    }
    assert_eq!(cluster.authentications(), 0);
}

#[tokio::test]
async fn oauthbearer_accepts_an_unsecured_token_and_records_extensions() {
    let cluster = cluster(SaslServerConfig::new(&["OAUTHBEARER"])).await;
    let token = unsecured_jws(&serde_json::json!({
        "sub": "svc-orders",
        "iat": now_secs(),
        "exp": now_secs() + 3600.0,
        "scope": "kafka",
    }));
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    assert!(c.api_versions().await);
    assert_eq!(c.handshake("OAUTHBEARER").await.unwrap().error_code, 0);
    let initial = oauth_initial(
        &token,
        &[("traceId", "abc-123"), ("logicalCluster", "lkc-1")],
    );
    let r = c.authenticate(2, &initial).await.unwrap();
    assert_eq!((r.error_code, r.auth_bytes.len()), (0, 0));
    assert!(c.metadata().await);
    assert_eq!(cluster.authentications(), 1);
    let expected: BTreeMap<String, String> = [("logicalCluster", "lkc-1"), ("traceId", "abc-123")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(cluster.oauth_extensions(), [expected]);
}

#[tokio::test]
async fn oauthbearer_bad_tokens_get_the_error_challenge_then_58() {
    let cluster = cluster(SaslServerConfig::new(&["OAUTHBEARER"])).await;
    let expired = unsecured_jws(&serde_json::json!({"sub": "svc", "exp": now_secs() - 10.0}));
    let no_sub = unsecured_jws(&serde_json::json!({"exp": now_secs() + 60.0}));
    let signed = format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(br#"{"sub":"svc","exp":99999999999}"#)
    );
    for token in [expired, no_sub, signed, "not-a-jwt".to_owned()] {
        let mut c = Conn::connect(&cluster.bootstrap()).await;
        c.handshake("OAUTHBEARER").await.unwrap();
        let r = c
            .authenticate(2, &oauth_initial(&token, &[]))
            .await
            .unwrap();
        assert_eq!(r.error_code, 0, "the error is a challenge first (RFC 7628)");
        assert_eq!(&r.auth_bytes[..], br#"{"status":"invalid_token"}"#);
        let r = c.authenticate(2, b"\x01").await.unwrap();
        assert_eq!(r.error_code, FAILED);
        let message = r.error_message.unwrap();
        assert!(!message.contains(&token), "{message}");
        assert!(c.is_closed().await);
    }
    // A malformed initial response fails at once.
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.handshake("OAUTHBEARER").await.unwrap();
    let r = c.authenticate(2, b"n,,auth=Bearer x").await.unwrap();
    assert_eq!(r.error_code, FAILED);
    assert!(c.is_closed().await);
    assert_eq!(cluster.authentications(), 0);
    assert_eq!(
        cluster.oauth_extensions().len(),
        4,
        "every parsed initial response"
    );
}

#[tokio::test]
async fn an_expired_session_closes_the_connection_on_the_next_request() {
    let lifetime = Duration::from_millis(300);
    let cluster = cluster(plain_cluster_config().session_lifetime(lifetime)).await;
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let r = c.plain("alice", "alice-secret").await.unwrap();
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 300));
    assert!(c.metadata().await);
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    assert!(!c.metadata().await, "closed: the session expired");

    // SaslAuthenticate v0 has no session lifetime field; the session still expires.
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.handshake("PLAIN").await.unwrap();
    let r = c.authenticate(0, b"\0bob\0bob-secret").await.unwrap();
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 0));
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    assert!(!c.api_versions().await);
}

#[tokio::test]
async fn reauthentication_resets_the_session_and_keeps_answering_in_order() {
    let lifetime = Duration::from_millis(1000);
    let cluster = cluster(plain_cluster_config().session_lifetime(lifetime)).await;
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    assert!(c.api_versions().await);
    assert_eq!(
        c.plain("alice", "alice-secret")
            .await
            .unwrap()
            .session_lifetime_ms,
        1000
    );
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Pipelined: Metadata, re-authentication, Metadata; answered in order.
    let metadata = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let handshake = SaslHandshakeRequest {
        mechanism: "PLAIN".into(),
        ..Default::default()
    };
    let token = SaslAuthenticateRequest {
        auth_bytes: Bytes::from_static(b"\0alice\0alice-secret"),
        ..Default::default()
    };
    let m1 = c.send(12, &metadata).await;
    let h = c.send(1, &handshake).await;
    let a = c.send(2, &token).await;
    let m2 = c.send(12, &metadata).await;
    assert!(c.recv::<MetadataRequest>(12, m1).await.is_some());
    assert_eq!(
        c.recv::<SaslHandshakeRequest>(1, h)
            .await
            .unwrap()
            .error_code,
        0
    );
    let r = c.recv::<SaslAuthenticateRequest>(2, a).await.unwrap();
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1000));
    assert!(c.recv::<MetadataRequest>(12, m2).await.is_some());

    // 1200 ms after the first authentication, 600 ms after the second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        c.metadata().await,
        "the re-authentication reset the session"
    );
    assert_eq!(cluster.authentications(), 2);

    // After expiry, a re-authentication is still allowed (SaslHandshake comes first).
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    assert_eq!(
        c.plain("alice", "alice-secret").await.unwrap().error_code,
        0
    );
    assert!(c.metadata().await);
    assert_eq!(cluster.authentications(), 3);

    // SaslAuthenticate without a handshake on an authenticated connection: ILLEGAL_SASL_STATE.
    let r = c.authenticate(2, b"\0alice\0alice-secret").await.unwrap();
    assert_eq!(r.error_code, ErrorCode::ILLEGAL_SASL_STATE.0);
    assert!(c.metadata().await);
}

#[tokio::test]
async fn reauthentication_keeps_the_mechanism_and_the_principal() {
    let cluster = cluster(plain_cluster_config()).await;
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    assert_eq!(
        c.plain("alice", "alice-secret").await.unwrap().error_code,
        0
    );
    let r = c.plain("bob", "bob-secret").await.unwrap();
    assert_eq!(r.error_code, FAILED);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Cannot change principals during re-authentication from User:alice: User:bob")
    );
    assert!(c.is_closed().await);

    let mut c = Conn::connect(&cluster.bootstrap()).await;
    assert_eq!(
        c.plain("alice", "alice-secret").await.unwrap().error_code,
        0
    );
    let err = c
        .scram("SCRAM-SHA-256", "alice", "alice-secret")
        .await
        .unwrap_err();
    let r = err.expect("answered");
    assert_eq!(r.error_code, FAILED);
    assert!(
        r.error_message
            .unwrap()
            .contains("re-authentication of mechanism 'PLAIN'")
    );
    assert!(c.is_closed().await);
    assert_eq!(cluster.authentications(), 2);
}

#[tokio::test]
async fn oauthbearer_session_lifetime_is_capped_by_the_token() {
    let config =
        SaslServerConfig::new(&["OAUTHBEARER"]).session_lifetime(Duration::from_secs(3600));
    let cluster = cluster(config).await;
    let token = unsecured_jws(&serde_json::json!({"sub": "svc", "exp": now_secs() + 2.0}));
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.handshake("OAUTHBEARER").await.unwrap();
    let r = c
        .authenticate(1, &oauth_initial(&token, &[]))
        .await
        .unwrap();
    assert_eq!(r.error_code, 0);
    assert!(
        (1..=2000).contains(&r.session_lifetime_ms),
        "{}",
        r.session_lifetime_ms
    );
}

#[tokio::test]
async fn scripted_actions_apply_to_sasl_requests() {
    let cluster = cluster(plain_cluster_config()).await;
    // An injected error is answered, then the connection closes.
    cluster.script(
        ApiKey::SaslAuthenticate,
        Action::ErrorCode(ErrorCode::SASL_AUTHENTICATION_FAILED),
    );
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let r = c.plain("alice", "alice-secret").await.unwrap();
    assert_eq!(r.error_code, FAILED);
    assert!(c.is_closed().await);
    // A delay still authenticates.
    cluster.script(
        ApiKey::SaslHandshake,
        Action::Delay(Duration::from_millis(50)),
    );
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    assert_eq!(
        c.plain("alice", "alice-secret").await.unwrap().error_code,
        0
    );
    assert!(c.metadata().await);
    assert_eq!(cluster.authentications(), 1);
}
