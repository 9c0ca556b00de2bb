//! `sasl.jaas.config`: the JAAS login module configuration of the Java client.

use std::time::Duration;

use kafkawire::client::{Secret, UnsecuredJwsProvider};

pub(super) const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
pub(super) const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
pub(super) const OAUTH_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// The login module of a `sasl.jaas.config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginModule {
    /// `PlainLoginModule` (user name and password).
    Plain,
    /// `ScramLoginModule` (user name and password).
    Scram,
    /// `OAuthBearerLoginModule` with unsecured tokens.
    OAuthBearer,
}

/// A token of a JAAS configuration. Quoted values may be secrets: no `Debug`.
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '.')
}

/// Splits a JAAS configuration into tokens as Kafka's `JaasConfig` does (Java's
/// `StreamTokenizer`): words, values quoted with `"` or `'` (escapes `\n \t \r \f \b \a \v`,
/// octal `\NNN`, and `\` before any other character for that character), `=`, `;`, and `//`
/// and `/* */` comments.
fn jaas_tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let rest = &chars[i + 2..];
            let end = rest
                .windows(2)
                .position(|w| w == ['*', '/'])
                .ok_or("sasl.jaas.config: a /* comment is not closed")?;
            i += 2 + end + 2;
        } else if c == '=' {
            out.push(Token::Equals);
            i += 1;
        } else if c == ';' {
            out.push(Token::Semicolon);
            i += 1;
        } else if c == '"' || c == '\'' {
            let (value, next) = jaas_quoted(&chars, i)?;
            out.push(Token::Quoted(value));
            i = next;
        } else if is_word_char(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            return Err(format!(
                "sasl.jaas.config: unexpected character at position {} (quote option values: key=\"value\")",
                i + 1
            ));
        }
    }
    Ok(out)
}

/// The quoted string starting at `chars[open]`, and the index after its closing quote.
fn jaas_quoted(chars: &[char], open: usize) -> Result<(String, usize), String> {
    let quote = chars[open];
    let unclosed = || {
        format!(
            "sasl.jaas.config: the value quoted at position {} is not closed on its line",
            open + 1
        )
    };
    let mut out = String::new();
    let mut i = open + 1;
    loop {
        let c = *chars.get(i).ok_or_else(unclosed)?;
        i += 1;
        if c == quote {
            return Ok((out, i));
        }
        if c == '\n' || c == '\r' {
            return Err(unclosed());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = *chars.get(i).ok_or_else(unclosed)?;
        i += 1;
        let decoded = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '0'..='7' => {
                let mut value = e.to_digit(8).unwrap_or(0);
                let max_digits = if e <= '3' { 3 } else { 2 };
                let mut digits = 1;
                while digits < max_digits {
                    match chars.get(i).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(value).unwrap_or('\u{fffd}')
            }
            other => other,
        };
        out.push(decoded);
    }
}

/// One JAAS login module entry. Options may hold secrets: no `Debug`.
struct JaasEntry {
    module: String,
    options: Vec<(String, String)>,
}

/// Parses `<LoginModule> <flag> key=value ... ;`: exactly one entry, as Kafka requires of
/// `sasl.jaas.config`.
fn parse_jaas(text: &str) -> Result<JaasEntry, String> {
    let tokens = jaas_tokens(text)?;
    let mut entries = Vec::new();
    let mut it = tokens.into_iter().peekable();
    while let Some(first) = it.next() {
        let Token::Word(module) = first else {
            return Err(
                "sasl.jaas.config must start with a login module class name, e.g. org.apache.kafka.common.security.plain.PlainLoginModule".into(),
            );
        };
        match it.next() {
            Some(Token::Word(flag))
                if ["required", "requisite", "sufficient", "optional"]
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&flag)) => {}
            Some(Token::Word(flag)) => {
                return Err(format!(
                    "sasl.jaas.config: unknown control flag {flag:?} after the login module (expected required, requisite, sufficient or optional)"
                ));
            }
            _ => {
                return Err(
                    "sasl.jaas.config: the login module must be followed by a control flag, e.g. `required`".into(),
                );
            }
        }
        let mut options: Vec<(String, String)> = Vec::new();
        loop {
            match it.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    if !matches!(it.next(), Some(Token::Equals)) {
                        return Err(format!(
                            "sasl.jaas.config: option {key} has no value (write {key}=\"...\")"
                        ));
                    }
                    let value = match it.next() {
                        Some(Token::Quoted(v) | Token::Word(v)) => v,
                        _ => {
                            return Err(format!(
                                "sasl.jaas.config: option {key} has no value (write {key}=\"...\")"
                            ));
                        }
                    };
                    if options.iter().any(|(k, _)| *k == key) {
                        return Err(format!("sasl.jaas.config: option {key} is set twice"));
                    }
                    options.push((key, value));
                }
                None => {
                    return Err("sasl.jaas.config must end with a semicolon (`...;`)".into());
                }
                Some(_) => {
                    return Err(
                        "sasl.jaas.config: expected an option (key=\"value\") or the closing ';'"
                            .into(),
                    );
                }
            }
        }
        entries.push(JaasEntry { module, options });
    }
    let count = entries.len();
    match entries.pop() {
        Some(entry) if count == 1 => Ok(entry),
        None => Err("sasl.jaas.config is empty".into()),
        Some(_) => Err(format!(
            "sasl.jaas.config holds {count} login modules; it must hold exactly one"
        )),
    }
}

