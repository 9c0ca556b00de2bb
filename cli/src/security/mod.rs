//! How the command line connects securely: the `--security-protocol`, `--sasl-*` and `--ssl-*`
//! flags, and `--command-config FILE`, a Java properties file with the keys the Java client and
//! librdkafka read (what a cloud console hands out), so such a file works as it is.
//!
//! Precedence, for each setting: a flag, then (for the password) the environment, then the
//! file, then the default. The password comes from `--sasl-password-file`, then
//! `KAFKAWIRE_SASL_PASSWORD`, then the file's `sasl.password` or `sasl.jaas.config`; there is no
//! password flag, since command lines are visible to every user of the machine.
//!
//! Keys of the file that kafkawire does not know are an error listing all of them (a misspelt
//! `ssl.ca.location` must not silently mean "trust the system's roots"); keys of other Kafka
//! clients that have no bearing here (`acks`, `session.timeout.ms`, ...) are reported in a note.
//! Nothing here ever puts a password, a key or a value of the file that may be one into an
//! error: errors name keys and line numbers only.
//!
//! The pieces: [`properties`] reads the properties-file syntax, [`jaas`] a `sasl.jaas.config`,
//! [`keys`] maps the file's keys to [`FileSettings`]; this module holds the flags and
//! [`resolve`], which puts flags, environment and file together.

mod jaas;
mod keys;
mod properties;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_jaas;
#[cfg(test)]
mod tests_keys;
#[cfg(test)]
mod tests_properties;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use kafkawire::Error;
use kafkawire::client::{
    ClientCertificate, PemSource, SaslConfig, SaslMechanism, Secret, SecurityConfig,
    SecurityProtocol, TlsConfig, TrustRoots,
};

use self::jaas::{LoginModule, OAUTH_MODULE};
pub(crate) use self::keys::{FileSettings, load_command_config};

/// The environment variable holding the SASL password.
pub(crate) const PASSWORD_ENV: &str = "KAFKAWIRE_SASL_PASSWORD";

/// The security flags. They hold no secret (the password is read from a file or the
/// environment when the configuration is built), so `Debug` is safe.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct SecurityArgs {
    /// Security protocol: PLAINTEXT (the default), SSL, SASL_PLAINTEXT or SASL_SSL
    /// (security.protocol).
    #[arg(long, global = true, value_name = "PROTOCOL", value_parser = parse_protocol)]
    pub(crate) security_protocol: Option<SecurityProtocol>,

    /// SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (sasl.mechanism).
    #[arg(long, global = true, value_name = "MECHANISM", value_parser = parse_mechanism)]
    pub(crate) sasl_mechanism: Option<SaslMechanism>,

    /// SASL user name (PLAIN, SCRAM). The password comes from the KAFKAWIRE_SASL_PASSWORD
    /// environment variable, --sasl-password-file or the --command-config file; there is no
    /// password flag, since command lines are visible to other users.
    #[arg(long, global = true, value_name = "USER")]
    pub(crate) sasl_username: Option<String>,

    /// Read the SASL password from the first line of FILE (overrides KAFKAWIRE_SASL_PASSWORD
    /// and the --command-config file).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) sasl_password_file: Option<PathBuf>,

    /// Trust the CA certificates in this PEM file (ssl.ca.location) instead of the system's.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ssl_ca: Option<PathBuf>,

    /// Client certificate chain, PEM, for brokers that require one (ssl.certificate.location);
    /// needs --ssl-key.
    #[arg(long, global = true, value_name = "FILE", requires = "ssl_key")]
    pub(crate) ssl_cert: Option<PathBuf>,

    /// Private key of --ssl-cert, unencrypted PEM: PKCS#8, PKCS#1 or SEC1 (ssl.key.location).
    #[arg(long, global = true, value_name = "FILE", requires = "ssl_cert")]
    pub(crate) ssl_key: Option<PathBuf>,

    /// DANGEROUS: accept a broker certificate issued for any host name, as long as a trusted
    /// CA signed it (an empty ssl.endpoint.identification.algorithm). Anyone holding such a
    /// certificate can then read and change everything this command sends and receives.
    #[arg(long, global = true)]
    pub(crate) ssl_no_verify_hostname: bool,

    /// Read settings from a Java-style properties file, as Kafka's own tools do:
    /// bootstrap.servers, client.id, security.protocol, sasl.mechanism, sasl.username,
    /// sasl.password, sasl.jaas.config (PlainLoginModule, ScramLoginModule, or
    /// OAuthBearerLoginModule with unsecured test tokens), ssl.ca.location, ssl.ca.pem,
    /// ssl.truststore.location/.certificates (ssl.truststore.type=PEM),
    /// ssl.certificate.location/.pem, ssl.key.location/.pem,
    /// ssl.keystore.location/.certificate.chain/.key (ssl.keystore.type=PEM),
    /// ssl.endpoint.identification.algorithm, request.timeout.ms and the other client
    /// timeouts. Flags override the file. Unknown keys are an error.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) command_config: Option<PathBuf>,
}

