//! Tests of [`RefreshingTokenProvider`]: the schedule (pure), and caching, background refresh,
//! retries and shutdown against a counting provider in real time (a second or so).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::error::Error;
use crate::security::Secret;

/// Hands out `token-<n>` living `lifetime_ms`; calls listed in `fail` (1-based) fail.
#[derive(Debug)]
struct Counting {
    calls: AtomicUsize,
    lifetime_ms: i64,
    fail: Vec<usize>,
    delay: Duration,
}

impl Counting {
    fn new(lifetime_ms: i64) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime_ms,
            fail: Vec::new(),
            delay: Duration::ZERO,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenProvider for Counting {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if self.fail.contains(&n) {
                return Err(Error::Config(format!("provider failure {n}")));
            }
            Ok(OAuthToken {
                value: Secret::new(format!("token-{n}")),
                principal: "alice".into(),
                expires_at_ms: now_ms() + self.lifetime_ms,
                extensions: BTreeMap::new(),
            })
        })
    }
}

/// Refreshes at half the lifetime, at least 50 ms before expiry, retries after 40 ms, 80 ms.
fn fast(inner: Arc<Counting>) -> RefreshingTokenProvider {
    let mut provider = RefreshingTokenProvider::new(inner)
        .refresh_window(0.5, 0.0)
        .min_refresh_interval(Duration::from_millis(10))
        .retry_backoff(Duration::from_millis(40), Duration::from_millis(80));
    provider.settings.min_before_expiry = Duration::from_millis(50);
    provider
}

#[test]
fn schedule_is_80_percent_plus_jitter_and_at_least_1s_before_expiry() {
    let s = Settings::default();
    assert_eq!(s.refresh_at_ms(1_000, 101_000, 0.0), 81_000);
    assert_eq!(s.refresh_at_ms(1_000, 101_000, 0.5), 83_500);
    assert!(s.refresh_at_ms(1_000, 101_000, 0.999_999) <= 86_000);
    // Short lifetimes: at least 1 s before expiry...
    assert_eq!(s.refresh_at_ms(0, 2_000, 0.0), 1_000);
    // ...but no sooner than the minimum interval.
    assert_eq!(s.refresh_at_ms(0, 1_500, 0.0), 1_000);
    assert_eq!(s.refresh_at_ms(5_000, 0, 0.0), 6_000, "already expired");
    // Extreme values neither panic nor overflow.
    assert_eq!(
        s.refresh_at_ms(0, i64::MAX, 0.0),
        (i64::MAX as f64 * 0.8) as i64
    );
    s.refresh_at_ms(i64::MIN, i64::MAX, 0.9);
    s.refresh_at_ms(i64::MAX, i64::MIN, 0.9);
}

#[test]
fn backoff_doubles_up_to_the_maximum_with_jitter() {
    let s = Settings::default();
    assert_eq!(s.backoff(1, 0.5), Duration::from_secs(1));
    assert_eq!(s.backoff(2, 0.5), Duration::from_secs(2));
    assert_eq!(s.backoff(3, 0.0), Duration::from_millis(3_200));
    assert_eq!(s.backoff(30, 0.5), Duration::from_secs(60));
    assert_eq!(s.backoff(u32::MAX, 0.5), Duration::from_secs(60));
    let huge = RefreshingTokenProvider::new(Counting::new(1))
        .retry_backoff(Duration::MAX, Duration::MAX)
        .settings;
    assert_eq!(huge.backoff(5, 0.99), Duration::MAX, "no overflow panic");
}

#[test]
fn window_settings_are_clamped() {
    let p = RefreshingTokenProvider::new(Counting::new(1)).refresh_window(3.0, f64::NAN);
    assert_eq!((p.settings.window, p.settings.jitter), (1.0, 0.0));
    let p = RefreshingTokenProvider::new(Counting::new(1)).refresh_window(0.1, 0.9);
    assert_eq!((p.settings.window, p.settings.jitter), (0.5, 0.25));
}

/// Waits (up to 10 s, for loaded machines) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The cached token's value.
fn cached(provider: &RefreshingTokenProvider) -> Option<String> {
    let cache = provider.shared.cache();
    cache.token.as_ref().map(|t| t.value.expose().to_owned())
}

