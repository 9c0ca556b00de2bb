//! Mapping advertised broker addresses to reachable ones.
//!
//! A client learns broker addresses from Metadata: each broker sends the address of its
//! `advertised.listeners`. Behind Docker, Kubernetes or NAT that address often means nothing to
//! the client (`kafka:29092`, a pod IP), though the bootstrap address worked. A
//! [`BrokerAddressMap`] rewrites such addresses before connecting.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A function that may rewrite an advertised `host:port`; `None` keeps it.
pub type Resolver = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Rewrites advertised `host:port` addresses to reachable ones: exact entries first, then the
/// resolver hook, else the address unchanged.
///
/// ```
/// use kafkawire_client::BrokerAddressMap;
/// let mut map = BrokerAddressMap::default();
/// map.insert("kafka:29092", "127.0.0.1:9092").unwrap();
/// assert_eq!(map.resolve("kafka:29092"), "127.0.0.1:9092");
/// assert_eq!(map.resolve("other:9092"), "other:9092");
/// let map = map.with_resolver(|addr| addr.strip_suffix(":9093").map(|h| format!("{h}:19093")));
/// assert_eq!(map.resolve("b2:9093"), "b2:19093");
/// ```
#[derive(Clone, Default)]
pub struct BrokerAddressMap {
    entries: HashMap<String, String>,
    resolver: Option<Resolver>,
}

impl fmt::Debug for BrokerAddressMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAddressMap")
            .field("entries", &self.entries)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

fn check_addr(s: &str) -> Result<()> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(Error::Config(format!("{s:?} is not a host:port address"))),
    }
}

impl BrokerAddressMap {
    /// Maps `advertised` to `reachable` (both `host:port`).
    ///
    /// # Errors
    /// [`Error::Config`] if either is not `host:port`.
    pub fn insert(&mut self, advertised: &str, reachable: &str) -> Result<()> {
        check_addr(advertised)?;
        check_addr(reachable)?;
        self.entries
            .insert(advertised.to_owned(), reachable.to_owned());
        Ok(())
    }

    /// Parses `ADVERTISED=REACHABLE`, as given to the CLI's `--broker-map`.
    ///
    /// # Errors
    /// [`Error::Config`] if the text is not of that form.
    pub fn insert_spec(&mut self, spec: &str) -> Result<()> {
        let (a, r) = spec.split_once('=').ok_or_else(|| {
            Error::Config(format!(
                "broker map {spec:?} must be ADVERTISED_HOST:PORT=REACHABLE_HOST:PORT"
            ))
        })?;
        self.insert(a.trim(), r.trim())
    }

    /// Adds a resolver hook, asked for addresses with no exact entry.
    pub fn with_resolver(
        mut self,
        f: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(f));
        self
    }

    /// The address to connect to for an advertised one.
    pub fn resolve(&self, advertised: &str) -> String {
        if let Some(r) = self.entries.get(advertised) {
            return r.clone();
        }
        if let Some(f) = &self.resolver
            && let Some(r) = f(advertised)
        {
            return r;
        }
        advertised.to_owned()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.resolver.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked() {
        let mut m = BrokerAddressMap::default();
        assert!(m.insert_spec("kafka:29092=127.0.0.1:9092").is_ok());
        assert!(m.insert_spec("kafka:29092").is_err());
        assert!(m.insert_spec("kafka=127.0.0.1:9092").is_err());
        assert!(m.insert_spec("kafka:1=127.0.0.1:notaport").is_err());
        assert_eq!(m.resolve("kafka:29092"), "127.0.0.1:9092");
        assert!(!m.is_empty());
    }
}
