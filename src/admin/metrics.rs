//! Prometheus metrics: names, the recorder, and gauges computed at scrape time.
//!
//! Every label is bounded by configuration or by code: site names, outcomes, IIS codes, kinds.
//! Never a user, a DN, a path or an address, which would make cardinality unbounded and put
//! personal data into a monitoring system.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::Runtime;

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

/// Renders the exposition text, refreshing the gauges that depend on the clock first.
pub fn render(runtime: &Runtime) -> Option<String> {
    let handle = handle()?;
    refresh_certificate_expiry(runtime);
    handle.run_upkeep();
    Some(handle.render())
}

fn refresh_certificate_expiry(runtime: &Runtime) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for site in &runtime.sites {
        for (kind, list) in [
            ("server", &site.certificate_expiry.server),
            ("client_ca", &site.certificate_expiry.client_ca),
        ] {
            for (index, not_after) in list.iter().enumerate() {
                metrics::gauge!(
                    CERTIFICATE_EXPIRY,
                    "site" => site.name.clone(),
                    "kind" => kind,
                    "index" => index.to_string()
                )
                .set((not_after - now) as f64);
            }
        }
    }
}
