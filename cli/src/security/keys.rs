//! `--command-config`: the keys kafkawire reads, ignores or refuses, and what they say
//! ([`FileSettings`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kafkawire::Error;
use kafkawire::client::{
    ClientCertificate, PemSource, SaslMechanism, Secret, SecurityProtocol, TrustRoots,
    UnsecuredJwsProvider,
};

use super::config_message;
use super::jaas::{JaasLogin, LoginModule, parse_login};
use super::properties::{Property, parse_properties};

/// The keys of `--command-config` that kafkawire reads.
pub(crate) const SUPPORTED_KEYS: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "request.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "metadata.max.age.ms",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
];

/// Keys of the Java client, librdkafka and the files cloud consoles hand out that have no
/// bearing on what this tool does (producer, consumer and Schema Registry settings): accepted,
/// and reported in a note.
pub(crate) const IGNORED_KEYS: &[&str] = &[
    "acks",
    "api.version.request",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "basic.auth.credentials.source",
    "basic.auth.user.info",
    "batch.size",
    "broker.version.fallback",
    "client.dns.lookup",
    "compression.type",
    "connections.max.idle.ms",
    "default.api.timeout.ms",
    "delivery.timeout.ms",
    "enable.auto.commit",
    "enable.idempotence",
    "fetch.max.bytes",
    "fetch.max.wait.ms",
    "fetch.min.bytes",
    "group.id",
    "heartbeat.interval.ms",
    "isolation.level",
    "key.deserializer",
    "key.serializer",
    "linger.ms",
    "max.in.flight.requests.per.connection",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "max.poll.records",
    "metadata.max.idle.ms",
    "partition.assignment.strategy",
    "receive.buffer.bytes",
    "retries",
    "retry.backoff.ms",
    "schema.registry.url",
    "send.buffer.bytes",
    "session.timeout.ms",
    "socket.keepalive.enable",
    "value.deserializer",
    "value.serializer",
];

/// What a `--command-config` file says. `Debug` shows no secret (passwords and inline keys are
/// [`Secret`]s).
#[derive(Debug, Default)]
pub(crate) struct FileSettings {
    /// `bootstrap.servers`.
    pub(crate) bootstrap: Option<String>,
    /// `client.id`.
    pub(crate) client_id: Option<String>,
    /// `request.timeout.ms`.
    pub(crate) request_timeout: Option<Duration>,
    /// `socket.connection.setup.timeout.ms`.
    pub(crate) connection_setup_timeout: Option<Duration>,
    /// `socket.connection.setup.timeout.max.ms`.
    pub(crate) connection_setup_timeout_max: Option<Duration>,
    /// `reconnect.backoff.ms`.
    pub(crate) reconnect_backoff: Option<Duration>,
    /// `reconnect.backoff.max.ms`.
    pub(crate) reconnect_backoff_max: Option<Duration>,
    /// `metadata.max.age.ms`.
    pub(crate) metadata_max_age: Option<Duration>,
    /// `security.protocol`.
    pub(crate) protocol: Option<SecurityProtocol>,
    /// `sasl.mechanism` (or librdkafka's `sasl.mechanisms`).
    pub(crate) mechanism: Option<SaslMechanism>,
    /// `sasl.username`, or the JAAS `username`.
    pub(crate) username: Option<String>,
    /// `sasl.password`, or the JAAS `password`.
    pub(crate) password: Option<Secret>,
    /// The login module of `sasl.jaas.config`.
    pub(crate) login: Option<LoginModule>,
    /// Unsecured OAUTHBEARER tokens from `sasl.jaas.config`.
    pub(crate) oauth: Option<UnsecuredJwsProvider>,
    /// `ssl.ca.location`, `ssl.ca.pem`, `ssl.truststore.*`.
    pub(crate) trust: Option<TrustRoots>,
    /// `ssl.certificate.*` + `ssl.key.*`, or `ssl.keystore.*`.
    pub(crate) client_certificate: Option<ClientCertificate>,
    /// `ssl.endpoint.identification.algorithm`: `https` (true) or empty / `none` (false).
    pub(crate) verify_server_name: Option<bool>,
    /// The keys present that configure TLS material (trust roots, client certificate).
    pub(crate) tls_keys: Vec<String>,
    /// The `sasl.*` keys present.
    pub(crate) sasl_keys: Vec<String>,
    /// Keys of [`IGNORED_KEYS`] present.
    pub(crate) ignored: Vec<String>,
}

