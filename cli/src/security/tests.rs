//! Unit tests of the security settings: the helpers the other test modules share, and flags,
//! environment and file together.

use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;

use super::jaas::{PLAIN_MODULE, SCRAM_MODULE};
use super::keys::parse_command_config;
use super::*;

pub(super) const PASSWORD: &str = "s3cr3t-Pa55word";

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kafkawire-cli-security-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn file(text: &str) -> FileSettings {
    parse_command_config(text).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn file_err(text: &str) -> String {
    let e = parse_command_config(text).expect_err("expected an error");
    assert!(!e.contains(PASSWORD), "the error shows the password: {e}");
    e
}

pub(super) fn resolved(args: &SecurityArgs, text: &str, env: Option<&str>) -> SecurityConfig {
    let f = file(text);
    resolve(args, Some(&f), env.map(Secret::from)).unwrap_or_else(|e| panic!("{e}"))
}

fn resolve_err(args: &SecurityArgs, text: &str, env: Option<&str>) -> String {
    let f = file(text);
    let e = resolve(args, Some(&f), env.map(Secret::from)).expect_err("expected an error");
    let text = e.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{e:?}").contains(PASSWORD), "{e:?}");
    text
}

pub(super) fn sasl(config: &SecurityConfig) -> &SaslConfig {
    config.sasl.as_ref().expect("SASL settings")
}

// --- flags, environment and file together --------------------------------------------

#[test]
fn flags_override_the_file() {
    let dir = TempDir::new();
    let password_file = dir.file("pw", "from-flag-file\n");
    let text = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=file-user\nsasl.password={PASSWORD}\n\
         ssl.ca.location=/file-ca.pem\nssl.certificate.location=/file-cert.pem\nssl.key.location=/file-key.pem"
    );
    let args = SecurityArgs {
        security_protocol: None,
        sasl_mechanism: Some(SaslMechanism::ScramSha256),
        sasl_username: Some("flag-user".into()),
        sasl_password_file: Some(password_file),
        ssl_ca: Some("/flag-ca.pem".into()),
        ssl_cert: Some("/flag-cert.pem".into()),
        ssl_key: Some("/flag-key.pem".into()),
        ssl_no_verify_hostname: true,
        command_config: None,
    };
    let config = resolved(&args, &text, Some("from-env"));
    let s = sasl(&config);
    assert_eq!(s.mechanism, SaslMechanism::ScramSha256);
    assert_eq!(s.username, "flag-user");
    assert_eq!(s.password.expose(), "from-flag-file");
    assert_eq!(
        config.tls,
        TlsConfig {
            trust: TrustRoots::PemFile("/flag-ca.pem".into()),
            client_certificate: Some(ClientCertificate {
                chain: PemSource::File("/flag-cert.pem".into()),
                key: PemSource::File("/flag-key.pem".into()),
            }),
            verify_server_name: false,
            crypto_provider: None,
        }
    );
    // The protocol flag overrides the file's.
    let args = SecurityArgs {
        security_protocol: Some(SecurityProtocol::Ssl),
        ..SecurityArgs::default()
    };
    let config = resolved(
        &args,
        "security.protocol=PLAINTEXT\nssl.ca.location=/ca.pem",
        None,
    );
    assert_eq!(config.protocol, SecurityProtocol::Ssl);
    // Without the flags, the file's settings hold.
    let config = resolved(&SecurityArgs::default(), &text, None);
    assert_eq!(config.protocol, SecurityProtocol::SaslSsl);
    assert_eq!(config.tls.trust, TrustRoots::PemFile("/file-ca.pem".into()));
    assert!(config.tls.verify_server_name);
    let s = sasl(&config);
    assert_eq!(
        (s.mechanism, s.username.as_str(), s.password.expose()),
        (SaslMechanism::Plain, "file-user", PASSWORD)
    );
}

