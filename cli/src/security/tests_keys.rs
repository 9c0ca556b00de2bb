//! Unit tests of the keys of `--command-config`.

use std::time::Duration;

use kafkawire::client::{
    ClientCertificate, PemSource, SaslMechanism, Secret, SecurityProtocol, TlsConfig, TrustRoots,
};

use super::SecurityArgs;
use super::jaas::PLAIN_MODULE;
use super::keys::{IGNORED_KEYS, SUPPORTED_KEYS};
use super::tests::{PASSWORD, file, file_err, resolved, sasl};

/// The base64 body of a (fake) private key.
const KEY_BODY: &str = "U0VDUkVUS0VZTUFURVJJQUw=";
const CERT_LINES: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUY2VydGlmaWNhdGUtYm9keS1mb3ItdGVzdHMwCgYIKoZI\nzj0EAwIw\n-----END CERTIFICATE-----\n";

#[test]
fn duplicate_keys_are_an_error_naming_both_lines() {
    let e = file_err(&format!(
        "sasl.password={PASSWORD}\n# x\nsasl.password={PASSWORD}"
    ));
    assert_eq!(e, "sasl.password is set twice (lines 1 and 3)");
}

// --- keys --------------------------------------------------------------------------

#[test]
fn client_keys() {
    let f = file(
        "bootstrap.servers=b1:9092,b2:9092\nclient.id=my-app\nrequest.timeout.ms=1500\n\
         socket.connection.setup.timeout.ms=2000\nsocket.connection.setup.timeout.max.ms=3000\n\
         reconnect.backoff.ms=10\nreconnect.backoff.max.ms=20\nmetadata.max.age.ms=60000",
    );
    assert_eq!(f.bootstrap.as_deref(), Some("b1:9092,b2:9092"));
    assert_eq!(f.client_id.as_deref(), Some("my-app"));
    let ms = Duration::from_millis;
    assert_eq!(f.request_timeout, Some(ms(1500)));
    assert_eq!(f.connection_setup_timeout, Some(ms(2000)));
    assert_eq!(f.connection_setup_timeout_max, Some(ms(3000)));
    assert_eq!(f.reconnect_backoff, Some(ms(10)));
    assert_eq!(f.reconnect_backoff_max, Some(ms(20)));
    assert_eq!(f.metadata_max_age, Some(ms(60000)));
    let e = file_err("request.timeout.ms=10s");
    assert_eq!(
        e,
        "request.timeout.ms=10s: expected a number of milliseconds"
    );
}

#[test]
fn security_protocol_and_mechanism_keys() {
    let f = file("security.protocol=sasl_ssl\nsasl.mechanism=scram-sha-512");
    assert_eq!(f.protocol, Some(SecurityProtocol::SaslSsl));
    assert_eq!(f.mechanism, Some(SaslMechanism::ScramSha512));
    // librdkafka's spelling.
    let f = file("sasl.mechanisms=PLAIN");
    assert_eq!(f.mechanism, Some(SaslMechanism::Plain));
    let f = file("sasl.mechanisms=PLAIN\nsasl.mechanism=plain");
    assert_eq!(f.mechanism, Some(SaslMechanism::Plain));
    let e = file_err("sasl.mechanisms=PLAIN\nsasl.mechanism=SCRAM-SHA-256");
    assert!(e.contains("different mechanisms"), "{e}");
    let e = file_err("security.protocol=TLS");
    assert!(
        e.starts_with("security.protocol: unknown security protocol \"TLS\""),
        "{e}"
    );
    let e = file_err("sasl.mechanism=GSSAPI");
    assert!(
        e.starts_with("sasl.mechanism: unknown SASL mechanism"),
        "{e}"
    );
}

#[test]
fn librdkafka_username_and_password_keys() {
    let f = file(&format!("sasl.username=alice\nsasl.password={PASSWORD}"));
    assert_eq!(f.username.as_deref(), Some("alice"));
    assert_eq!(f.password.as_ref().map(Secret::expose), Some(PASSWORD));
    assert_eq!(f.sasl_keys, ["sasl.password", "sasl.username"]);
    let e = file_err(&format!(
        "sasl.username=alice\nsasl.password={PASSWORD}\nsasl.jaas.config={PLAIN_MODULE} required username=\"a\" password=\"{PASSWORD}\";"
    ));
    assert!(e.contains("keep one"), "{e}");
}

