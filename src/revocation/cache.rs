//! The revocation cache: one slot per URL, shared by every handshake, filled by at most one fetch
//! at a time, refreshed in the background before it expires, and persisted so a restart does not
//! depend on the distribution point being up.
//!
//! A handshake never waits for a fetch that another handshake started longer than its own
//! retrieval timeout, and a fetch that outlives its waiters still completes and fills the slot.
//! A failed refresh leaves the last good CRL in place; it keeps serving until its nextUpdate.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use super::crl::{Crl, sha256};
use super::fetch::{self, Limits};
use super::metrics;
use super::sweeper::{self, Renewal};

/// Where a cached CRL came from, for `explain` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Downloaded by this process.
    Fetched,
    /// Read back from the state directory.
    Persisted,
}

/// A CRL in the cache.
#[derive(Debug)]
pub struct CachedCrl {
    /// The CRL.
    pub crl: Arc<Crl>,
    /// When it was obtained (Unix seconds).
    pub obtained: i64,
    /// How.
    pub origin: Origin,
}

/// One URL's slot: the current value and the single in-flight fetch.
pub struct Slot<T> {
    current: ArcSwapOption<T>,
    fetching: AtomicBool,
    done: watch::Sender<u64>,
    last_error: Mutex<Option<String>>,
    /// When a handshake last used it (Unix seconds); the sweeper evicts long-unused slots.
    last_used: AtomicI64,
    /// When the sweeper last started a refresh of it (Unix seconds), to space its retries.
    pub(crate) attempted: AtomicI64,
    /// How the sweeper refreshes it: set by the last handshake that used it (none while only
    /// `cached_only` sites did).
    renewal: Mutex<Option<Arc<Renewal<T>>>>,
}

impl<T: Send + Sync + 'static> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> Slot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            fetching: AtomicBool::new(false),
            done: watch::channel(0).0,
            last_error: Mutex::new(None),
            last_used: AtomicI64::new(unix_now()),
            attempted: AtomicI64::new(0),
            renewal: Mutex::new(None),
        }
    }

    /// Records a use by a handshake wanting `want`; unless it is `cached_only`, the sweeper
    /// will refresh the slot with `make`'s job (rebuilt only when the wants changed, e.g.
    /// after a reload with a renewed CA).
    /// Returns whether the renewal changed (the sweeper should look at the slot soon).
    pub(crate) fn touch(&self, want: &Want, make: impl FnOnce() -> Renewal<T>) -> bool {
        self.last_used.store(unix_now(), Ordering::Relaxed);
        if want.cached_only {
            return false;
        }
        if let Ok(mut renewal) = self.renewal.lock()
            && renewal.as_ref().is_none_or(|r| r.want != *want)
        {
            *renewal = Some(Arc::new(make()));
            return true;
        }
        false
    }

    /// Whether a fetch is running.
    pub(crate) fn is_fetching(&self) -> bool {
        self.fetching.load(Ordering::Acquire)
    }

    /// Pretends a last use at `at` (Unix seconds).
    #[cfg(test)]
    pub(crate) fn used_at(&self, at: i64) {
        self.last_used.store(at, Ordering::Relaxed);
    }

    /// When a handshake last used it (Unix seconds).
    pub(crate) fn last_used(&self) -> i64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// The sweeper's way to refresh it, when a handshake registered one.
    pub(crate) fn renewal(&self) -> Option<Arc<Renewal<T>>> {
        self.renewal.lock().ok().and_then(|r| r.clone())
    }

    /// The current value.
    pub fn current(&self) -> Option<Arc<T>> {
        self.current.load_full()
    }

    /// Replaces the current value.
    pub fn store(&self, value: Arc<T>) {
        self.current.store(Some(value));
    }

    /// The last fetch error, if the last fetch failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Starts `job` unless a fetch is already running, then waits up to `wait` for the running
    /// fetch (none: do not wait). The job runs on its own task, so it completes even if every
    /// waiter gave up.
    pub async fn refresh<Fut>(self: &Arc<Self>, wait: Option<Duration>, job: impl FnOnce() -> Fut)
    where
        Fut: Future<Output = Result<Arc<T>, String>> + Send + 'static,
    {
        let mut done = self.done.subscribe();
        self.start(job);
        if let Some(wait) = wait {
            let _ = tokio::time::timeout(wait, done.changed()).await;
        }
    }

    /// Starts `job` on its own task unless a fetch is already running; `false` when one was.
    pub fn start<Fut>(self: &Arc<Self>, job: impl FnOnce() -> Fut) -> bool
    where
        Fut: Future<Output = Result<Arc<T>, String>> + Send + 'static,
    {
        if self.fetching.swap(true, Ordering::AcqRel) {
            return false;
        }
        let slot = Arc::clone(self);
        let fut = job();
        tokio::spawn(async move {
            let result = fut.await;
            if let Ok(mut last) = slot.last_error.lock() {
                *last = result.as_ref().err().cloned();
            }
            if let Ok(value) = result {
                slot.current.store(Some(value));
            }
            slot.fetching.store(false, Ordering::Release);
            slot.done.send_modify(|n| *n = n.wrapping_add(1));
        });
        true
    }
}

