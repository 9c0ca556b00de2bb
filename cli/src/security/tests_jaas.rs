//! Unit tests of `sasl.jaas.config`.

use std::time::Duration;

use kafkawire::client::{SaslMechanism, Secret, UnsecuredJwsProvider};

use super::SecurityArgs;
use super::jaas::{JaasLogin, LoginModule, OAUTH_MODULE, PLAIN_MODULE, SCRAM_MODULE, parse_login};
use super::tests::{PASSWORD, file, resolved, sasl};

fn login(text: &str) -> (LoginModule, String, String) {
    match parse_login(text).unwrap_or_else(|e| panic!("{e}")) {
        JaasLogin::Password {
            module,
            username,
            password,
        } => (module, username, password.expose().to_owned()),
        JaasLogin::Unsecured(_) => panic!("expected a password login"),
    }
}

fn login_err(text: &str) -> String {
    let e = parse_login(text).err().expect("expected an error");
    assert!(!e.contains(PASSWORD), "{e}");
    e
}

#[test]
fn jaas_plain_and_scram_with_both_quote_styles() {
    assert_eq!(
        login(&format!(
            "{PLAIN_MODULE} required username=\"alice\" password=\"{PASSWORD}\";"
        )),
        (LoginModule::Plain, "alice".into(), PASSWORD.into())
    );
    // Confluent Cloud's consoles quote with single quotes.
    assert_eq!(
        login(&format!(
            "{SCRAM_MODULE} required username='KEY123' password='{PASSWORD}';"
        )),
        (LoginModule::Scram, "KEY123".into(), PASSWORD.into())
    );
    // Unquoted words, any control flag, white space and comments anywhere.
    assert_eq!(
        login(&format!(
            "  {PLAIN_MODULE}\n  REQUIRED // flag\n  /* the user */ username = bob\n  password=\"x\" ;  "
        )),
        (LoginModule::Plain, "bob".into(), "x".into())
    );
    for flag in ["requisite", "sufficient", "optional"] {
        login(&format!("{PLAIN_MODULE} {flag} username=a password=b;"));
    }
}

#[test]
fn jaas_quoted_values_take_escapes() {
    let (_, user, password) = login(&format!(
        r#"{PLAIN_MODULE} required username="a\"b'c" password='d\'e"f\\g\nh\tj\101\60\q';"#
    ));
    assert_eq!(user, "a\"b'c");
    assert_eq!(password, "d'e\"f\\g\nh\tjA0q");
    // Inside a properties file the backslashes are escaped once more.
    let f = file(&format!(
        "sasl.jaas.config={PLAIN_MODULE} required \\\n    username=\"u\\\\\"q\" \\\n    password=\"p;=\\\\\\\\x\";"
    ));
    assert_eq!(f.username.as_deref(), Some("u\"q"));
    assert_eq!(f.password.as_ref().map(Secret::expose), Some("p;=\\x"));
    assert_eq!(f.login, Some(LoginModule::Plain));
}

#[test]
fn jaas_errors_never_show_values() {
    let cases = [
        (String::new(), "is empty"),
        (
            format!("{PLAIN_MODULE} required username=\"a\" password=\"{PASSWORD}\""),
            "must end with a semicolon",
        ),
        (
            format!("{PLAIN_MODULE} required username=\"a\" password=\"{PASSWORD};"),
            "is not closed",
        ),
        (
            format!("{PLAIN_MODULE} required username=\"a\" password=\"{PASSWORD}\nx\";"),
            "is not closed",
        ),
        (
            format!("{PLAIN_MODULE} required password=\"{PASSWORD}\";"),
            "needs username",
        ),
        (
            format!("{PLAIN_MODULE} required username=a;"),
            "needs password",
        ),
        (
            format!("{PLAIN_MODULE} required username=a password;"),
            "option password has no value",
        ),
        (
            format!("{PLAIN_MODULE} required username=a password=\"{PASSWORD}\" username=b;"),
            "option username is set twice",
        ),
        (
            format!("{PLAIN_MODULE} username=\"a\" password=\"{PASSWORD}\";"),
            "unknown control flag \"username\"",
        ),
        (
            format!("{PLAIN_MODULE} required username=a password=p@{PASSWORD};"),
            "unexpected character at position",
        ),
        (
            format!(
                "{PLAIN_MODULE} required username=a password=b; {PLAIN_MODULE} required username=c password=\"{PASSWORD}\";"
            ),
            "holds 2 login modules",
        ),
        (
            format!(
                "{SCRAM_MODULE} required username=a password=\"{PASSWORD}\" tokenauth=true extra=\"{PASSWORD}\";"
            ),
            "options of ScramLoginModule that kafkawire does not support: tokenauth, extra",
        ),
        (
            format!(
                "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"{PASSWORD}\";"
            ),
            "login module com.sun.security.auth.module.Krb5LoginModule is not supported",
        ),
        (
            "\"quoted.Module\" required;".to_owned(),
            "must start with a login module",
        ),
        ("/* open".to_owned(), "comment is not closed"),
    ];
    for (text, expected) in cases {
        let e = login_err(&text);
        assert!(e.contains(expected), "{text:?}: {e}");
    }
}

#[test]
fn jaas_unsecured_oauthbearer() {
    let f = file(&format!(
        "sasl.jaas.config={OAUTH_MODULE} required unsecuredLoginStringClaim_sub=\"alice\" \
         unsecuredLoginLifetimeSeconds=\"600\" unsecuredLoginListClaim_scope=\",read,,write\" \
         unsecuredLoginExtension_traceId=\"abc\";"
    ));
    assert_eq!(f.login, Some(LoginModule::OAuthBearer));
    assert_eq!(
        f.oauth,
        Some(
            UnsecuredJwsProvider::new("alice")
                .lifetime(Duration::from_secs(600))
                .scope(["read", "write"])
                .extension("traceId", "abc")
        )
    );
    // The mechanism follows from the login module.
    let config = resolved(
        &SecurityArgs::default(),
        &format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.jaas.config={OAUTH_MODULE} required unsecuredLoginStringClaim_sub=bob;"
        ),
        Some(PASSWORD),
    );
    let s = sasl(&config);
    assert_eq!(s.mechanism, SaslMechanism::OAuthBearer);
    assert!(s.token_provider.is_some());

    let e = login_err(&format!(
        "{OAUTH_MODULE} required clientId=\"id\" clientSecret=\"{PASSWORD}\";"
    ));
    assert!(
        e.contains("only with unsecured test tokens") && e.contains("not supported"),
        "{e}"
    );
    let e = login_err(&format!(
        "{OAUTH_MODULE} required unsecuredLoginStringClaim_sub=a unsecuredLoginNumberClaim_n=\"1\" clientSecret=\"{PASSWORD}\";"
    ));
    assert!(
        e.contains("unsecuredLoginNumberClaim_n, clientSecret"),
        "{e}"
    );
    let e = login_err(&format!(
        "{OAUTH_MODULE} required unsecuredLoginStringClaim_sub=a unsecuredLoginLifetimeSeconds=soon;"
    ));
    assert!(e.contains("whole number of seconds"), "{e}");
}