// --- TLS keys ------------------------------------------------------------------------

#[test]
fn trust_keys() {
    let f = file("ssl.ca.location=/etc/kafka/ca.pem");
    assert_eq!(
        f.trust,
        Some(TrustRoots::PemFile("/etc/kafka/ca.pem".into()))
    );
    assert_eq!(f.tls_keys, ["ssl.ca.location"]);
    let f = file("ssl.ca.location=probe");
    assert_eq!(f.trust, Some(TrustRoots::System));
    let f = file("ssl.truststore.location=/ca.pem\nssl.truststore.type=pem");
    assert_eq!(f.trust, Some(TrustRoots::PemFile("/ca.pem".into())));
    // Inline PEM, its lines joined with spaces by a continuation, is rewrapped.
    let f = file(
        "ssl.truststore.type=PEM\nssl.truststore.certificates=-----BEGIN CERTIFICATE----- \\\n  MIIBszCCAVmgAwIBAgIUY2VydGlmaWNhdGUtYm9keS1mb3ItdGVzdHMwCgYIKoZI \\\n  zj0EAwIw \\\n  -----END CERTIFICATE-----",
    );
    assert_eq!(f.trust, Some(TrustRoots::Pem(CERT_LINES.into())));
    let f = file(
        "ssl.ca.pem=-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIUY2VydGlmaWNhdGUtYm9keS1mb3ItdGVzdHMwCgYIKoZIzj0EAwIw\\n-----END CERTIFICATE-----\\n",
    );
    assert_eq!(f.trust, Some(TrustRoots::Pem(CERT_LINES.into())));
    let e = file_err("ssl.ca.pem=not pem");
    assert!(e.contains("no PEM section"), "{e}");
    let e =
        file_err("ssl.ca.location=/a.pem\nssl.truststore.location=/b.pem\nssl.truststore.type=PEM");
    assert_eq!(
        e,
        "ssl.ca.location, ssl.truststore.location are all set; set only one source of trusted CA certificates"
    );
    // An empty value is no value.
    let f = file("ssl.ca.location=\nssl.key.password=");
    assert_eq!(f.trust, None);
}

#[test]
fn only_pem_truststores() {
    for text in [
        "ssl.truststore.location=/t.jks\nssl.truststore.type=JKS",
        "ssl.truststore.location=/t.p12\nssl.truststore.type=PKCS12",
    ] {
        let e = file_err(text);
        assert!(
            e.contains("JKS/PKCS12 truststores are not supported; export the CA as PEM"),
            "{e}"
        );
    }
    // Without a type it is a JKS truststore, as in the Java client.
    let e = file_err("ssl.truststore.location=/t.jks\nssl.truststore.password=changeit");
    assert!(
        e.starts_with("ssl.truststore.location is set without ssl.truststore.type=PEM")
            && e.contains("JKS/PKCS12 truststores are not supported; export the CA as PEM"),
        "{e}"
    );
    let e = file_err(
        "ssl.truststore.location=/t.pem\nssl.truststore.type=PEM\nssl.truststore.password=x",
    );
    assert!(e.contains("have no password"), "{e}");
    // A type alone configures nothing.
    assert_eq!(file("ssl.truststore.type=JKS").trust, None);
}

