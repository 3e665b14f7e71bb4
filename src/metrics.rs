//! Prometheus metrics: names, the recorder, and gauges computed at scrape time.
//!
//! Every label is bounded by configuration or by code: site names, outcomes, IIS codes, kinds.
//! Never a user, a DN, a path or an address, which would make cardinality unbounded and put
//! personal data into a monitoring system.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// TLS handshakes, by `site` (`-` before one is chosen), `outcome` (`ok`, `timeout`,
/// `unknown_sni`, `client_cert`, `tls`, `io`), `version` and `kind` (`full`, `resumed`).
pub const TLS_HANDSHAKES: &str = "certgate_tls_handshakes_total";
/// Client-certificate verdicts per connection, by `site` and `outcome` (`absent`, `valid`, or
/// the IIS code of the rejection: `403.13`, `403.16`, `403.17`).
pub const CLIENT_CERTIFICATES: &str = "certgate_client_certificates_total";
/// Requests answered, by `site` and `code` (`status.substatus`, e.g. `200.0`, `403.7`).
pub const REQUESTS: &str = "certgate_requests_total";
/// Authenticated requests by `site` and mapping `kind` (`one_to_one`, `many_to_one`,
/// `active_directory`, `anonymous`).
pub const MAPPINGS: &str = "certgate_authentications_total";
/// Backend response-header latency in seconds, by `site`.
pub const BACKEND_SECONDS: &str = "certgate_backend_response_duration_seconds";
/// Backend failures, by `site` and `kind` (`connect`, `timeout`, `other`).
pub const BACKEND_ERRORS: &str = "certgate_backend_errors_total";
/// Open client connections (TLS established).
pub const ACTIVE_CONNECTIONS: &str = "certgate_active_connections";
/// Connections waiting for a slot because `max_connections` is reached.
pub const CONNECTIONS_WAITING: &str = "certgate_connections_waiting";
/// Configuration reloads, by `result` (`ok`, `failed`).
pub const CONFIG_RELOADS: &str = "certgate_config_reloads_total";
/// Seconds until a certificate expires (negative once expired), by `site`, `kind` (`server`,
/// `client_ca`) and `index` (position in the chain or CA list).
pub const CERTIFICATE_EXPIRY: &str = "certgate_certificate_expiry_seconds";

/// Latency buckets (seconds) shared by every histogram.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed on first use. `None` when another recorder already
/// owns the process (metrics are then not served, and nothing else changes).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The open-connections gauge, moved twice per connection: a handle instead of a registry
/// lookup each time. Taken after the recorder is installed, so it never counts into nothing.
pub fn active_connections() -> &'static Gauge {
    static GAUGE: OnceLock<Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| {
        let _ = handle();
        metrics::gauge!(ACTIVE_CONNECTIONS)
    })
}

/// Process-wide handles of `metric` for each of `values` of one label, registered on first use
/// (after the recorder is installed). For per-connection counters with a fixed label set.
pub fn fixed_counters<const N: usize>(
    slot: &'static OnceLock<[Counter; N]>,
    metric: &'static str,
    label: &'static str,
    values: [&'static str; N],
) -> &'static [Counter; N] {
    slot.get_or_init(|| {
        let _ = handle();
        values.map(|value| metrics::counter!(metric, label => value))
    })
}

/// Increments the handle registered for `value` (`handles[i]` for `values[i]`), or, for a value
/// outside `values`, the counter `lookup` finds in the registry.
pub fn increment_among(
    values: &[&str],
    handles: &[Counter],
    value: &str,
    lookup: impl FnOnce() -> Counter,
) {
    match values
        .iter()
        .position(|v| *v == value)
        .and_then(|i| handles.get(i))
    {
        Some(counter) => counter.increment(1),
        None => lookup().increment(1),
    }
}

/// Mapping kinds with a pre-registered `certgate_authentications_total` handle.
const MAPPING_KINDS: [&str; 4] = ["one_to_one", "many_to_one", "active_directory", "anonymous"];
/// Backend failure kinds.
const BACKEND_ERROR_KINDS: [&str; 3] = ["connect", "timeout", "other"];
/// TLS versions and handshake kinds with a pre-registered `certgate_tls_handshakes_total`
/// handle for `outcome="ok"`.
const TLS_VERSIONS: [&str; 2] = ["TLSv1.3", "TLSv1.2"];
const HANDSHAKE_KINDS: [&str; 2] = ["full", "resumed"];
/// Client-certificate outcomes with a pre-registered handle (rejections carry an IIS code).
const CERTIFICATE_OUTCOMES: [&str; 2] = ["absent", "valid"];

/// HTTP statuses whose `N.0` request counter is cached (100–599).
const STATUSES: std::ops::Range<u16> = 100..600;

