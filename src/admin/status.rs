//! The status page's data: sites and bindings, certificates and their expiry, trusted CAs,
//! mapping counts, directory health, revocation sources, reload history and the last denials.
//! Served as JSON here and as HTML by [`super::status_html`]; both come from one
//! [`StatusReport`], so they never disagree.
//!
//! Nothing secret is collected: no passwords, no certificate bodies (denials keep the leaf DER
//! in memory only to re-run `explain`), no private keys.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{Runtime, Site};
use crate::denials::Denial;
use crate::mapping::many_to_one::Permission;
pub use crate::reload_history::{ReloadEvent, ReloadHistory, rfc3339};
use crate::state::Shared;

/// Denials shown on the page.
pub const DENIALS_SHOWN: usize = 50;

/// A certificate the site depends on.
#[derive(Debug, Serialize)]
pub struct CertStatus {
    /// Subject, IIS display order.
    pub subject: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: i64,
}

/// A location's effective settings.
#[derive(Debug, Serialize)]
pub struct LocationStatus {
    /// `/` for the site root.
    pub path: String,
    /// Effective `ssl_flags`.
    pub ssl_flags: String,
    /// Effective anonymous access.
    pub anonymous_authentication: bool,
    /// Whether the IIS mapper is on here.
    pub mapper_enabled: bool,
}

/// Mapping counts by kind, over every distinct mapper section of a site.
#[derive(Debug, Default, Serialize)]
pub struct MappingCounts {
    /// Enabled one-to-one entries.
    pub one_to_one: usize,
    /// Many-to-one mappings with `permission_mode = "Allow"`.
    pub many_to_one_allow: usize,
    /// Many-to-one mappings with `permission_mode = "Deny"`.
    pub many_to_one_deny: usize,
    /// Scopes that map with Active Directory (`altSecurityIdentities`).
    pub active_directory_scopes: usize,
}

/// A revocation source's health (CRL file, OCSP responder, CRL distribution point).
#[derive(Debug, Serialize)]
pub struct SourceHealth {
    /// What it is (a file name or URL).
    pub source: String,
    /// `ok`, `stale`, `unreachable`, ...
    pub state: String,
    /// Free text: last update, next update, last error.
    pub detail: String,
}

/// One site.
#[derive(Debug, Serialize)]
pub struct SiteStatus {
    /// IIS site name.
    pub name: String,
    /// IIS site id.
    pub id: Option<u32>,
    /// Binding host names (empty: catch-all).
    pub host_names: Vec<String>,
    /// Backend base URL (scheme and authority).
    pub backend: String,
    /// Locations, site root last.
    pub locations: Vec<LocationStatus>,
    /// Server certificate chain, leaf first.
    pub server_certificates: Vec<CertStatus>,
    /// Client trust anchors.
    pub trusted_cas: Vec<CertStatus>,
    /// Mapping counts.
    pub mappings: MappingCounts,
    /// Revocation source health (see [`revocation_sources`]).
    pub revocation: Vec<SourceHealth>,
    /// Where W3C files go, when enabled.
    pub w3c_directory: Option<String>,
}

/// Directory (Active Directory) health.
#[derive(Debug, Serialize)]
pub struct DirectoryStatus {
    /// `reachable` or `unreachable: ...`.
    pub probe: String,
    /// Operations that failed since start.
    pub failures: u64,
    /// Connections made.
    pub connects: u64,
    /// Searches sent.
    pub searches: u64,
    /// Answers from the cache.
    pub cache_hits: u64,
}

/// A denial as shown (no certificate body).
#[derive(Debug, Serialize)]
pub struct DenialView {
    /// RFC 3339.
    pub time: String,
    /// Reference id.
    pub reference: String,
    /// Site name.
    pub site: String,
    /// Request path.
    pub path: String,
    /// `status.substatus`.
    pub code: String,
    /// Client address.
    pub client_ip: String,
    /// Certificate subject.
    pub subject: Option<String>,
    /// Certificate SHA-1 thumbprint.
    pub thumbprint: Option<String>,
}

impl From<&Denial> for DenialView {
    fn from(d: &Denial) -> Self {
        Self {
            time: rfc3339(d.time),
            reference: d.reference.to_string(),
            site: d.site.clone(),
            path: d.path.clone(),
            code: d.code(),
            client_ip: d.client_ip.to_string(),
            subject: d.subject.clone(),
            thumbprint: d.thumbprint.clone(),
        }
    }
}

