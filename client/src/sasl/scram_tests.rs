//! Tests of the SCRAM client: RFC 7677's example, an independently computed SCRAM-SHA-512
//! exchange, and refusals of bad or hostile server messages.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha512};

use super::*;

const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_client() -> ScramAuthenticator {
    let config = SaslConfig::scram_sha256("user", "pencil");
    ScramAuthenticator::with_nonce(&config, "broker:9092", RFC_NONCE).unwrap()
}

/// A client past client-first.
fn started(mut client: ScramAuthenticator) -> ScramAuthenticator {
    client.initial().unwrap();
    client
}

fn reason(e: Error) -> String {
    match e {
        Error::Authentication {
            broker,
            mechanism,
            reason,
        } => {
            assert_eq!(broker, "broker:9092");
            assert!(mechanism.starts_with("SCRAM-SHA-"), "{mechanism}");
            reason
        }
        other => panic!("not an authentication error: {other:?}"),
    }
}

#[test]
fn rfc7677_scram_sha256_example() {
    let mut c = rfc_client();
    assert_eq!(c.initial().unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let client_final = c.step(RFC_SERVER_FIRST.as_bytes()).unwrap().unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    assert!(!c.is_complete());
    assert_eq!(c.step(RFC_SERVER_FINAL.as_bytes()).unwrap(), None);
    assert!(c.is_complete());
    assert!(c.step(b"").is_err(), "nothing after completion");
}

#[test]
fn server_final_may_carry_extensions() {
    let mut c = started(rfc_client());
    c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
    let with_ext = format!("{RFC_SERVER_FINAL},x=whatever");
    assert_eq!(c.step(with_ext.as_bytes()).unwrap(), None);
}

#[test]
fn wrong_server_signature_is_refused() {
    // One flipped bit; a truncated signature; another valid-looking one.
    let mut flipped = BASE64.decode(&RFC_SERVER_FINAL[2..]).unwrap();
    flipped[7] ^= 1;
    let flipped = format!("v={}", BASE64.encode(flipped));
    for bad in [
        flipped.as_str(),
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",
        "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "v=",
    ] {
        let mut c = started(rfc_client());
        c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let r = reason(c.step(bad.as_bytes()).unwrap_err());
        assert!(r.contains("signature"), "{bad}: {r}");
        assert!(!c.is_complete());
        assert!(
            c.step(RFC_SERVER_FINAL.as_bytes()).is_err(),
            "no retry after failure"
        );
    }
}

#[test]
fn server_error_text_is_reported() {
    let mut c = started(rfc_client());
    c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
    let r = reason(c.step(b"e=invalid-proof").unwrap_err());
    assert!(r.contains("invalid-proof"), "{r}");
    let mut c = started(rfc_client());
    let r = reason(c.step(b"e=unknown-user").unwrap_err());
    assert!(r.contains("unknown-user"), "{r}");
}

#[test]
fn tampered_nonce_is_refused() {
    for (server_first, expect) in [
        // The client nonce changed.
        (
            "r=rOprNGfwEbeRWgbNEkqX%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "does not start",
        ),
        // The server's part missing.
        (
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "no nonce of its own",
        ),
        // Shorter than ours.
        ("r=rOpr,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not start"),
        // A character outside `printable`.
        (
            "r=rOprNGfwEbeRWgbNEkqO abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "characters",
        ),
    ] {
        let mut c = started(rfc_client());
        let r = reason(c.step(server_first.as_bytes()).unwrap_err());
        assert!(r.contains(expect), "{server_first}: {r}");
    }
}

#[test]
fn iteration_count_above_the_limit_is_refused_without_computing() {
    let mut config = SaslConfig::scram_sha256("user", "pencil");
    config.max_scram_iterations = 8192;
    for i in [
        "8193",
        "4294967295",
        "4294967296",
        "99999999999999999999999999",
    ] {
        let mut c = ScramAuthenticator::with_nonce(&config, "broker:9092", RFC_NONCE).unwrap();
        c.initial().unwrap();
        let server_first = format!(
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}"
        );
        let started_at = Instant::now();
        let r = reason(c.step(server_first.as_bytes()).unwrap_err());
        // 4 billion PBKDF2 rounds would take minutes.
        assert!(started_at.elapsed() < Duration::from_secs(1));
        assert!(r.contains(i) && r.contains("8192"), "{r}");
    }
    // At the limit it works.
    let mut c = ScramAuthenticator::with_nonce(&config, "broker:9092", RFC_NONCE).unwrap();
    c.initial().unwrap();
    assert!(c.step(RFC_SERVER_FIRST.as_bytes()).unwrap().is_some());
}