/// Reads and parses a `--command-config` file.
///
/// # Errors
/// [`Error::Config`] starting with `--command-config PATH:`.
pub(crate) fn load_command_config(path: &Path) -> Result<FileSettings, Error> {
    let prefix = format!("--command-config {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{prefix}: cannot read it: {e}")))?;
    parse_command_config(&text).map_err(|m| Error::Config(format!("{prefix}: {m}")))
}

fn parse_ms(key: &str, value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{key}={value}: expected a number of milliseconds"))
}

/// Parses the text of a `--command-config` file.
///
/// # Errors
/// A message naming keys and lines, never a value that may be secret.
pub(crate) fn parse_command_config(text: &str) -> Result<FileSettings, String> {
    let properties = parse_properties(text)?;
    let mut map: BTreeMap<&str, &Property> = BTreeMap::new();
    for p in &properties {
        if let Some(earlier) = map.insert(p.key.as_str(), p) {
            return Err(format!(
                "{} is set twice (lines {} and {})",
                p.key, earlier.line, p.line
            ));
        }
    }
    let mut settings = FileSettings::default();
    let mut unknown = Vec::new();
    for key in map.keys() {
        if IGNORED_KEYS.contains(key) {
            settings.ignored.push((*key).to_owned());
        } else if !SUPPORTED_KEYS.contains(key) {
            unknown.push(*key);
        } else if key.starts_with("sasl.") {
            settings.sasl_keys.push((*key).to_owned());
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown or unsupported {}: {} (kafkawire reads {})",
            if unknown.len() == 1 { "key" } else { "keys" },
            unknown.join(", "),
            SUPPORTED_KEYS.join(", ")
        ));
    }
    // An empty value is no value, except for the endpoint identification (where it means off).
    let val = |key: &str| -> Option<&str> {
        map.get(key)
            .map(|p| p.value.as_str())
            .filter(|v| !v.is_empty())
    };

    settings.bootstrap = val("bootstrap.servers").map(str::to_owned);
    settings.client_id = val("client.id").map(str::to_owned);
    let ms = |key: &str| val(key).map(|v| parse_ms(key, v)).transpose();
    settings.request_timeout = ms("request.timeout.ms")?;
    settings.connection_setup_timeout = ms("socket.connection.setup.timeout.ms")?;
    settings.connection_setup_timeout_max = ms("socket.connection.setup.timeout.max.ms")?;
    settings.reconnect_backoff = ms("reconnect.backoff.ms")?;
    settings.reconnect_backoff_max = ms("reconnect.backoff.max.ms")?;
    settings.metadata_max_age = ms("metadata.max.age.ms")?;

    settings.protocol = val("security.protocol")
        .map(|v| v.parse::<SecurityProtocol>().map_err(config_message))
        .transpose()
        .map_err(|m| format!("security.protocol: {m}"))?;
    let mechanism = match (val("sasl.mechanism"), val("sasl.mechanisms")) {
        (Some(a), Some(b)) if !a.trim().eq_ignore_ascii_case(b.trim()) => {
            return Err(
                "sasl.mechanism and sasl.mechanisms name different mechanisms; keep one".into(),
            );
        }
        (Some(m), _) | (None, Some(m)) => Some(m),
        (None, None) => None,
    };
    settings.mechanism = mechanism
        .map(|v| v.parse::<SaslMechanism>().map_err(config_message))
        .transpose()
        .map_err(|m| format!("sasl.mechanism: {m}"))?;
    settings.username = val("sasl.username").map(str::to_owned);
    settings.password = val("sasl.password").map(Secret::from);
    if let Some(jaas) = val("sasl.jaas.config") {
        if settings.username.is_some() || settings.password.is_some() {
            return Err(
                "sasl.jaas.config and sasl.username/sasl.password are both set; keep one (sasl.jaas.config is the Java client's way, sasl.username and sasl.password librdkafka's)".into(),
            );
        }
        match parse_login(jaas)? {
            JaasLogin::Password {
                module,
                username,
                password,
            } => {
                settings.login = Some(module);
                settings.username = Some(username);
                settings.password = Some(password);
            }
            JaasLogin::Unsecured(provider) => {
                settings.login = Some(LoginModule::OAuthBearer);
                settings.oauth = Some(provider);
            }
        }
    }

    parse_tls(&map, &mut settings)?;
    Ok(settings)
}

