//! A caching [`TokenProvider`] that renews its token in the background, like the Java client's
//! `ExpiringCredentialRefreshingLogin` (KIP-255, KIP-368).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rand::Rng as _;
use tokio::task::JoinHandle;

use super::unsecured_jws::now_ms;
use super::{OAuthToken, TokenFuture, TokenProvider};

/// The longest single sleep of the refresh task (it wakes to re-check the due time).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// When and how often to refresh.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    window: f64,
    jitter: f64,
    min_before_expiry: Duration,
    min_interval: Duration,
    retry_initial: Duration,
    retry_max: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            window: 0.8,
            jitter: 0.05,
            min_before_expiry: Duration::from_secs(1),
            min_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Settings {
    /// When to refresh a token obtained at `obtained_ms` that expires at `expires_ms`, given a
    /// random `u` in `[0, 1)`: after `window + jitter * u` of its lifetime, at least
    /// `min_before_expiry` before it expires, but no sooner than `min_interval` after it came.
    fn refresh_at_ms(&self, obtained_ms: i64, expires_ms: i64, u: f64) -> i64 {
        let lifetime = expires_ms.saturating_sub(obtained_ms).max(0);
        let factor = self.window + self.jitter * u;
        // `as` saturates for floats.
        let at = obtained_ms.saturating_add((lifetime as f64 * factor) as i64);
        let latest = expires_ms.saturating_sub(millis(self.min_before_expiry));
        let earliest = obtained_ms.saturating_add(millis(self.min_interval));
        at.min(latest).max(earliest)
    }

    /// The wait before retry number `failures` (1 for the first), doubling from
    /// `retry_initial` up to `retry_max`, times a random factor in `[0.8, 1.2)` from `u`.
    fn backoff(&self, failures: u32, u: f64) -> Duration {
        let doubled = self
            .retry_initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let capped = doubled.min(self.retry_max);
        Duration::try_from_secs_f64(capped.as_secs_f64() * (0.8 + 0.4 * u)).unwrap_or(capped)
    }
}

#[derive(Default)]
struct Cache {
    token: Option<OAuthToken>,
    refresh_at_ms: i64,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    inner: Arc<dyn TokenProvider>,
    cache: Mutex<Cache>,
    /// Held while asking `inner`, so callers finding no valid token wait for one request.
    fetch: tokio::sync::Mutex<()>,
}

impl Shared {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token, if it has not expired.
    fn valid(&self) -> Option<OAuthToken> {
        let cache = self.cache();
        cache
            .token
            .as_ref()
            .filter(|t| t.expires_at_ms > now_ms())
            .cloned()
    }

    fn store(&self, token: OAuthToken, settings: &Settings) {
        let now = now_ms();
        let u = rand::thread_rng().r#gen::<f64>();
        let mut cache = self.cache();
        cache.refresh_at_ms = settings.refresh_at_ms(now, token.expires_at_ms, u);
        cache.token = Some(token);
    }
}

/// A [`TokenProvider`] that caches the token of another and renews it in a background tokio
/// task, the way the Java client's `ExpiringCredentialRefreshingLogin` does (KIP-255; KIP-368
/// re-authenticates connections with the new token).
///
/// [`TokenProvider::token`] returns the cached token at once while it is valid; only the first
/// call, or a call after the cached token expired (the refreshes kept failing), waits for the
/// wrapped provider, and concurrent callers then share one request. After each token arrives
/// the task schedules the next refresh at 80% of its lifetime plus up to 5% jitter
/// ([`refresh_window`](Self::refresh_window)), at least 1 s before it expires and at most once
/// a second ([`min_refresh_interval`](Self::min_refresh_interval)). A failed refresh is logged
/// and retried after 1 s, doubling up to 60 s, with ±20% jitter
/// ([`retry_backoff`](Self::retry_backoff)); the old token stays in use while valid.
///
/// The task starts at the first `token()` call (which must run inside a tokio runtime for
/// it to start; elsewhere each expired token is fetched on demand) and stops when the provider
/// is dropped. Its `Debug` shows the principal and expiry, never the token.
///
/// ```no_run
/// use std::sync::Arc;
/// use kafkawire_client::SaslConfig;
/// use kafkawire_client::sasl::{RefreshingTokenProvider, UnsecuredJwsProvider};
///
/// let provider = RefreshingTokenProvider::new(Arc::new(UnsecuredJwsProvider::new("alice")));
/// let sasl = SaslConfig::oauthbearer(Arc::new(provider));
/// ```
pub struct RefreshingTokenProvider {
    shared: Arc<Shared>,
    settings: Settings,
}