/// What a `sasl.jaas.config` supplies.
pub(crate) enum JaasLogin {
    /// PLAIN or SCRAM credentials.
    Password {
        module: LoginModule,
        username: String,
        password: Secret,
    },
    /// Unsecured OAUTHBEARER tokens.
    Unsecured(UnsecuredJwsProvider),
}

fn unsupported_options(module: &str, options: &[(String, String)], supported: &str) -> String {
    let names: Vec<&str> = options.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "sasl.jaas.config: options of {module} that kafkawire does not support: {} (it reads {supported})",
        names.join(", ")
    )
}

/// Reads the credentials or token settings out of a `sasl.jaas.config`.
///
/// # Errors
/// A message naming what is wrong: never an option's value.
pub(crate) fn parse_login(text: &str) -> Result<JaasLogin, String> {
    let entry = parse_jaas(text)?;
    let short = entry
        .module
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    match entry.module.as_str() {
        PLAIN_MODULE | SCRAM_MODULE => {
            let module = if entry.module == PLAIN_MODULE {
                LoginModule::Plain
            } else {
                LoginModule::Scram
            };
            let mut username = None;
            let mut password = None;
            let mut other = Vec::new();
            for (key, value) in entry.options {
                match key.as_str() {
                    "username" => username = Some(value),
                    "password" => password = Some(Secret::new(value)),
                    _ => other.push((key, value)),
                }
            }
            if !other.is_empty() {
                return Err(unsupported_options(&short, &other, "username and password"));
            }
            let username = username
                .ok_or_else(|| format!("sasl.jaas.config: {short} needs username=\"...\""))?;
            let password = password
                .ok_or_else(|| format!("sasl.jaas.config: {short} needs password=\"...\""))?;
            Ok(JaasLogin::Password {
                module,
                username,
                password,
            })
        }
        OAUTH_MODULE => {
            let mut sub = None;
            let mut provider_settings = Vec::new();
            let mut other = Vec::new();
            for (key, value) in entry.options {
                if key == "unsecuredLoginStringClaim_sub" {
                    sub = Some(value);
                } else if key == "unsecuredLoginLifetimeSeconds"
                    || key == "unsecuredLoginListClaim_scope"
                    || key
                        .strip_prefix("unsecuredLoginExtension_")
                        .is_some_and(|k| !k.is_empty())
                {
                    provider_settings.push((key, value));
                } else {
                    other.push((key, value));
                }
            }
            let Some(sub) = sub else {
                return Err(format!(
                    "sasl.jaas.config: {short} is supported only with unsecured test tokens (unsecuredLoginStringClaim_sub=\"<principal>\"); OAuth token endpoints (clientId, clientSecret, sasl.oauthbearer.token.endpoint.url) are not supported"
                ));
            };
            if !other.is_empty() {
                return Err(unsupported_options(
                    &short,
                    &other,
                    "unsecuredLoginStringClaim_sub, unsecuredLoginLifetimeSeconds, unsecuredLoginListClaim_scope and unsecuredLoginExtension_<name>",
                ));
            }
            let mut provider = UnsecuredJwsProvider::new(sub);
            for (key, value) in provider_settings {
                if key == "unsecuredLoginLifetimeSeconds" {
                    let seconds: u64 = value.trim().parse().map_err(|_| {
                        format!(
                            "sasl.jaas.config: unsecuredLoginLifetimeSeconds must be a whole number of seconds, not {value:?}"
                        )
                    })?;
                    provider = provider.lifetime(Duration::from_secs(seconds));
                } else if key == "unsecuredLoginListClaim_scope" {
                    // Kafka's list claims: the first character separates the values.
                    let mut chars = value.chars();
                    let scope: Vec<String> = match chars.next() {
                        Some(sep) => chars
                            .as_str()
                            .split(sep)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        None => Vec::new(),
                    };
                    provider = provider.scope(scope);
                } else if let Some(name) = key.strip_prefix("unsecuredLoginExtension_") {
                    provider = provider.extension(name, value);
                }
            }
            Ok(JaasLogin::Unsecured(provider))
        }
        other => Err(format!(
            "sasl.jaas.config: login module {other} is not supported (kafkawire supports {PLAIN_MODULE}, {SCRAM_MODULE}, and {OAUTH_MODULE} with unsecured test tokens)"
        )),
    }
}
