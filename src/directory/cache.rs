//! Directory answers kept for a while, loaded at most once at a time per key.
//!
//! A page load fans out into dozens of requests for the same user, and a burst after a restart
//! can bring thousands; without coalescing, each would reach the DC. moka's `try_get_with` runs
//! one loader per key and hands its result to every concurrent caller (single-flight); entry
//! lifetimes differ by answer so that a denial is retried sooner than a success is. Failures to
//! reach the directory are never stored: the next request tries again, which is what makes
//! recovery automatic.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use super::altsec::AltSecForm;
use super::{Account, DenyReason};

/// What an answer is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// Account state by user name (`sam:alice`, `upn:alice@example.test`).
    Name(String),
    /// Account state by DN (lowercased).
    Dn(String),
    /// A password check: account DN (lowercased) and a keyed hash of the password, so the
    /// cache never holds the password itself.
    Bind(String, [u8; 32]),
    /// A certificate lookup: SHA-256 of the certificate and the allowed weak forms.
    Cert([u8; 32], u8),
}

/// A certificate mapped to exactly one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertHit {
    pub(crate) dn: String,
    pub(crate) form: Option<AltSecForm>,
}

/// A directory answer worth remembering.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Account(Result<Arc<Account>, DenyReason>),
    Bind(Result<(), DenyReason>),
    Cert(Result<CertHit, DenyReason>),
}

impl Answer {
    fn is_positive(&self) -> bool {
        match self {
            Self::Account(r) => r.is_ok(),
            Self::Bind(r) => r.is_ok(),
            Self::Cert(r) => r.is_ok(),
        }
    }
}

/// Where an answer came from, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Stored and still fresh.
    Hit,
    /// This caller ran the loader.
    Miss,
    /// Another caller's loader was already running; this one waited for its result.
    Coalesced,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Coalesced => "coalesced",
        }
    }
}

struct Ttl {
    positive: Duration,
    negative: Duration,
}

impl Expiry<Key, Answer> for Ttl {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Answer,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_positive() {
            self.positive
        } else {
            self.negative
        })
    }
}

/// The answer cache.
pub(crate) struct AnswerCache {
    cache: Cache<Key, Answer>,
}

impl AnswerCache {
    pub(crate) fn new(capacity: u64, positive: Duration, negative: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .name("certgate-directory")
                .max_capacity(capacity)
                .expire_after(Ttl { positive, negative })
                .build(),
        }
    }

    /// The fresh answer for `key`, or the result of `load` (run by at most one caller at a time
    /// per key; concurrent callers share its result, including its error).
    pub(crate) async fn get_or_load<E, F>(
        &self,
        key: Key,
        load: F,
    ) -> (Result<Answer, Arc<E>>, Source)
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<Answer, E>>,
    {
        if let Some(answer) = self.cache.get(&key).await {
            return (Ok(answer), Source::Hit);
        }
        let ran = AtomicBool::new(false);
        let result = self
            .cache
            .try_get_with(key, async {
                ran.store(true, Ordering::Relaxed);
                load.await
            })
            .await;
        let source = if ran.load(Ordering::Relaxed) {
            Source::Miss
        } else {
            Source::Coalesced
        };
        (result, source)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn single_flight_and_ttls() {
        let cache = Arc::new(AnswerCache::new(
            100,
            Duration::from_secs(60),
            Duration::from_millis(200),
        ));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(Key::Name("sam:x".into()), async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(Answer::Bind(Ok(())))
                    })
                    .await
                    .1
            }));
        }
        let mut sources = Vec::new();
        for t in tasks {
            sources.push(t.await.unwrap());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(sources.iter().filter(|s| **s == Source::Miss).count(), 1);

        // Negative answers expire on their own, shorter clock.
        let deny = || async { Ok::<_, ()>(Answer::Bind(Err(DenyReason::BadPassword))) };
        let key = Key::Name("sam:y".into());
        assert_eq!(cache.get_or_load(key.clone(), deny()).await.1, Source::Miss);
        assert_eq!(cache.get_or_load(key.clone(), deny()).await.1, Source::Hit);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(cache.get_or_load(key, deny()).await.1, Source::Miss);

        // Errors are shared with waiters but never stored.
        let key = Key::Name("sam:z".into());
        let (r, s) = cache
            .get_or_load(key.clone(), async { Err::<Answer, _>("down") })
            .await;
        assert!(r.is_err());
        assert_eq!(s, Source::Miss);
        let (r, s) = cache
            .get_or_load(key, async { Ok::<_, &str>(Answer::Bind(Ok(()))) })
            .await;
        assert!(r.is_ok());
        assert_eq!(s, Source::Miss);
    }
}