/// Checks `ssl.truststore.type` / `ssl.keystore.type` when `used_by` (a key needing the store)
/// is set: only PEM is supported.
fn require_pem_store(store: &str, store_type: Option<&str>, used_by: &str) -> Result<(), String> {
    let (noun, how) = if store == "truststore" {
        (
            "truststores",
            "export the CA as PEM (e.g. `keytool -exportcert -rfc -keystore truststore.jks -alias CARoot -file ca.pem`) and set ssl.ca.location to it",
        )
    } else {
        (
            "keystores",
            "export the certificate and its key as PEM (e.g. `openssl pkcs12 -in keystore.p12 -nodes -out client.pem`) and set ssl.keystore.type=PEM, or ssl.certificate.location and ssl.key.location",
        )
    };
    match store_type {
        Some(t) if t.trim().eq_ignore_ascii_case("PEM") => Ok(()),
        Some(t) => Err(format!(
            "ssl.{store}.type={t}: JKS/PKCS12 {noun} are not supported; {how}"
        )),
        None => Err(format!(
            "{used_by} is set without ssl.{store}.type=PEM, so it is a JKS {store} (the Java default): JKS/PKCS12 {noun} are not supported; {how} (or set ssl.{store}.type=PEM if it is PEM already)"
        )),
    }
}

/// Rewrites PEM text given inline (where a properties file may have joined its lines with
/// spaces, as Kafka's KIP-651 examples do) into proper PEM lines.
fn normalize_pem(key: &str, text: &str) -> Result<String, String> {
    let malformed = || format!("{key}: the PEM text is malformed");
    let mut out = String::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or_else(malformed)?;
        let label = after[..label_end].trim();
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_uppercase() || c == ' ') {
            return Err(malformed());
        }
        let body = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body.find(&end_marker).ok_or_else(malformed)?;
        let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if label.contains("ENCRYPTED") || base64.contains(':') {
            return Err(format!(
                "{key}: encrypted private keys are not supported; decrypt the key (e.g. `openssl pkey -in key.pem -out key-decrypted.pem`)"
            ));
        }
        if !base64
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        {
            return Err(malformed());
        }
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for chunk in base64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).map_err(|_| malformed())?);
            out.push('\n');
        }
        out.push_str(&end_marker);
        out.push('\n');
        rest = &body[end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err(format!(
            "{key}: no PEM section found (expected -----BEGIN ...----- lines)"
        ));
    }
    Ok(out)
}

fn only_one<T>(what: &str, mut candidates: Vec<(&str, T)>) -> Result<Option<(String, T)>, String> {
    if candidates.len() > 1 {
        let names: Vec<&str> = candidates.iter().map(|(k, _)| *k).collect();
        return Err(format!(
            "{} are all set; set only one {what}",
            names.join(", ")
        ));
    }
    Ok(candidates.pop().map(|(k, v)| (k.to_owned(), v)))
}