/// What a caller needs from a CRL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The issuing CA's name (DER): the CRL must be issued by it.
    pub issuer: Vec<u8>,
    /// SPKIs of that CA (several after a renewal); the CRL must verify with one.
    pub keys: Arc<Vec<Vec<u8>>>,
    /// `freshness_time`: a CRL older than this (since thisUpdate) is refetched; zero: never.
    pub freshness: Duration,
    /// How long a handshake waits for a fetch.
    pub timeout: Duration,
    /// Never fetch; use only what is cached or persisted.
    pub cached_only: bool,
    /// Bounded metrics label for the issuer.
    pub label: Arc<str>,
}

/// An OCSP cache key: responder URL and DER CertID.
pub(crate) type OcspKey = (String, Vec<u8>);

/// The process's revocation cache for one configuration (kept across reloads of it).
pub struct Store {
    limits: Limits,
    state_dir: Option<PathBuf>,
    ldap: Option<Arc<super::ldap::LdapSource>>,
    /// CRLs, by URL.
    pub(crate) crls: Mutex<HashMap<String, Arc<Slot<CachedCrl>>>>,
    /// OCSP responses, by responder URL and CertID.
    pub(crate) ocsp: Mutex<HashMap<OcspKey, Arc<Slot<super::ocsp::CachedOcsp>>>>,
    /// Whether the background sweeper ([`sweeper`]) was started.
    sweeping: AtomicBool,
    /// Stops the sweeper when the cache is dropped (a reload that changed its settings).
    stop: tokio_util::sync::CancellationToken,
    /// Wakes the sweeper early: a slot got a new renewal.
    wake: Arc<tokio::sync::Notify>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("limits", &self.limits)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// Now, Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Store {
    /// A cache with these limits, persisting under `state_dir` when given.
    pub fn new(
        limits: Limits,
        state_dir: Option<PathBuf>,
        ldap: Option<Arc<super::ldap::LdapSource>>,
    ) -> Self {
        Self {
            limits,
            state_dir,
            ldap,
            crls: Mutex::new(HashMap::new()),
            ocsp: Mutex::new(HashMap::new()),
            sweeping: AtomicBool::new(false),
            stop: tokio_util::sync::CancellationToken::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Starts the background sweeper of this cache once, on the current tokio runtime (the
    /// first use by a handshake starts it, so a cache only loaded by a tool does not).
    pub(crate) fn ensure_sweeper(self: &Arc<Self>) {
        if self.sweeping.load(Ordering::Relaxed) || self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            sweeper::spawn(self, self.stop.clone(), Arc::clone(&self.wake));
        } else {
            self.sweeping.store(false, Ordering::Release);
        }
    }

    /// Has the sweeper look at the cache now.
    pub(crate) fn wake_sweeper(&self) {
        self.wake.notify_one();
    }

    /// The fetch limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn slot(&self, url: &str) -> Arc<Slot<CachedCrl>> {
        let Ok(mut map) = self.crls.lock() else {
            return Arc::new(Slot::new());
        };
        if let Some(slot) = map.get(url) {
            return Arc::clone(slot);
        }
        sweeper::make_room(&mut *map, sweeper::MAX_CRL_URLS, "crl");
        Arc::clone(
            map.entry(url.to_owned())
                .or_insert_with(|| Arc::new(Slot::new())),
        )
    }

    /// Fetches `url` as a CRL document (http or ldap), bounded.
    pub async fn fetch_document(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<bytes::Bytes, fetch::FetchError> {
        fetch::permitted(url, &self.limits)?;
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
            super::ldap::fetch(self.ldap.as_deref(), url, &self.limits, timeout).await
        } else {
            fetch::http(url, None, &self.limits, timeout).await
        }
    }

    /// A usable CRL from `url` for `want`: cached, persisted, or fetched within the timeout.
    pub async fn crl(self: &Arc<Self>, url: &str, want: &Want) -> Result<Arc<CachedCrl>, String> {
        let slot = self.slot(url);
        self.ensure_sweeper();
        let renewed = slot.touch(want, || {
            let (url, want) = (url.to_owned(), want.clone());
            Renewal {
                want: want.clone(),
                job: Box::new(move |store: &Arc<Store>| Box::pin(store.job(&url, &want))),
            }
        });
        if renewed {
            self.wake_sweeper();
        }
        let now = unix_now();
        let usable = |c: &CachedCrl| -> Result<(), String> {
            if c.crl.issuer != want.issuer {
                return Err(super::crl::CrlError::WrongIssuer.to_string());
            }
            if c.crl.expired(unix_now()) {
                return Err(format!("CRL from {url} is past its nextUpdate"));
            }
            c.crl.verify_any(&want.keys).map_err(|e| e.to_string())?;
            Ok(())
        };
        let current = match slot.current() {
            Some(c) => Some(c),
            None => self
                .persisted(url, want)
                .await
                .inspect(|c| slot.store(Arc::clone(c))),
        };
        if let Some(c) = current.filter(|c| usable(c).is_ok()) {
            let stale = !want.freshness.is_zero()
                && now.saturating_sub(c.crl.this_update)
                    > i64::try_from(want.freshness.as_secs()).unwrap_or(i64::MAX);
            if want.cached_only {
                return Ok(c);
            }
            if stale {
                slot.refresh(Some(want.timeout), || self.job(url, want))
                    .await;
                return Ok(slot.current().filter(|n| usable(n).is_ok()).unwrap_or(c));
            }
            if refresh_due(&c.crl, now) || c.origin == Origin::Persisted {
                slot.refresh(None, || self.job(url, want)).await;
            }
            return Ok(c);
        }
        if want.cached_only {
            return Err(format!(
                "no usable cached CRL from {url} (cached_only = true)"
            ));
        }
        slot.refresh(Some(want.timeout), || self.job(url, want))
            .await;
        match slot.current() {
            Some(c) => usable(&c).map(|()| c).map_err(|e| {
                slot.last_error()
                    .map_or(e.clone(), |fetch| format!("{fetch}; cached: {e}"))
            }),
            None => Err(slot
                .last_error()
                .unwrap_or_else(|| format!("{url}: no answer within {:?}", want.timeout))),
        }
    }

    /// The fetch job for `url`: download, parse off the async workers, verify, persist.
    pub(crate) fn job(
        self: &Arc<Self>,
        url: &str,
        want: &Want,
    ) -> impl Future<Output = Result<Arc<CachedCrl>, String>> + Send + 'static {
        let store = Arc::clone(self);
        let url = url.to_owned();
        let want = want.clone();
        async move {
            let result = store.fetch_crl(&url, &want).await;
            if result.is_ok() {
                // The sweeper schedules the next refresh from the new CRL's dates.
                store.wake_sweeper();
            }
            match &result {
                Ok(c) => metrics::crl_fetched(&want.label, &c.crl),
                Err(_) => metrics::fetch_failed(&want.label, "crl"),
            }
            if let Err(e) = &result {
                tracing::warn!(url = %url, error = %e, "CRL fetch failed");
            }
            result
        }
    }