#[test]
fn garbage_server_first_messages_are_errors() {
    let n = "rOprNGfwEbeRWgbNEkqO%abc";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "nonce"),
        ("r=".into(), "no salt"),
        (
            "r=,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            "does not start",
        ),
        (format!("r={n}"), "no salt"),
        (
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ=="),
            "no iteration count",
        ),
        (
            format!("r={n},i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ=="),
            "expected salt",
        ),
        (
            format!("s=W22ZaJ0SNY7soEsUEjb6gQ==,r={n},i=4096"),
            "expected nonce",
        ),
        (format!("r={n},s=not base64!,i=4096"), "base64"),
        (format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096"), "base64"),
        (format!("r={n},s=,i=4096"), "salt is empty"),
        (format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"), "is 0"),
        (
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-5"),
            "not a positive",
        ),
        (
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+5"),
            "not a positive",
        ),
        (
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i="),
            "not a positive",
        ),
        (
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i= 10"),
            "not a positive",
        ),
        (
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1e3"),
            "not a positive",
        ),
        (
            format!("m=ext,r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            "mandatory",
        ),
        ("garbage".into(), "nonce"),
    ];
    for (server_first, expect) in cases {
        let mut c = started(rfc_client());
        let r = reason(c.step(server_first.as_bytes()).unwrap_err());
        assert!(r.contains(expect), "{server_first:?}: {r}");
        assert!(!c.is_complete());
    }
    let mut c = started(rfc_client());
    let r = reason(c.step(b"r=\xff\xfe").unwrap_err());
    assert!(r.contains("UTF-8"), "{r}");
}

#[test]
fn garbage_server_final_messages_are_errors() {
    for bad in [&b""[..], b"v", b"x=abc", b"v=@@@", b"\xff", b",v=abc"] {
        let mut c = started(rfc_client());
        c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert!(c.step(bad).is_err(), "{bad:?}");
        assert!(!c.is_complete());
    }
}

#[test]
fn extensions_in_server_first_are_ignored() {
    let mut c = started(rfc_client());
    let with_ext = format!("{RFC_SERVER_FIRST},x=1,tokenauth=true");
    let client_final = c.step(with_ext.as_bytes()).unwrap().unwrap();
    // The proof covers the message as received, so it differs from the RFC's.
    let text = String::from_utf8(client_final).unwrap();
    assert!(text.starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
    assert_ne!(text, RFC_CLIENT_FINAL);
}

/// Random bytes and random mutations of valid messages at both steps: errors or messages,
/// never a panic. The seed is printed; set `SASL_FUZZ_SEED` to replay one.
#[test]
fn random_server_messages_never_panic() {
    let seed = std::env::var("SASL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().r#gen::<u64>());
    println!("SASL_FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut config = SaslConfig::scram_sha512("user", "pencil");
    config.max_scram_iterations = 64;
    let base_first = format!("r={RFC_NONCE}srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=16");
    let alphabet = b"rsimve=,0123456789-+/AZaz%\x00\xff";
    for round in 0..2000 {
        let message: Vec<u8> = if round % 2 == 0 {
            let len = rng.gen_range(0..64);
            (0..len).map(|_| rng.r#gen::<u8>()).collect()
        } else {
            let mut m = base_first.clone().into_bytes();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..=m.len());
                match rng.gen_range(0..3) {
                    0 if at < m.len() => {
                        m.remove(at);
                    }
                    1 if at < m.len() => m[at] = alphabet[rng.gen_range(0..alphabet.len())],
                    _ => m.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                }
            }
            m
        };
        let mut c = ScramAuthenticator::with_nonce(&config, "broker:9092", RFC_NONCE).unwrap();
        c.initial().unwrap();
        if let Ok(Some(_)) = c.step(&message) {
            // Reached client-final: feed a random server-final too.
            let final_message: Vec<u8> = (0..rng.gen_range(0..90)).map(|_| rng.r#gen()).collect();
            assert!(c.step(&final_message).is_err(), "seed {seed}");
        }
        assert!(!c.is_complete(), "seed {seed}");
    }
}

/// SCRAM-SHA-512 against values computed here straight from the primitives (RFC 5802 §3).
#[test]
fn scram_sha512_matches_an_independent_computation() {
    type HmacSha512 = Hmac<Sha512>;
    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = HmacSha512::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    let nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let server_nonce = format!("{nonce}3rfcNHYJY1ZVvWVs7j");
    let salt = b"a fixed salt, 23 bytes!";
    let iterations = 4096;
    let server_first = format!("r={server_nonce},s={},i={iterations}", BASE64.encode(salt));

    let mut salted = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(b"p\xc3\xa4ssword", salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha512::digest(&client_key);
    let auth_message = format!("n=us=3Der=2C1,r={nonce},{server_first},c=biws,r={server_nonce}");
    let client_signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_signature = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());

    let config = SaslConfig::scram_sha512("us=er,1", "pässword");
    let mut c = ScramAuthenticator::with_nonce(&config, "broker:9092", nonce).unwrap();
    assert_eq!(
        String::from_utf8(c.initial().unwrap()).unwrap(),
        format!("n,,n=us=3Der=2C1,r={nonce}")
    );
    let client_final = c.step(server_first.as_bytes()).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        format!("c=biws,r={server_nonce},p={}", BASE64.encode(&proof))
    );
    let server_final = format!("v={}", BASE64.encode(&server_signature));
    assert_eq!(c.step(server_final.as_bytes()).unwrap(), None);
    assert!(c.is_complete());
}

#[test]
fn generated_nonces_are_long_random_and_comma_free() {
    let config = SaslConfig::scram_sha256("user", "pencil");
    let mut first = ScramAuthenticator::new(&config, "broker:9092").unwrap();
    let mut second = ScramAuthenticator::new(&config, "broker:9092").unwrap();
    let a = String::from_utf8(first.initial().unwrap()).unwrap();
    let b = String::from_utf8(second.initial().unwrap()).unwrap();
    let nonce = a.strip_prefix("n,,n=user,r=").unwrap();
    assert!(nonce.len() >= 32, "{nonce}");
    assert!(nonce.bytes().all(|c| c.is_ascii_alphanumeric()), "{nonce}");
    assert_ne!(a, b);
}

#[test]
fn bad_settings_and_out_of_order_calls_are_errors() {
    let fail = |config: SaslConfig| ScramAuthenticator::new(&config, "broker:9092").unwrap_err();
    reason(fail(SaslConfig::scram_sha256("", "p")));
    reason(fail(SaslConfig::scram_sha256("a\0b", "p")));
    reason(fail(SaslConfig::scram_sha256("u", "")));
    let mut c = rfc_client();
    assert!(
        c.step(RFC_SERVER_FIRST.as_bytes()).is_err(),
        "step before initial"
    );
    let mut c = rfc_client();
    c.initial().unwrap();
    assert!(c.initial().is_err(), "initial twice");
    let config = SaslConfig::scram_sha256("u", "p");
    assert!(ScramAuthenticator::with_nonce(&config, "broker:9092", "a,b").is_err());
}

#[test]
fn debug_and_errors_hide_the_password_and_keys() {
    let config = SaslConfig::scram_sha256("alice", "hunter2-secret");
    let mut c = ScramAuthenticator::with_nonce(&config, "broker:9092", RFC_NONCE).unwrap();
    c.initial().unwrap();
    c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
    let text = format!("{c:?}");
    assert!(
        text.contains("alice") && text.contains("SentClientFinal"),
        "{text}"
    );
    assert!(!text.contains("hunter2-secret"), "{text}");
    let e = c.step(b"v=AAAA").unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2-secret"));
}