fn config_message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

fn parse_protocol(s: &str) -> Result<SecurityProtocol, String> {
    s.parse().map_err(config_message)
}

fn parse_mechanism(s: &str) -> Result<SaslMechanism, String> {
    s.parse().map_err(config_message)
}

// ---------------------------------------------------------------------------------------------
// Flags + environment + file
// ---------------------------------------------------------------------------------------------

/// The password in `KAFKAWIRE_SASL_PASSWORD`, if set and not empty.
///
/// # Errors
/// [`Error::Config`] when it is not UTF-8.
pub(crate) fn env_password() -> Result<Option<Secret>, Error> {
    password_from_env_value(std::env::var_os(PASSWORD_ENV))
}

fn password_from_env_value(value: Option<OsString>) -> Result<Option<Secret>, Error> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .into_string()
            .map(|s| Some(Secret::new(s)))
            .map_err(|_| Error::Config(format!("{PASSWORD_ENV} is not valid UTF-8"))),
    }
}

/// The first line of a password file, without its line ending.
///
/// # Errors
/// [`Error::Config`] naming the file when it cannot be read or its first line is empty.
pub(crate) fn read_password_file(path: &Path) -> Result<Secret, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "--sasl-password-file {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    let first = text.split('\n').next().unwrap_or_default();
    let first = first.strip_suffix('\r').unwrap_or(first);
    if first.is_empty() {
        return Err(Error::Config(format!(
            "--sasl-password-file {}: the first line is empty (it must hold the password)",
            path.display()
        )));
    }
    Ok(Secret::new(first))
}

