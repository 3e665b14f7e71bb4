//! The background sweeper of a revocation cache: refreshes cached CRLs (base and delta, http
//! and ldap) and OCSP answers before they expire without waiting for a handshake, and evicts
//! entries no handshake used for `evict_unused_after`, so a distribution point named by a
//! certificate seen once is not fetched forever.
//!
//! One task per [`Store`], started by the first handshake that uses it. It holds only a
//! [`Weak`] reference between passes and also stops on the store's cancellation token (cancelled
//! when the store is dropped), so a reload that replaces the cache leaves no task behind. A pass
//! only starts fetches (each on its own task, through the slot's single-fetch guard, with the
//! same verification, rollback refusal and persistence as a handshake's), so a slow distribution
//! point never delays the sweeper; it then sleeps until the next entry is due (at least 1 s, at
//! most 60 s). A failed refresh keeps the last good answer, and is retried after a spacing that
//! grows with the answer's lifetime (1 s to 5 min).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cache::{CachedCrl, Origin, Slot, Store, Want, refresh_at, unix_now};
use super::metrics;
use super::ocsp::CachedOcsp;

/// Most CRL URLs cached at once; beyond it the least recently used is dropped.
pub const MAX_CRL_URLS: usize = 4096;
/// Most OCSP answers (responder and certificate) cached at once.
pub const MAX_OCSP_ANSWERS: usize = 65_536;
/// The sweeper sleeps at most this long between passes.
const MAX_SLEEP: i64 = 60;

/// A boxed fetch job.
pub type Job<T> = Pin<Box<dyn Future<Output = Result<Arc<T>, String>> + Send>>;

/// Makes a slot's fetch job for the store.
pub type MakeJob<T> = Box<dyn Fn(&Arc<Store>) -> Job<T> + Send + Sync>;

/// How the sweeper refreshes one slot: the wants of the last handshake that used it, and the
/// job that fetches it again for them.
pub struct Renewal<T> {
    /// What the handshake wanted (issuer, keys, freshness, timeout).
    pub want: Want,
    /// Makes the fetch job.
    pub job: MakeJob<T>,
}

/// When a cached answer is due for a background refresh, and how far apart retries are.
pub trait Refresh {
    /// Unix seconds when it should be refreshed, for a site's `freshness_time`.
    fn due_at(&self, freshness: Duration) -> i64;
    /// Seconds between two background attempts.
    fn spacing(&self) -> i64;
}