    /// Fetches `url` now, whatever is cached (`certgate check --online`): the same download,
    /// verification and persistence as a handshake's fetch; the URL's slot keeps the result.
    pub async fn fetch_now(
        self: &Arc<Self>,
        url: &str,
        want: &Want,
    ) -> Result<Arc<CachedCrl>, String> {
        let result = self.job(url, want).await;
        if let Ok(c) = &result {
            self.slot(url).store(Arc::clone(c));
        }
        result
    }

    /// Where fetched CRLs are persisted, when configured.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    async fn fetch_crl(&self, url: &str, want: &Want) -> Result<Arc<CachedCrl>, String> {
        let body = self
            .fetch_document(url, want.timeout)
            .await
            .map_err(|e| e.to_string())?;
        let keys = Arc::clone(&want.keys);
        let crl = tokio::task::spawn_blocking(move || -> Result<Crl, String> {
            let crl = Crl::parse(&body).map_err(|e| e.to_string())?;
            crl.verify_any(&keys).map_err(|e| e.to_string())?;
            Ok(crl)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{url}: {e}"))?;
        if crl.issuer != want.issuer {
            return Err(format!("{url}: {}", super::crl::CrlError::WrongIssuer));
        }
        if crl.expired(unix_now()) {
            return Err(format!("{url}: the served CRL is past its nextUpdate"));
        }
        if let Some(cached) = self.slot(url).current()
            && cached.crl.issuer == crl.issuer
            && crl.older_than(&cached.crl)
        {
            metrics::crl_rollback(&want.label);
            let number = |c: &Crl| c.number.as_ref().map_or("none".into(), |n| n.to_string());
            return Err(format!(
                "{url}: the served CRL (number {}) is older than the cached one (number {}): \
                 refused as a rollback, the cached one keeps serving",
                number(&crl),
                number(&cached.crl)
            ));
        }
        let crl = Arc::new(crl);
        if let Some(path) = self.state_path(url) {
            let data = Arc::clone(&crl);
            let _ = tokio::task::spawn_blocking(move || persist(&path, data.der())).await;
        }
        Ok(Arc::new(CachedCrl {
            crl,
            obtained: unix_now(),
            origin: Origin::Fetched,
        }))
    }

    pub(crate) fn state_path(&self, url: &str) -> Option<PathBuf> {
        self.state_file("crl", url.as_bytes())
    }

    /// The state directory file for `kind` (`crl`, `ocsp`) and `key`: named by the key's
    /// SHA-256, so no client-supplied text becomes a path.
    pub(crate) fn state_file(&self, kind: &str, key: &[u8]) -> Option<PathBuf> {
        let dir = self.state_dir.as_ref()?;
        let name: String = sha256(key).iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{kind}-{name}.der")))
    }

    /// The CRL persisted for `url`, if it is there, parses, and is issued for `want`.
    async fn persisted(&self, url: &str, want: &Want) -> Option<Arc<CachedCrl>> {
        let path = self.state_path(url)?;
        let keys = Arc::clone(&want.keys);
        let crl = tokio::task::spawn_blocking(move || {
            let data = std::fs::read(&path).ok()?;
            let crl = Crl::parse(&data).ok()?;
            crl.verify_any(&keys).is_ok().then_some(crl)
        })
        .await
        .ok()??;
        (crl.issuer == want.issuer).then(|| {
            Arc::new(CachedCrl {
                crl: Arc::new(crl),
                obtained: unix_now(),
                origin: Origin::Persisted,
            })
        })
    }
}

/// Whether a CRL is close enough to its nextUpdate to refresh it in the background.
fn refresh_due(crl: &Crl, now: i64) -> bool {
    now >= refresh_at(crl)
}

/// When a CRL is refreshed in the background (Unix seconds): in the last tenth of its validity
/// (at least a minute before nextUpdate); a CRL without nextUpdate a day after its thisUpdate.
pub(crate) fn refresh_at(crl: &Crl) -> i64 {
    let Some(next) = crl.next_update else {
        return crl.this_update.saturating_add(86_400);
    };
    let margin = (next.saturating_sub(crl.this_update) / 10).max(60);
    next.saturating_sub(margin)
}

/// Writes `data` to `path` atomically (temporary file, then rename).
pub(crate) fn persist(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
