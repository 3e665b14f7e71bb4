//! The `/metrics` page: the recorder's exposition text, with the clock-dependent gauges
//! (certificate expiry) refreshed from the current configuration first.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Runtime;
use crate::metrics::{CERTIFICATE_EXPIRY, handle};

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