impl RefreshingTokenProvider {
    /// Caches and refreshes the tokens of `inner`.
    pub fn new(inner: Arc<dyn TokenProvider>) -> RefreshingTokenProvider {
        RefreshingTokenProvider {
            shared: Arc::new(Shared {
                inner,
                cache: Mutex::new(Cache::default()),
                fetch: tokio::sync::Mutex::new(()),
            }),
            settings: Settings::default(),
        }
    }

    /// Refresh after `factor` of a token's lifetime plus a random part up to `jitter` of it
    /// (Java's `sasl.login.refresh.window.factor` and `.jitter`; defaults 0.8 and 0.05).
    /// `factor` is clamped to 0.5..=1.0 and `jitter` to 0..=0.25, Java's ranges. Set before the
    /// first `token()` call.
    pub fn refresh_window(mut self, factor: f64, jitter: f64) -> RefreshingTokenProvider {
        let clamp = |x: f64, lo: f64, hi: f64| if x.is_nan() { lo } else { x.clamp(lo, hi) };
        self.settings.window = clamp(factor, 0.5, 1.0);
        self.settings.jitter = clamp(jitter, 0.0, 0.25);
        self
    }

    /// The shortest time between two scheduled refreshes (default 1 s), which keeps a
    /// provider of short-lived or already expired tokens from being asked in a loop. Set
    /// before the first `token()` call.
    pub fn min_refresh_interval(mut self, interval: Duration) -> RefreshingTokenProvider {
        self.settings.min_interval = interval;
        self
    }

    /// The wait before retrying a failed refresh: `initial`, doubling up to `max` (defaults
    /// 1 s and 60 s). Set before the first `token()` call.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> RefreshingTokenProvider {
        self.settings.retry_initial = initial;
        self.settings.retry_max = max.max(initial);
        self
    }

    /// Starts the refresh task if none runs and a tokio runtime is at hand.
    fn ensure_task(&self) {
        let mut cache = self.shared.cache();
        if cache.task.as_ref().is_none_or(JoinHandle::is_finished)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let shared = Arc::downgrade(&self.shared);
            cache.task = Some(runtime.spawn(refresh_loop(shared, self.settings)));
        }
    }
}

/// The background refresh: sleeps until the cached token is due, asks the wrapped provider,
/// and on failure retries with backoff. Ends when the provider is gone.
async fn refresh_loop(shared: Weak<Shared>, settings: Settings) {
    let mut failures = 0u32;
    loop {
        let wait = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let due = shared.cache().refresh_at_ms;
            Duration::from_millis(u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0))
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
            continue;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let result = {
            let _fetching = shared.fetch.lock().await;
            shared.inner.token().await
        };
        match result {
            Ok(token) => {
                failures = 0;
                tracing::debug!(
                    principal = %token.principal,
                    expires_at_ms = token.expires_at_ms,
                    "OAUTHBEARER token refreshed"
                );
                shared.store(token, &settings);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let backoff = settings.backoff(failures, rand::thread_rng().r#gen::<f64>());
                tracing::warn!(
                    error = %e,
                    failures,
                    retry_in_ms = backoff.as_millis() as u64,
                    "OAUTHBEARER token refresh failed"
                );
                shared.cache().refresh_at_ms = now_ms().saturating_add(millis(backoff));
            }
        }
    }
}

impl TokenProvider for RefreshingTokenProvider {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            if let Some(token) = self.shared.valid() {
                return Ok(token);
            }
            let _fetching = self.shared.fetch.lock().await;
            // Another caller (or the task) may have fetched one meanwhile.
            if let Some(token) = self.shared.valid() {
                return Ok(token);
            }
            let token = self.shared.inner.token().await?;
            self.shared.store(token.clone(), &self.settings);
            self.ensure_task();
            Ok(token)
        })
    }
}

impl Drop for RefreshingTokenProvider {
    fn drop(&mut self) {
        if let Some(task) = self.shared.cache().task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for RefreshingTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.shared.cache();
        f.debug_struct("RefreshingTokenProvider")
            .field("inner", &self.shared.inner)
            .field(
                "principal",
                &cache.token.as_ref().map(|t| t.principal.as_str()),
            )
            .field(
                "expires_at_ms",
                &cache.token.as_ref().map(|t| t.expires_at_ms),
            )
            .field("refresh_at_ms", &cache.refresh_at_ms)
            .field("settings", &self.settings)
            .finish()
    }
}

#[cfg(test)]
#[path = "refreshing_tests.rs"]
mod tests;