#[test]
fn password_sources_in_order() {
    let dir = TempDir::new();
    let base = "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\n";
    let with_file_password = format!("{base}sasl.password=from-file");
    let password = |args: &SecurityArgs, text: &str, env: Option<&str>| {
        sasl(&resolved(args, text, env))
            .password
            .expose()
            .to_owned()
    };
    let none = SecurityArgs::default();
    assert_eq!(password(&none, &with_file_password, None), "from-file");
    assert_eq!(
        password(&none, &with_file_password, Some("from-env")),
        "from-env"
    );
    assert_eq!(password(&none, base, Some("from-env")), "from-env");
    // The first line of the password file, without its line ending.
    for contents in ["p4ss\n", "p4ss\r\n", "p4ss", "p4ss\nsecond line\n"] {
        let args = SecurityArgs {
            sasl_password_file: Some(dir.file("pw", contents)),
            ..SecurityArgs::default()
        };
        assert_eq!(
            password(&args, &with_file_password, Some("from-env")),
            "p4ss"
        );
    }
    // Spaces are part of a password.
    let args = SecurityArgs {
        sasl_password_file: Some(dir.file("pw", " spaced pw \n")),
        ..SecurityArgs::default()
    };
    assert_eq!(password(&args, base, None), " spaced pw ");

    let args = SecurityArgs {
        sasl_password_file: Some(dir.file("pw", "\nsecond")),
        ..SecurityArgs::default()
    };
    let e = resolve_err(&args, base, None);
    assert!(e.contains("the first line is empty"), "{e}");
    let missing = dir.0.join("missing");
    let args = SecurityArgs {
        sasl_password_file: Some(missing.clone()),
        ..SecurityArgs::default()
    };
    let e = resolve_err(&args, base, None);
    assert!(
        e.contains(&format!(
            "--sasl-password-file {}: cannot read it",
            missing.display()
        )),
        "{e}"
    );
    let e = resolve_err(&none, base, None);
    assert!(
        e.contains("SASL SCRAM-SHA-512 needs a password: set KAFKAWIRE_SASL_PASSWORD, use --sasl-password-file FILE")
            && e.contains("there is no password flag"),
        "{e}"
    );
}

#[test]
fn the_environment_password() {
    assert!(password_from_env_value(None).unwrap().is_none());
    assert!(password_from_env_value(Some("".into())).unwrap().is_none());
    let p = password_from_env_value(Some(PASSWORD.into()))
        .unwrap()
        .unwrap();
    assert_eq!(p.expose(), PASSWORD);
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let e = password_from_env_value(Some(OsString::from_vec(vec![0xff]))).unwrap_err();
        assert!(
            e.to_string()
                .contains("KAFKAWIRE_SASL_PASSWORD is not valid UTF-8")
        );
    }
    // An exported password does not force SASL on a cluster without it.
    let config = resolved(&SecurityArgs::default(), "", Some(PASSWORD));
    assert_eq!(config.protocol, SecurityProtocol::Plaintext);
    assert!(config.sasl.is_none());
}

#[test]
fn settings_that_do_not_fit_the_protocol() {
    let args = SecurityArgs {
        ssl_ca: Some("/ca.pem".into()),
        ssl_no_verify_hostname: true,
        ..SecurityArgs::default()
    };
    let e = resolve_err(
        &args,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\nssl.ca.location=/x.pem",
        None,
    );
    assert_eq!(
        e,
        "invalid configuration: --ssl-ca, --ssl-no-verify-hostname, ssl.ca.location (--command-config) set, but security protocol SASL_PLAINTEXT does not use TLS (use --security-protocol SSL or SASL_SSL)"
    );
    let args = SecurityArgs {
        sasl_username: Some("u".into()),
        ..SecurityArgs::default()
    };
    let e = resolve_err(
        &args,
        &format!("security.protocol=SSL\nsasl.password={PASSWORD}"),
        None,
    );
    assert_eq!(
        e,
        "invalid configuration: --sasl-username, sasl.password (--command-config) set, but security protocol SSL does not use SASL (use --security-protocol SASL_SSL or SASL_PLAINTEXT)"
    );
    let e = resolve_err(&SecurityArgs::default(), "sasl.mechanism=PLAIN", None);
    assert!(
        e.contains("security protocol PLAINTEXT does not use SASL"),
        "{e}"
    );
    // The endpoint identification alone is harmless with any protocol.
    resolved(
        &SecurityArgs::default(),
        "ssl.endpoint.identification.algorithm=https",
        None,
    );
}