/// A hundredth of a lifetime, between 1 s and 5 min.
fn spacing_of(lifetime: i64) -> i64 {
    (lifetime / 100).clamp(1, 300)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Refresh for CachedCrl {
    fn due_at(&self, freshness: Duration) -> i64 {
        if self.origin == Origin::Persisted {
            return 0;
        }
        let at = refresh_at(&self.crl);
        if freshness.is_zero() {
            at
        } else {
            at.min(self.crl.this_update.saturating_add(secs(freshness)))
        }
    }

    fn spacing(&self) -> i64 {
        let lifetime = self
            .crl
            .next_update
            .map_or(7 * 86_400, |n| n.saturating_sub(self.crl.this_update));
        spacing_of(lifetime)
    }
}

impl Refresh for CachedOcsp {
    fn due_at(&self, _freshness: Duration) -> i64 {
        if self.origin == Origin::Persisted {
            return 0;
        }
        self.valid_until - (self.valid_until - self.this_update) / 10
    }

    fn spacing(&self) -> i64 {
        spacing_of(self.valid_until.saturating_sub(self.this_update))
    }
}

/// Starts the sweeper of `store`; it ends when the store is dropped or `stop` is cancelled.
pub(crate) fn spawn(store: &Arc<Store>, stop: CancellationToken, wake: Arc<Notify>) {
    let weak: Weak<Store> = Arc::downgrade(store);
    tokio::spawn(async move {
        loop {
            let wait = match weak.upgrade() {
                Some(store) => pass(&store, unix_now()),
                None => return,
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
            }
        }
    });
}

/// One pass: evicts, starts the refreshes that are due, and says how long to sleep.
pub(crate) fn pass(store: &Arc<Store>, now: i64) -> Duration {
    let evict_after = secs(store.limits().evict_unused_after);
    let crl_next = sweep(store, &store.crls, "crl", now, evict_after, |url| {
        store.state_path(url)
    });
    let ocsp_next = sweep(store, &store.ocsp, "ocsp", now, evict_after, |(url, id)| {
        super::ocsp::state_file(store, url, id)
    });
    let next = crl_next.min(ocsp_next).min(now + MAX_SLEEP);
    Duration::from_secs(u64::try_from(next - now).unwrap_or(0).max(1))
}

/// Sweeps one map; returns when it next needs attention (Unix seconds).
fn sweep<K, T>(
    store: &Arc<Store>,
    map: &Mutex<HashMap<K, Arc<Slot<T>>>>,
    kind: &'static str,
    now: i64,
    evict_after: i64,
    state_file: impl Fn(&K) -> Option<std::path::PathBuf>,
) -> i64
where
    K: Eq + Hash,
    T: Refresh + Send + Sync + 'static,
{
    let mut next = i64::MAX;
    let mut evicted = Vec::new();
    let mut count = 0u64;
    {
        let Ok(mut map) = map.lock() else {
            return next;
        };
        map.retain(|key, slot| {
            let keep = now.saturating_sub(slot.last_used()) < evict_after;
            if !keep {
                count += 1;
                evicted.extend(state_file(key));
            }
            keep
        });
        metrics::cached_entries(kind, map.len());
        for slot in map.values() {
            next = next.min(slot.last_used().saturating_add(evict_after));
            let Some(renewal) = slot.renewal() else {
                continue;
            };
            let Some(current) = slot.current() else {
                if slot.is_fetching() {
                    // The first fetch is running: look again when it may have finished.
                    next = next.min(now.saturating_add(1));
                }
                continue;
            };
            let spacing = match secs(renewal.want.freshness) {
                0 => current.spacing(),
                fresh => current.spacing().min(fresh.max(1)),
            };
            let due = current.due_at(renewal.want.freshness).max(
                slot.attempted
                    .load(Ordering::Relaxed)
                    .saturating_add(spacing),
            );
            if due > now {
                next = next.min(due);
                continue;
            }
            slot.attempted.store(now, Ordering::Relaxed);
            let job = (renewal.job)(store);
            slot.start(move || async move {
                let result = job.await;
                metrics::background_refresh(kind, result.is_ok());
                result
            });
            next = next.min(now.saturating_add(spacing));
        }
    }
    if count > 0 {
        metrics::evicted_n(kind, "unused", count);
    }
    // The state files of evicted entries go too (outside the lock): a restart must not bring
    // back what nobody uses.
    for path in &evicted {
        let _ = std::fs::remove_file(path);
    }
    next
}

/// Drops the least recently used slot of a full map (before inserting a new one), so the cache
/// stays bounded whatever the clients present.
pub(crate) fn make_room<K: Eq + Hash + Clone, T>(
    map: &mut HashMap<K, Arc<Slot<T>>>,
    cap: usize,
    kind: &'static str,
) where
    T: Send + Sync + 'static,
{
    if map.len() < cap {
        return;
    }
    let oldest = map
        .iter()
        .min_by_key(|(_, slot)| slot.last_used())
        .map(|(key, _)| key.clone());
    if let Some(key) = oldest {
        map.remove(&key);
        metrics::evicted_n(kind, "capacity", 1);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_cache_drops_its_least_recently_used_entry() {
        let mut map: HashMap<u8, Arc<Slot<CachedCrl>>> = HashMap::new();
        for (key, used) in [(1u8, 300), (2, 100), (3, 200)] {
            let slot = Arc::new(Slot::new());
            slot.used_at(used);
            map.insert(key, slot);
        }
        make_room(&mut map, 4, "crl");
        assert_eq!(map.len(), 3, "room left: nothing dropped");
        make_room(&mut map, 3, "crl");
        let mut left: Vec<u8> = map.keys().copied().collect();
        left.sort_unstable();
        assert_eq!(left, [1, 3], "the entry used longest ago goes");
    }

    #[test]
    fn retries_are_spaced_by_lifetime() {
        assert_eq!(spacing_of(6), 1);
        assert_eq!(spacing_of(3600), 36);
        assert_eq!(spacing_of(7 * 86_400), 300);
    }
}