#[tokio::test]
async fn caches_and_refreshes_in_the_background() {
    let inner = Counting::new(1_000);
    let provider = fast(inner.clone());
    let started = std::time::Instant::now();
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-1");
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-1");
    assert_eq!(inner.calls(), 1, "the second call came from the cache");
    // Due after 500 ms.
    eventually("a refresh", || {
        cached(&provider).as_deref() != Some("token-1")
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    let calls = inner.calls();
    let token = provider.token().await.unwrap();
    assert_ne!(token.value.expose(), "token-1");
    assert_eq!(inner.calls(), calls, "token() did not ask the provider");
}

#[tokio::test]
async fn failed_refreshes_are_retried_and_the_old_token_stays_in_use() {
    let inner = Arc::new(Counting {
        fail: vec![2, 3],
        ..Arc::try_unwrap(Counting::new(1_000)).unwrap()
    });
    let provider = fast(inner.clone());
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-1");
    // Call 2 at ~500 ms fails; token-1 is valid until 1,000 ms.
    eventually("a failed refresh", || inner.calls() >= 2).await;
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-1");
    // Call 3 ~40 ms later fails, call 4 ~80 ms after that succeeds.
    eventually("a refresh after retries", || {
        cached(&provider).is_some_and(|v| !["token-1", "token-2", "token-3"].contains(&v.as_str()))
    })
    .await;
    assert!(inner.calls() >= 4, "{} calls", inner.calls());
}

#[tokio::test]
async fn expired_tokens_are_fetched_on_demand_and_errors_returned() {
    let inner = Counting::new(-1);
    let provider = RefreshingTokenProvider::new(inner.clone());
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-1");
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-2");

    let failing = Arc::new(Counting {
        fail: vec![1],
        ..Arc::try_unwrap(Counting::new(1_000)).unwrap()
    });
    let provider = RefreshingTokenProvider::new(failing.clone());
    let e = provider.token().await.unwrap_err();
    assert!(e.to_string().contains("provider failure 1"), "{e}");
    assert_eq!(provider.token().await.unwrap().value.expose(), "token-2");
}

#[tokio::test]
async fn concurrent_first_calls_share_one_request() {
    let inner = Arc::new(Counting {
        delay: Duration::from_millis(50),
        ..Arc::try_unwrap(Counting::new(60_000)).unwrap()
    });
    let provider = Arc::new(RefreshingTokenProvider::new(inner.clone()));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await.map(|t| t.value.expose().to_owned()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "token-1");
    }
    assert_eq!(inner.calls(), 1);
}

#[tokio::test]
async fn dropping_the_provider_stops_the_task() {
    let inner = Counting::new(200);
    let provider = fast(inner.clone());
    provider.token().await.unwrap();
    eventually("refreshes every ~100 ms", || inner.calls() >= 2).await;
    drop(provider);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let calls = inner.calls();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inner.calls(), calls);
    assert_eq!(
        Arc::strong_count(&inner),
        1,
        "the task released the provider"
    );
}

#[tokio::test]
async fn debug_shows_no_token() {
    let provider = RefreshingTokenProvider::new(Counting::new(60_000));
    let before = format!("{provider:?}");
    let token = provider.token().await.unwrap();
    let after = format!("{provider:?}");
    assert!(after.contains("alice"), "{after}");
    for text in [before, after] {
        assert!(!text.contains(token.value.expose()), "{text}");
    }
}

#[test]
fn without_a_runtime_no_task_starts() {
    // A runtime that is not entered while `token()` runs would still be needed to poll it;
    // polling by hand (no tokio context) must not panic.
    let provider = RefreshingTokenProvider::new(Counting::new(60_000));
    let token = poll_ready(provider.token()).unwrap();
    assert_eq!(token.value.expose(), "token-1");
    assert!(provider.shared.cache().task.is_none());
}

/// Polls a future that completes without waiting (no tokio context).
fn poll_ready(mut future: TokenFuture<'_>) -> Result<OAuthToken, Error> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}