/// Everything the status page shows.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// When the report was made, RFC 3339.
    pub generated_at: String,
    /// certgate version.
    pub version: &'static str,
    /// Ready for traffic.
    pub ready: bool,
    /// The configuration file.
    pub config: String,
    /// HTTPS listeners (the bindings' addresses).
    pub listen: Vec<String>,
    /// Sites in file order.
    pub sites: Vec<SiteStatus>,
    /// Directory health, when `[directory]` is configured.
    pub directory: Option<DirectoryStatus>,
    /// Configuration loads, newest first.
    pub reloads: Vec<ReloadEvent>,
    /// The last denials, newest first.
    pub denials: Vec<DenialView>,
}

fn cert_statuses(not_after: &[i64], subjects: &[String], now: i64) -> Vec<CertStatus> {
    not_after
        .iter()
        .zip(subjects)
        .map(|(&na, subject)| CertStatus {
            subject: subject.clone(),
            not_after: u64::try_from(na).map_or_else(
                |_| na.to_string(),
                |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s)),
            ),
            days_left: (na - now).div_euclid(86_400),
        })
        .collect()
}

fn mapping_counts(site: &Site) -> MappingCounts {
    let mut counts = MappingCounts::default();
    let mut seen = HashSet::new();
    for scope in &site.scopes {
        if scope.directory.certificate_mapping.is_some() {
            counts.active_directory_scopes += 1;
        }
        if !seen.insert(Arc::as_ptr(&scope.mapper) as usize) {
            continue;
        }
        counts.one_to_one += scope.mapper.one_to_one.len();
        for m in scope.mapper.many_to_one.mappings() {
            match m.permission() {
                Permission::Deny => counts.many_to_one_deny += 1,
                Permission::Allow => counts.many_to_one_allow += 1,
            }
        }
    }
    counts
}

/// Revocation source health for a site.
///
/// Extension point: CRLs are read and checked at configuration load today, so there is no
/// runtime state to report and this returns nothing. A revocation subsystem with live sources
/// (OCSP responders, CRL distribution points fetched at runtime) reports them here, one
/// [`SourceHealth`] each; the HTML and JSON pages render whatever this returns.
pub fn revocation_sources(_site: &Site) -> Vec<SourceHealth> {
    Vec::new()
}

fn site_status(site: &Site, now: i64) -> SiteStatus {
    let expiry = &site.certificate_expiry;
    SiteStatus {
        name: site.name.clone(),
        id: site.id,
        host_names: site.host_names.clone(),
        backend: format!(
            "{}://{}{}",
            site.backend.scheme, site.backend.authority, site.backend.prefix
        ),
        locations: site
            .scopes
            .iter()
            .map(|s| LocationStatus {
                path: s.path.clone(),
                ssl_flags: s.ssl_flags.to_string(),
                anonymous_authentication: s.anonymous,
                mapper_enabled: s.mapper.enabled,
            })
            .collect(),
        server_certificates: cert_statuses(&expiry.server, &expiry.server_subjects, now),
        trusted_cas: cert_statuses(&expiry.client_ca, &expiry.client_ca_subjects, now),
        mappings: mapping_counts(site),
        revocation: revocation_sources(site),
        w3c_directory: site.w3c.as_ref().map(|w| w.directory.display().to_string()),
    }
}

async fn directory_status(runtime: &Runtime) -> Option<DirectoryStatus> {
    let directory = runtime.directory.as_ref()?;
    let probe = match tokio::time::timeout(Duration::from_secs(2), directory.probe()).await {
        Ok(Ok(())) => "reachable".to_owned(),
        Ok(Err(e)) => format!("unreachable: {e}"),
        Err(_) => "unreachable: no answer within 2s".to_owned(),
    };
    let stats = directory.stats();
    Some(DirectoryStatus {
        probe,
        failures: stats.failures,
        connects: stats.connects,
        searches: stats.searches,
        cache_hits: stats.cache_hits,
    })
}

/// Builds the report from the current configuration and the server's memory.
pub async fn report(shared: &Shared) -> StatusReport {
    let runtime = shared.runtime();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    StatusReport {
        generated_at: rfc3339(SystemTime::now()),
        version: env!("CARGO_PKG_VERSION"),
        ready: shared.is_ready(),
        config: runtime.source.display().to_string(),
        listen: shared.listening.iter().map(ToString::to_string).collect(),
        sites: runtime.sites.iter().map(|s| site_status(s, now)).collect(),
        directory: directory_status(&runtime).await,
        reloads: shared.reloads.newest_first(),
        denials: shared
            .denials
            .latest(DENIALS_SHOWN)
            .iter()
            .map(DenialView::from)
            .collect(),
    }
}