/// Builds the security configuration from the flags, the password in the environment
/// (`env_password`, see [`env_password`]) and the `--command-config` file, and validates it.
///
/// # Errors
/// [`Error::Config`] saying what is missing, contradictory or superfluous, and where it was set.
pub(crate) fn resolve(
    args: &SecurityArgs,
    file: Option<&FileSettings>,
    env_password: Option<Secret>,
) -> Result<SecurityConfig, Error> {
    let empty = FileSettings::default();
    let file = file.unwrap_or(&empty);
    let protocol = args.security_protocol.or(file.protocol).unwrap_or_default();

    // TLS.
    let mut tls = TlsConfig::default();
    if let Some(ca) = &args.ssl_ca {
        tls.trust = TrustRoots::PemFile(ca.clone());
    } else if let Some(trust) = &file.trust {
        tls.trust = trust.clone();
    }
    if let (Some(cert), Some(key)) = (&args.ssl_cert, &args.ssl_key) {
        tls.client_certificate = Some(ClientCertificate {
            chain: PemSource::File(cert.clone()),
            key: PemSource::File(key.clone()),
        });
    } else if let Some(c) = &file.client_certificate {
        tls.client_certificate = Some(c.clone());
    }
    tls.verify_server_name = !args.ssl_no_verify_hostname && file.verify_server_name != Some(false);
    if !protocol.uses_tls() {
        let mut set: Vec<String> = [
            (args.ssl_ca.is_some(), "--ssl-ca"),
            (args.ssl_cert.is_some(), "--ssl-cert"),
            (args.ssl_key.is_some(), "--ssl-key"),
            (args.ssl_no_verify_hostname, "--ssl-no-verify-hostname"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_owned())
        .collect();
        set.extend(
            file.tls_keys
                .iter()
                .map(|k| format!("{k} (--command-config)")),
        );
        if !set.is_empty() {
            return Err(Error::Config(format!(
                "{} set, but security protocol {protocol} does not use TLS (use --security-protocol SSL or SASL_SSL)",
                set.join(", ")
            )));
        }
    }
    #[cfg(not(feature = "tls-ring"))]
    if protocol.uses_tls() {
        return Err(Error::Config(format!(
            "security protocol {protocol} needs TLS, and this kafkawire was built without it (the cargo feature `tls-ring`, on by default: build or install without --no-default-features)"
        )));
    }

    // SASL.
    let sasl = if protocol.uses_sasl() {
        Some(resolve_sasl(args, file, env_password, protocol)?)
    } else {
        let mut set: Vec<String> = [
            (args.sasl_mechanism.is_some(), "--sasl-mechanism"),
            (args.sasl_username.is_some(), "--sasl-username"),
            (args.sasl_password_file.is_some(), "--sasl-password-file"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_owned())
        .collect();
        set.extend(
            file.sasl_keys
                .iter()
                .map(|k| format!("{k} (--command-config)")),
        );
        if !set.is_empty() {
            return Err(Error::Config(format!(
                "{} set, but security protocol {protocol} does not use SASL (use --security-protocol SASL_SSL or SASL_PLAINTEXT)",
                set.join(", ")
            )));
        }
        None
    };

    let config = SecurityConfig {
        protocol,
        tls,
        sasl,
    };
    config.validate()?;
    Ok(config)
}

fn resolve_sasl(
    args: &SecurityArgs,
    file: &FileSettings,
    env_password: Option<Secret>,
    protocol: SecurityProtocol,
) -> Result<SaslConfig, Error> {
    let inferred = match file.login {
        Some(LoginModule::Plain) => Some(SaslMechanism::Plain),
        Some(LoginModule::OAuthBearer) => Some(SaslMechanism::OAuthBearer),
        Some(LoginModule::Scram) | None => None,
    };
    let Some(mechanism) = args.sasl_mechanism.or(file.mechanism).or(inferred) else {
        return Err(Error::Config(if file.login == Some(LoginModule::Scram) {
            "sasl.jaas.config uses ScramLoginModule: set sasl.mechanism (or --sasl-mechanism) to SCRAM-SHA-256 or SCRAM-SHA-512".into()
        } else {
            format!(
                "security protocol {protocol} needs a SASL mechanism: --sasl-mechanism or sasl.mechanism in --command-config (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
            )
        }));
    };
    let build: fn(&str, Secret) -> SaslConfig = match mechanism {
        SaslMechanism::Plain => |u, p| SaslConfig::plain(u, p),
        SaslMechanism::ScramSha256 => |u, p| SaslConfig::scram_sha256(u, p),
        SaslMechanism::ScramSha512 => |u, p| SaslConfig::scram_sha512(u, p),
        SaslMechanism::OAuthBearer => return resolve_oauth(args, file),
    };
    if file.login == Some(LoginModule::OAuthBearer) {
        return Err(Error::Config(format!(
            "sasl.jaas.config uses OAuthBearerLoginModule, which does not fit SASL mechanism {mechanism}"
        )));
    }
    let username = args
        .sasl_username
        .clone()
        .or_else(|| file.username.clone())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::Config(format!(
                "SASL {mechanism} needs a user name: --sasl-username, or sasl.username or sasl.jaas.config in --command-config"
            ))
        })?;
    let password = match &args.sasl_password_file {
        Some(path) => Some(read_password_file(path)?),
        None => env_password.or_else(|| file.password.clone()),
    };
    let password = password.filter(|p| !p.is_empty()).ok_or_else(|| {
        Error::Config(format!(
            "SASL {mechanism} needs a password: set {PASSWORD_ENV}, use --sasl-password-file FILE, or put sasl.password (or sasl.jaas.config) in --command-config; there is no password flag, since command lines are visible to other users"
        ))
    })?;
    Ok(build(&username, password))
}

/// OAUTHBEARER: unsecured tokens from the file's `sasl.jaas.config`, the only token source.
fn resolve_oauth(args: &SecurityArgs, file: &FileSettings) -> Result<SaslConfig, Error> {
    let mut set: Vec<&str> = Vec::new();
    if args.sasl_username.is_some() {
        set.push("--sasl-username");
    }
    if args.sasl_password_file.is_some() {
        set.push("--sasl-password-file");
    }
    if file.username.is_some() || file.password.is_some() {
        set.push("a user name or password in --command-config");
    }
    if !set.is_empty() {
        return Err(Error::Config(format!(
            "SASL OAUTHBEARER takes no user name or password, but {} is set",
            set.join(", ")
        )));
    }
    let provider = file.oauth.clone().ok_or_else(|| {
        Error::Config(format!(
            "SASL OAUTHBEARER needs a token source: kafkawire supports unsecured test tokens only, from sasl.jaas.config={OAUTH_MODULE} required unsecuredLoginStringClaim_sub=\"<principal>\"; in --command-config"
        ))
    })?;
    Ok(SaslConfig::oauthbearer(Arc::new(provider)))
}