#[test]
fn client_certificate_keys() {
    let f = file("ssl.certificate.location=/c.pem\nssl.key.location=/k.pem");
    assert_eq!(
        f.client_certificate,
        Some(ClientCertificate {
            chain: PemSource::File("/c.pem".into()),
            key: PemSource::File("/k.pem".into()),
        })
    );
    assert_eq!(f.tls_keys, ["ssl.certificate.location", "ssl.key.location"]);
    // A PEM keystore holds both.
    let f = file("ssl.keystore.location=/ks.pem\nssl.keystore.type=PEM");
    assert_eq!(
        f.client_certificate,
        Some(ClientCertificate {
            chain: PemSource::File("/ks.pem".into()),
            key: PemSource::File("/ks.pem".into()),
        })
    );
    assert_eq!(f.tls_keys, ["ssl.keystore.location"]);
    let key_pem = format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n");
    for (cert_key, key_key, store) in [
        ("ssl.certificate.pem", "ssl.key.pem", ""),
        (
            "ssl.keystore.certificate.chain",
            "ssl.keystore.key",
            "ssl.keystore.type=PEM\n",
        ),
    ] {
        let text = format!(
            "{store}{cert_key}={}\n{key_key}={}",
            CERT_LINES.replace('\n', "\\n"),
            key_pem.replace('\n', "\\n")
        );
        let f = file(&text);
        let c = f.client_certificate.as_ref().unwrap();
        assert_eq!(c.chain, PemSource::Inline(Secret::new(CERT_LINES)));
        assert_eq!(c.key, PemSource::Inline(Secret::new(key_pem.clone())));
        assert!(!format!("{f:?}").contains(KEY_BODY), "{f:?}");
    }
    let e = file_err("ssl.certificate.location=/c.pem");
    assert_eq!(
        e,
        "ssl.certificate.location is set without a private key: add ssl.key.location"
    );
    let e = file_err("ssl.key.location=/k.pem");
    assert_eq!(
        e,
        "ssl.key.location is set without a certificate: add ssl.certificate.location"
    );
    let e = file_err(
        "ssl.certificate.location=/c.pem\nssl.key.location=/k.pem\nssl.keystore.location=/ks.pem\nssl.keystore.type=PEM",
    );
    assert!(e.contains("set only one certificate chain"), "{e}");
    let e = file_err("ssl.keystore.location=/ks.jks\nssl.keystore.type=JKS");
    assert!(e.contains("JKS/PKCS12 keystores are not supported"), "{e}");
    let e = file_err("ssl.keystore.location=/ks.jks");
    assert!(
        e.contains("without ssl.keystore.type=PEM") && e.contains("JKS/PKCS12 keystores"),
        "{e}"
    );
}

#[test]
fn encrypted_keys_are_refused() {
    let e = file_err(&format!(
        "ssl.certificate.location=/c.pem\nssl.key.location=/k.pem\nssl.key.password={PASSWORD}"
    ));
    assert!(
        e.starts_with("ssl.key.password is set: encrypted private keys are not supported"),
        "{e}"
    );
    let e = file_err(&format!(
        "ssl.keystore.location=/k.pem\nssl.keystore.type=PEM\nssl.keystore.password={PASSWORD}"
    ));
    assert!(
        e.contains("password-protected keystores are not supported"),
        "{e}"
    );
    let e = file_err(&format!(
        "ssl.certificate.pem={}\nssl.key.pem=-----BEGIN ENCRYPTED PRIVATE KEY-----\\n{PASSWORD}\\n-----END ENCRYPTED PRIVATE KEY-----",
        CERT_LINES.replace('\n', "\\n")
    ));
    assert!(
        e.contains("encrypted private keys are not supported"),
        "{e}"
    );
    let e = file_err(&format!(
        "ssl.certificate.pem={}\nssl.key.pem=-----BEGIN RSA PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\n{PASSWORD}\\n-----END RSA PRIVATE KEY-----",
        CERT_LINES.replace('\n', "\\n")
    ));
    assert!(
        e.contains("encrypted private keys are not supported"),
        "{e}"
    );
}

#[test]
fn endpoint_identification() {
    let key = "ssl.endpoint.identification.algorithm";
    assert_eq!(file(&format!("{key}=")).verify_server_name, Some(false));
    assert_eq!(file(&format!("{key}=none")).verify_server_name, Some(false));
    assert_eq!(file(&format!("{key}=HTTPS")).verify_server_name, Some(true));
    assert_eq!(file("").verify_server_name, None);
    let e = file_err(&format!("{key}=dns"));
    assert!(e.contains("expected https"), "{e}");
    let tls = |text: &str, flag: bool| {
        let args = SecurityArgs {
            ssl_no_verify_hostname: flag,
            ..SecurityArgs::default()
        };
        resolved(&args, &format!("security.protocol=SSL\n{text}"), None)
            .tls
            .verify_server_name
    };
    assert!(tls("", false));
    assert!(tls(&format!("{key}=https"), false));
    assert!(!tls(&format!("{key}="), false));
    assert!(!tls(&format!("{key}=https"), true), "the flag overrides");
}

