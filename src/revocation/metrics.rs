//! Revocation metrics. The only label besides fixed kinds and outcomes is `ca`: the common name
//! of the configured `client_ca` the chain ends at, so cardinality is bounded by configuration
//! and no client-supplied value ever becomes a label.

use std::sync::OnceLock;

use metrics::Counter;

use super::crl::Crl;

/// Age of the last CRL fetched (seconds since its thisUpdate at fetch time), by `ca`.
pub const CRL_AGE: &str = "certgate_revocation_crl_age_seconds";
/// nextUpdate of the last CRL fetched, Unix seconds, by `ca`.
pub const CRL_NEXT_UPDATE: &str = "certgate_revocation_crl_next_update_timestamp_seconds";
/// Failed fetches, by `ca` and `kind` (`crl`, `ocsp`).
pub const FETCH_FAILURES: &str = "certgate_revocation_fetch_failures_total";
/// Refetched CRLs refused because they are older than the cached one (lower cRLNumber), by
/// `ca`. Each is also counted in [`FETCH_FAILURES`].
pub const CRL_ROLLBACKS: &str = "certgate_revocation_crl_rollbacks_refused_total";
/// Fetched OCSP answers refused because they are older than the cached one for the same
/// certificate (earlier thisUpdate or producedAt), by `ca`. Each is also counted in
/// [`FETCH_FAILURES`].
pub const OCSP_ROLLBACKS: &str = "certgate_revocation_ocsp_rollbacks_refused_total";
/// OCSP answers, by `ca` and `outcome` (`good`, `revoked`, `unknown`, `invalid`).
pub const OCSP_OUTCOMES: &str = "certgate_revocation_ocsp_responses_total";
/// Background refreshes started by the sweeper, by `kind` (`crl`, `ocsp`) and `outcome` (`ok`,
/// `failed`).
pub const BACKGROUND_REFRESHES: &str = "certgate_revocation_background_refreshes_total";
/// Cache entries dropped, by `kind` and `reason` (`unused`: no handshake used it for
/// `evict_unused_after`; `capacity`: the cache was full).
pub const EVICTIONS: &str = "certgate_revocation_cache_evictions_total";
/// Entries in the cache, by `kind`.
pub const CACHED: &str = "certgate_revocation_cache_entries";
/// Revocation verdicts per checked connection, by `outcome` (`good`, `revoked`, `unknown`,
/// `no_source`).
pub const CHECKS: &str = "certgate_revocation_checks_total";

/// Records a freshly fetched CRL.
pub fn crl_fetched(ca: &str, crl: &Crl) {
    let age = super::cache::unix_now().saturating_sub(crl.this_update);
    metrics::gauge!(CRL_AGE, "ca" => ca.to_owned()).set(age as f64);
    if let Some(next) = crl.next_update {
        metrics::gauge!(CRL_NEXT_UPDATE, "ca" => ca.to_owned()).set(next as f64);
    }
}

/// Records a failed fetch.
pub fn fetch_failed(ca: &str, kind: &'static str) {
    metrics::counter!(FETCH_FAILURES, "ca" => ca.to_owned(), "kind" => kind).increment(1);
}

/// Records a refused CRL rollback.
pub fn crl_rollback(ca: &str) {
    metrics::counter!(CRL_ROLLBACKS, "ca" => ca.to_owned()).increment(1);
}

/// Records a refused OCSP rollback.
pub fn ocsp_rollback(ca: &str) {
    metrics::counter!(OCSP_ROLLBACKS, "ca" => ca.to_owned()).increment(1);
}

/// Records an OCSP outcome.
pub fn ocsp_outcome(ca: &str, outcome: &'static str) {
    metrics::counter!(OCSP_OUTCOMES, "ca" => ca.to_owned(), "outcome" => outcome).increment(1);
}

/// Records a verdict (once per checked connection, so through pre-registered handles).
pub fn check(outcome: &'static str) {
    const OUTCOMES: [&str; 3] = ["good", "revoked", "unknown"];
    static HANDLES: OnceLock<[Counter; 3]> = OnceLock::new();
    let handles = crate::metrics::fixed_counters(&HANDLES, CHECKS, "outcome", OUTCOMES);
    crate::metrics::increment_among(
        &OUTCOMES,
        handles,
        outcome,
        || metrics::counter!(CHECKS, "outcome" => outcome),
    );
}

/// Records the end of a background refresh.
pub fn background_refresh(kind: &'static str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!(BACKGROUND_REFRESHES, "kind" => kind, "outcome" => outcome).increment(1);
}

/// Records `n` evictions.
pub fn evicted_n(kind: &'static str, reason: &'static str, n: u64) {
    metrics::counter!(EVICTIONS, "kind" => kind, "reason" => reason).increment(n);
}

/// Records the number of cached entries.
pub fn cached_entries(kind: &'static str, n: usize) {
    metrics::gauge!(CACHED, "kind" => kind).set(n as f64);
}