fn parse_tls(map: &BTreeMap<&str, &Property>, settings: &mut FileSettings) -> Result<(), String> {
    let val = |key: &str| -> Option<&str> {
        map.get(key)
            .map(|p| p.value.as_str())
            .filter(|v| !v.is_empty())
    };
    // Trust roots.
    let mut trust = Vec::new();
    if let Some(v) = val("ssl.ca.location") {
        let roots = if v.eq_ignore_ascii_case("probe") {
            TrustRoots::System
        } else {
            TrustRoots::PemFile(PathBuf::from(v))
        };
        trust.push(("ssl.ca.location", roots));
    }
    if let Some(v) = val("ssl.ca.pem") {
        trust.push((
            "ssl.ca.pem",
            TrustRoots::Pem(normalize_pem("ssl.ca.pem", v)?),
        ));
    }
    for key in ["ssl.truststore.location", "ssl.truststore.certificates"] {
        if let Some(v) = val(key) {
            require_pem_store("truststore", val("ssl.truststore.type"), key)?;
            let roots = if key == "ssl.truststore.location" {
                TrustRoots::PemFile(PathBuf::from(v))
            } else {
                TrustRoots::Pem(normalize_pem(key, v)?)
            };
            trust.push((key, roots));
        }
    }
    if val("ssl.truststore.password").is_some() {
        return Err(
            "ssl.truststore.password is set, but PEM truststores (the only kind kafkawire reads) have no password; remove it".into(),
        );
    }
    if let Some((key, roots)) = only_one("source of trusted CA certificates", trust)? {
        settings.tls_keys.push(key);
        settings.trust = Some(roots);
    }

    // Client certificate.
    if val("ssl.key.password").is_some() {
        return Err(
            "ssl.key.password is set: encrypted private keys are not supported; decrypt the key (e.g. `openssl pkey -in client.key -out client-decrypted.key`) and remove ssl.key.password".into(),
        );
    }
    for key in [
        "ssl.keystore.location",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
    ] {
        if val(key).is_some() {
            require_pem_store("keystore", val("ssl.keystore.type"), key)?;
        }
    }
    if val("ssl.keystore.password").is_some() {
        return Err(
            "ssl.keystore.password is set: password-protected keystores are not supported; use an unencrypted PEM key (ssl.keystore.type=PEM, or ssl.certificate.location and ssl.key.location) and remove ssl.keystore.password".into(),
        );
    }
    let mut chain = Vec::new();
    let mut key_source = Vec::new();
    if let Some(v) = val("ssl.certificate.location") {
        chain.push(("ssl.certificate.location", PemSource::File(v.into())));
    }
    if let Some(v) = val("ssl.certificate.pem") {
        let pem = normalize_pem("ssl.certificate.pem", v)?;
        chain.push(("ssl.certificate.pem", PemSource::Inline(Secret::new(pem))));
    }
    if let Some(v) = val("ssl.keystore.location") {
        // A PEM keystore holds the key and the chain in one file.
        chain.push(("ssl.keystore.location", PemSource::File(v.into())));
        key_source.push(("ssl.keystore.location", PemSource::File(v.into())));
    }
    if let Some(v) = val("ssl.keystore.certificate.chain") {
        let pem = normalize_pem("ssl.keystore.certificate.chain", v)?;
        chain.push((
            "ssl.keystore.certificate.chain",
            PemSource::Inline(Secret::new(pem)),
        ));
    }
    if let Some(v) = val("ssl.key.location") {
        key_source.push(("ssl.key.location", PemSource::File(v.into())));
    }
    for key in ["ssl.key.pem", "ssl.keystore.key"] {
        if let Some(v) = val(key) {
            key_source.push((key, PemSource::Inline(Secret::new(normalize_pem(key, v)?))));
        }
    }
    let chain = only_one("certificate chain", chain)?;
    let key = only_one("private key", key_source)?;
    match (chain, key) {
        (Some((chain_key, chain)), Some((key_key, key))) => {
            settings.tls_keys.push(chain_key);
            if !settings.tls_keys.contains(&key_key) {
                settings.tls_keys.push(key_key);
            }
            settings.client_certificate = Some(ClientCertificate { chain, key });
        }
        (Some((chain_key, _)), None) => {
            return Err(format!(
                "{chain_key} is set without a private key: add ssl.key.location"
            ));
        }
        (None, Some((key_key, _))) => {
            return Err(format!(
                "{key_key} is set without a certificate: add ssl.certificate.location"
            ));
        }
        (None, None) => {}
    }

    if let Some(p) = map.get("ssl.endpoint.identification.algorithm") {
        settings.verify_server_name = match p.value.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Some(false),
            "https" => Some(true),
            _ => {
                return Err(format!(
                    "ssl.endpoint.identification.algorithm={}: expected https (verify the broker's host name) or empty (do not)",
                    p.value
                ));
            }
        };
    }
    Ok(())
}