// --- unknown and ignored keys --------------------------------------------------------

#[test]
fn unknown_keys_are_reported_together() {
    let e = file_err(&format!(
        "ssl.ca.locaton=/ca.pem\nsasl.password={PASSWORD}\nsasl.oauthbearer.token.endpoint.url=https://idp\nacks=all\nfoo=bar\nssl.enabled.protocols=TLSv1.3"
    ));
    assert!(
        e.starts_with(
            "unknown or unsupported keys: foo, sasl.oauthbearer.token.endpoint.url, ssl.ca.locaton, ssl.enabled.protocols (kafkawire reads bootstrap.servers, "
        ),
        "{e}"
    );
    assert!(!e.contains("acks"), "{e}");
    let e = file_err("x=1");
    assert!(e.starts_with("unknown or unsupported key: x ("), "{e}");
}

#[test]
fn keys_of_other_clients_are_ignored_and_listed() {
    let f = file("acks=all\nclient.dns.lookup=use_all_dns_ips\nsession.timeout.ms=45000");
    assert_eq!(
        f.ignored,
        ["acks", "client.dns.lookup", "session.timeout.ms"]
    );
    for key in SUPPORTED_KEYS {
        assert!(!IGNORED_KEYS.contains(key), "{key}");
    }
}

#[test]
fn confluent_cloud_java_file() {
    let text = format!(
        "# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username='ABCDEFGHIJKLMNOP' password='{PASSWORD}';
sasl.mechanism=PLAIN
# Required for correctness in Apache Kafka clients prior to 2.6
client.dns.lookup=use_all_dns_ips

# Best practice for higher availability in Apache Kafka clients prior to 3.0
session.timeout.ms=45000

# Best practice for Kafka producer to prevent data loss
acks=all

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url=https://psrc-xyz.us-east-2.aws.confluent.cloud
basic.auth.credentials.source=USER_INFO
basic.auth.user.info={{{{ SR_API_KEY }}}}:{{{{ SR_API_SECRET }}}}
"
    );
    let f = file(&text);
    assert_eq!(
        f.bootstrap.as_deref(),
        Some("pkc-abc12.us-east-1.aws.confluent.cloud:9092")
    );
    assert_eq!(
        f.ignored,
        [
            "acks",
            "basic.auth.credentials.source",
            "basic.auth.user.info",
            "client.dns.lookup",
            "schema.registry.url",
            "session.timeout.ms"
        ]
    );
    let config = resolved(&SecurityArgs::default(), &text, None);
    assert_eq!(config.protocol, SecurityProtocol::SaslSsl);
    assert_eq!(config.tls, TlsConfig::default());
    let s = sasl(&config);
    assert_eq!(s.mechanism, SaslMechanism::Plain);
    assert_eq!(s.username, "ABCDEFGHIJKLMNOP");
    assert_eq!(s.password.expose(), PASSWORD);
    assert!(!format!("{config:?} {f:?}").contains(PASSWORD));
}

#[test]
fn confluent_cloud_librdkafka_file() {
    let text = format!(
        "bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanisms=PLAIN\nsasl.username=ABCDEFGHIJKLMNOP\nsasl.password={PASSWORD}\nsession.timeout.ms=45000\n"
    );
    let config = resolved(&SecurityArgs::default(), &text, None);
    let s = sasl(&config);
    assert_eq!(
        (s.mechanism, s.username.as_str(), s.password.expose()),
        (SaslMechanism::Plain, "ABCDEFGHIJKLMNOP", PASSWORD)
    );
}

#[test]
fn aiven_style_mutual_tls_file() {
    let config = resolved(
        &SecurityArgs::default(),
        "security.protocol=SSL\nssl.ca.location=ca.pem\nssl.certificate.location=service.cert\nssl.key.location=service.key\nssl.endpoint.identification.algorithm=https",
        None,
    );
    assert_eq!(
        config.tls,
        TlsConfig {
            trust: TrustRoots::PemFile("ca.pem".into()),
            client_certificate: Some(ClientCertificate {
                chain: PemSource::File("service.cert".into()),
                key: PemSource::File("service.key".into()),
            }),
            verify_server_name: true,
            crypto_provider: None,
        }
    );
    assert!(config.sasl.is_none());
}