#[test]
fn sasl_settings_that_are_missing_or_do_not_fit() {
    let none = SecurityArgs::default();
    let e = resolve_err(&none, "security.protocol=SASL_SSL", Some(PASSWORD));
    assert!(
        e.contains(
            "security protocol SASL_SSL needs a SASL mechanism: --sasl-mechanism or sasl.mechanism"
        ),
        "{e}"
    );
    let scram = format!(
        "security.protocol=SASL_SSL\nsasl.jaas.config={SCRAM_MODULE} required username=u password=\"{PASSWORD}\";"
    );
    let e = resolve_err(&none, &scram, None);
    assert!(
        e.contains("uses ScramLoginModule: set sasl.mechanism"),
        "{e}"
    );
    let args = SecurityArgs {
        sasl_mechanism: Some(SaslMechanism::ScramSha512),
        ..SecurityArgs::default()
    };
    let config = resolved(&args, &scram, None);
    assert_eq!(sasl(&config).mechanism, SaslMechanism::ScramSha512);

    let e = resolve_err(
        &none,
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN",
        Some(PASSWORD),
    );
    assert!(
        e.contains("SASL PLAIN needs a user name: --sasl-username"),
        "{e}"
    );

    let e = resolve_err(
        &none,
        "security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER",
        None,
    );
    assert!(
        e.contains("SASL OAUTHBEARER needs a token source")
            && e.contains("unsecuredLoginStringClaim_sub"),
        "{e}"
    );
    let oauth = format!(
        "security.protocol=SASL_SSL\nsasl.jaas.config={OAUTH_MODULE} required unsecuredLoginStringClaim_sub=alice;"
    );
    let args = SecurityArgs {
        sasl_mechanism: Some(SaslMechanism::Plain),
        sasl_username: Some("u".into()),
        ..SecurityArgs::default()
    };
    let e = resolve_err(&args, &oauth, Some(PASSWORD));
    assert!(
        e.contains("uses OAuthBearerLoginModule, which does not fit SASL mechanism PLAIN"),
        "{e}"
    );
    let args = SecurityArgs {
        sasl_username: Some("u".into()),
        ..SecurityArgs::default()
    };
    let e = resolve_err(&args, &oauth, None);
    assert!(
        e.contains("SASL OAUTHBEARER takes no user name or password, but --sasl-username is set"),
        "{e}"
    );
    let args = SecurityArgs {
        sasl_mechanism: Some(SaslMechanism::OAuthBearer),
        ..SecurityArgs::default()
    };
    let e = resolve_err(
        &args,
        &format!("security.protocol=SASL_SSL\nsasl.username=u\nsasl.password={PASSWORD}"),
        None,
    );
    assert!(
        e.contains("a user name or password in --command-config"),
        "{e}"
    );
    // PlainLoginModule credentials serve SCRAM too, as in the Java client.
    let args = SecurityArgs {
        sasl_mechanism: Some(SaslMechanism::ScramSha256),
        ..SecurityArgs::default()
    };
    let config = resolved(
        &args,
        &format!(
            "security.protocol=SASL_SSL\nsasl.jaas.config={PLAIN_MODULE} required username=u password=\"{PASSWORD}\";"
        ),
        None,
    );
    assert_eq!(sasl(&config).mechanism, SaslMechanism::ScramSha256);
}

#[test]
fn debug_output_shows_no_secret() {
    let text = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=alice\nsasl.password={PASSWORD}\nssl.ca.location=/ca.pem"
    );
    let f = file(&text);
    let config = resolved(&SecurityArgs::default(), &text, None);
    for shown in [
        format!("{f:?}"),
        format!("{config:?}"),
        format!("{:#?}", config),
    ] {
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }
}

#[test]
fn load_command_config_names_the_file() {
    let dir = TempDir::new();
    let path = dir.file("client.properties", "foo.bar=1\n");
    let e = load_command_config(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "invalid configuration: --command-config {}: unknown or unsupported key: foo.bar",
            path.display()
        )),
        "{e}"
    );
    let missing = dir.0.join("missing.properties");
    let e = load_command_config(&missing).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "--command-config {}: cannot read it",
            missing.display()
        )),
        "{e}"
    );
}

#[derive(Parser, Debug)]
struct Flags {
    #[command(flatten)]
    security: SecurityArgs,
}

#[test]
fn flags_parse() {
    let f = Flags::try_parse_from([
        "t",
        "--security-protocol",
        "sasl_ssl",
        "--sasl-mechanism",
        "SCRAM-SHA-256",
        "--sasl-username",
        "alice",
        "--sasl-password-file",
        "/pw",
        "--ssl-ca",
        "/ca.pem",
        "--ssl-cert",
        "/c.pem",
        "--ssl-key",
        "/k.pem",
        "--ssl-no-verify-hostname",
        "--command-config",
        "/client.properties",
    ])
    .unwrap();
    let s = f.security;
    assert_eq!(s.security_protocol, Some(SecurityProtocol::SaslSsl));
    assert_eq!(s.sasl_mechanism, Some(SaslMechanism::ScramSha256));
    assert_eq!(s.sasl_username.as_deref(), Some("alice"));
    assert_eq!(s.sasl_password_file, Some("/pw".into()));
    assert_eq!(s.ssl_ca, Some("/ca.pem".into()));
    assert_eq!(s.ssl_cert, Some("/c.pem".into()));
    assert_eq!(s.ssl_key, Some("/k.pem".into()));
    assert!(s.ssl_no_verify_hostname);
    assert_eq!(s.command_config, Some("/client.properties".into()));

    // No password flag, on purpose.
    let e = Flags::try_parse_from(["t", "--sasl-password", PASSWORD]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    // A certificate needs its key and the other way round.
    let e = Flags::try_parse_from(["t", "--ssl-cert", "/c.pem"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    let e = Flags::try_parse_from(["t", "--ssl-key", "/k.pem"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    let e = Flags::try_parse_from(["t", "--security-protocol", "TLS"]).unwrap_err();
    assert!(e.to_string().contains("unknown security protocol"), "{e}");
    let e = Flags::try_parse_from(["t", "--sasl-mechanism", "GSSAPI"]).unwrap_err();
    assert!(e.to_string().contains("unknown SASL mechanism"), "{e}");
}
