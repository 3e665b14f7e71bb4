//! Counters and metrics of directory work, for tests, diagnostics and the `metrics` facade.

use std::sync::atomic::{AtomicU64, Ordering};

use super::cache::Source;
use super::ldap::Failure;

/// Metric: LDAP operations sent, by `op` (`search`, `service_bind`, `user_bind`, `connect`).
pub const METRIC_OPERATIONS: &str = "certgate_directory_operations_total";
/// Metric: failures to get an answer, by `kind` (`connect`, `timeout`, `busy`, `service_bind`,
/// `result`, `config`, `protocol`).
pub const METRIC_FAILURES: &str = "certgate_directory_failures_total";
/// Metric: answer-cache lookups, by `result` (`hit`, `miss`, `coalesced`).
pub const METRIC_CACHE: &str = "certgate_directory_cache_total";
/// Metric: verdicts, by `check` (`account`, `credentials`, `certificate`) and `outcome`
/// (`allow`, `unavailable`, or the deny reason's label).
pub const METRIC_VERDICTS: &str = "certgate_directory_verdicts_total";
/// Metric: time a directory answer took to load on a cache miss (all LDAP operations of one
/// lookup), by `result` (`ok`, `failed`).
pub const METRIC_LOOKUP_SECONDS: &str = "certgate_directory_lookup_duration_seconds";

/// Counters since the handle was created, for tests and diagnostics. The same events also go to
/// the `metrics` facade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryStats {
    /// Cache loads, i.e. answers fetched from the directory (each is one or more operations).
    pub loads: u64,
    /// Searches sent.
    pub searches: u64,
    /// Service-account binds (one per new pooled connection).
    pub service_binds: u64,
    /// Binds as a user (password checks).
    pub user_binds: u64,
    /// Connection attempts, successful or not.
    pub connects: u64,
    /// Answers served from the cache.
    pub cache_hits: u64,
    /// Answers shared from another caller's load.
    pub coalesced: u64,
    /// Operations or connections that failed.
    pub failures: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) loads: AtomicU64,
    searches: AtomicU64,
    service_binds: AtomicU64,
    user_binds: AtomicU64,
    connects: AtomicU64,
    cache_hits: AtomicU64,
    coalesced: AtomicU64,
    failures: AtomicU64,
}

impl Counters {
    pub(super) fn op(&self, counter: &AtomicU64, op: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(METRIC_OPERATIONS, "op" => op).increment(1);
    }

    pub(super) fn search(&self) {
        self.op(&self.searches, "search");
    }

    pub(super) fn service_bind(&self) {
        self.op(&self.service_binds, "service_bind");
    }

    pub(super) fn user_bind(&self) {
        self.op(&self.user_binds, "user_bind");
    }

    pub(super) fn connect(&self) {
        self.op(&self.connects, "connect");
    }

    pub(super) fn failure(&self, failure: &Failure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(METRIC_FAILURES, "kind" => failure.kind()).increment(1);
    }

    pub(super) fn cache(&self, source: Source) {
        match source {
            Source::Hit => self.cache_hits.fetch_add(1, Ordering::Relaxed),
            Source::Miss => self.loads.fetch_add(1, Ordering::Relaxed),
            Source::Coalesced => self.coalesced.fetch_add(1, Ordering::Relaxed),
        };
        metrics::counter!(METRIC_CACHE, "result" => source.as_str()).increment(1);
    }

    pub(super) fn snapshot(&self) -> DirectoryStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectoryStats {
            loads: get(&self.loads),
            searches: get(&self.searches),
            service_binds: get(&self.service_binds),
            user_binds: get(&self.user_binds),
            connects: get(&self.connects),
            cache_hits: get(&self.cache_hits),
            coalesced: get(&self.coalesced),
            failures: get(&self.failures),
        }
    }
}