/// One site's request-path metric handles.
///
/// `metrics::counter!` with labels builds a key, hashes it and probes the registry on every
/// call (about 5% of a proxied keep-alive request's instructions); a handle is a pointer to the
/// counter itself. Handles are registered on first use rather than at configuration load
/// because the recorder is installed when the server starts, after the first load; a handle
/// taken before that would count into nothing.
pub struct SiteMetrics {
    site: String,
    handles: OnceLock<Handles>,
}

struct Handles {
    /// `outcome="ok"` handshakes by kind (outer) and version (inner).
    handshakes: [[Counter; TLS_VERSIONS.len()]; HANDSHAKE_KINDS.len()],
    client_certificates: [Counter; CERTIFICATE_OUTCOMES.len()],
    mappings: [Counter; MAPPING_KINDS.len()],
    backend_errors: [Counter; BACKEND_ERROR_KINDS.len()],
    backend_seconds: Histogram,
    /// `status.0` counters, registered on first use of each status.
    requests: Box<[OnceLock<Counter>]>,
}

impl SiteMetrics {
    /// Handles for `site`, registered lazily.
    pub fn new(site: &str) -> Self {
        Self {
            site: site.to_owned(),
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            let site = &self.site;
            Handles {
                handshakes: HANDSHAKE_KINDS.map(|kind| {
                    TLS_VERSIONS.map(|version| {
                        metrics::counter!(TLS_HANDSHAKES, "site" => site.clone(), "outcome" => "ok",
                            "version" => version, "kind" => kind)
                    })
                }),
                client_certificates: CERTIFICATE_OUTCOMES.map(|outcome| {
                    metrics::counter!(CLIENT_CERTIFICATES, "site" => site.clone(), "outcome" => outcome)
                }),
                mappings: MAPPING_KINDS
                    .map(|kind| metrics::counter!(MAPPINGS, "site" => site.clone(), "kind" => kind)),
                backend_errors: BACKEND_ERROR_KINDS.map(
                    |kind| metrics::counter!(BACKEND_ERRORS, "site" => site.clone(), "kind" => kind),
                ),
                backend_seconds: metrics::histogram!(BACKEND_SECONDS, "site" => site.clone()),
                requests: STATUSES.map(|_| OnceLock::new()).collect(),
            }
        })
    }

    /// Counts an answered request by IIS code.
    pub fn request(&self, status: u16, substatus: u16) {
        let slot = (substatus == 0)
            .then(|| status.checked_sub(STATUSES.start))
            .flatten()
            .and_then(|i| self.handles().requests.get(usize::from(i)));
        let counter = |status: u16, substatus: u16| {
            metrics::counter!(REQUESTS, "site" => self.site.clone(),
                "code" => format!("{status}.{substatus}"))
        };
        match slot {
            Some(slot) => slot.get_or_init(|| counter(status, 0)).increment(1),
            None => counter(status, substatus).increment(1),
        }
    }

    /// Counts a completed handshake (`outcome="ok"`).
    pub fn handshake(&self, version: &'static str, resumed: bool) {
        let kind = usize::from(resumed);
        increment_among(
            &TLS_VERSIONS,
            &self.handles().handshakes[kind],
            version,
            || {
                metrics::counter!(TLS_HANDSHAKES, "site" => self.site.clone(), "outcome" => "ok",
                    "version" => version, "kind" => HANDSHAKE_KINDS[kind])
            },
        );
    }

    /// Counts a connection's client-certificate verdict: `absent`, `valid`, or an IIS code.
    pub fn client_certificate(&self, outcome: &str) {
        increment_among(
            &CERTIFICATE_OUTCOMES,
            &self.handles().client_certificates,
            outcome,
            || {
                metrics::counter!(CLIENT_CERTIFICATES, "site" => self.site.clone(),
                    "outcome" => outcome.to_owned())
            },
        );
    }

    /// Counts an authenticated request by mapping kind.
    pub fn mapping(&self, kind: &'static str) {
        self.count_kind(MAPPINGS, &MAPPING_KINDS, &self.handles().mappings, kind);
    }

    /// Counts a backend failure by kind.
    pub fn backend_error(&self, kind: &'static str) {
        self.count_kind(
            BACKEND_ERRORS,
            &BACKEND_ERROR_KINDS,
            &self.handles().backend_errors,
            kind,
        );
    }

    /// Increments the pre-registered `kind` counter of `metric`, or looks one up in the
    /// registry for a kind outside `kinds`.
    fn count_kind(
        &self,
        metric: &'static str,
        kinds: &[&str],
        handles: &[Counter],
        kind: &'static str,
    ) {
        increment_among(
            kinds,
            handles,
            kind,
            || metrics::counter!(metric, "site" => self.site.clone(), "kind" => kind),
        );
    }

    /// Records the backend's response-header latency.
    pub fn backend_latency(&self, elapsed: std::time::Duration) {
        self.handles().backend_seconds.record(elapsed.as_secs_f64());
    }
}

impl std::fmt::Debug for SiteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteMetrics")
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}
