//! Revocation metrics. The only label besides fixed kinds and outcomes is `ca`: the common name
//! of the configured `client_ca` the chain ends at, so cardinality is bounded by configuration
//! and no client-supplied value ever becomes a label.

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
/// OCSP answers, by `ca` and `outcome` (`good`, `revoked`, `unknown`, `invalid`).
pub const OCSP_OUTCOMES: &str = "certgate_revocation_ocsp_responses_total";
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

/// Records an OCSP outcome.
pub fn ocsp_outcome(ca: &str, outcome: &'static str) {
    metrics::counter!(OCSP_OUTCOMES, "ca" => ca.to_owned(), "outcome" => outcome).increment(1);
}

/// Records a verdict.
pub fn check(outcome: &'static str) {
    metrics::counter!(CHECKS, "outcome" => outcome).increment(1);
}
