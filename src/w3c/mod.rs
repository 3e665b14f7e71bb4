//! W3C extended log files exactly as IIS writes them, per site.
//!
//! IIS administrators' dashboards and parsers read `u_exYYMMDD.log` files in a `W3SVC<id>`
//! directory with a `#Software/#Version/#Date/#Fields` header block; certgate writes the same
//! bytes so those tools keep working. Configuration is IIS's `<logFile>` in snake_case
//! (`[log_file]` = `<siteDefaults>`, `[site.log_file]` overrides it key by key).
//!
//! Writing happens on one thread ([`writer`]) fed by a bounded channel, so the request path
//! never waits for the disk; buffers are flushed at rollover, after a second of quiet and at
//! shutdown ([`flush`]).

pub mod capture;
pub mod fields;
pub mod format;
pub mod writer;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use fields::{Field, IIS_DEFAULT_FLAGS};
pub use writer::{flush, submit};

/// The optional W3C custom field carrying certgate's reference id (a response header, in
/// W3C's `sc(Header)` form, so parsers that skip unknown fields are unaffected).
pub const REFERENCE_FIELD: &str = "sc(X-Certgate-Ref)";

/// `[log_file]` / `[site.log_file]`: IIS `<logFile>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogFile {
    /// Write W3C files for the site. Default true once a `log_file` section applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Parent directory; files go to `<directory>/W3SVC<id>/` (or the site name without an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// IIS `logExtFileFlags`, comma-separated IIS flag names. Default: IIS's default set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_ext_file_flags: Option<String>,
    /// IIS `period`: `Daily` (default), `Hourly`, `Weekly`, `Monthly` (`MaxSize`: see README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// IIS `localTimeRollover`; certgate rolls over at UTC boundaries (a warning when true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_time_rollover: Option<bool>,
    /// IIS `truncateSize`, only meaningful with `MaxSize` (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_size: Option<u64>,
    /// Append the reference id of refused requests as the custom field `sc(X-Certgate-Ref)`.
    /// Default false (the file then has exactly IIS's fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_field: Option<bool>,
}

impl RawLogFile {
    /// `site` over `defaults`, key by key, as IIS inherits `<siteDefaults><logFile>`.
    pub fn merged(defaults: Option<&Self>, site: Option<&Self>) -> Option<Self> {
        match (defaults, site) {
            (None, None) => None,
            (Some(d), None) => Some(d.clone()),
            (None, Some(s)) => Some(s.clone()),
            (Some(d), Some(s)) => Some(Self {
                enabled: s.enabled.or(d.enabled),
                directory: s.directory.clone().or_else(|| d.directory.clone()),
                log_ext_file_flags: s
                    .log_ext_file_flags
                    .clone()
                    .or_else(|| d.log_ext_file_flags.clone()),
                period: s.period.clone().or_else(|| d.period.clone()),
                local_time_rollover: s.local_time_rollover.or(d.local_time_rollover),
                truncate_size: s.truncate_size.or(d.truncate_size),
                reference_field: s.reference_field.or(d.reference_field),
            }),
        }
    }
}

/// IIS rollover periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `u_exYYMMDD.log`.
    Daily,
    /// `u_exYYMMDDHH.log`.
    Hourly,
    /// `u_exYYMMWW.log`.
    Weekly,
    /// `u_exYYMM.log`.
    Monthly,
}

/// A site's validated W3C logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteLog {
    /// The directory the files go to (`<directory>/W3SVC<id>`).
    pub directory: PathBuf,
    /// `s-sitename`: `W3SVC<id>`, or the site name without an id.
    pub service_name: String,
    /// `s-computername`.
    pub computer_name: String,
    /// Selected fields, in IIS order.
    pub fields: Vec<Field>,
    /// Rollover period.
    pub period: Period,
    /// Whether `sc(X-Certgate-Ref)` is appended.
    pub reference_field: bool,
}

/// One request as the W3C file records it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When the request finished (`date`, `time`, and the file it goes to).
    pub time: SystemTime,
    /// `s-ip`, `s-port`.
    pub server: SocketAddr,
    /// `c-ip`.
    pub client_ip: IpAddr,
    /// `cs-method`.
    pub method: String,
    /// `cs-uri-stem`.
    pub uri_stem: String,
    /// `cs-uri-query`.
    pub uri_query: Option<String>,
    /// `cs-username`.
    pub user_name: Option<String>,
    /// `cs-version` (`HTTP/1.1`).
    pub version: &'static str,
    /// `cs(User-Agent)`.
    pub user_agent: Option<String>,
    /// `cs(Cookie)`.
    pub cookie: Option<String>,
    /// `cs(Referer)`.
    pub referer: Option<String>,
    /// `cs-host`.
    pub host: Option<String>,
    /// `sc-status`.
    pub status: u16,
    /// `sc-substatus`.
    pub substatus: u16,
    /// `sc-win32-status`.
    pub win32_status: u32,
    /// `sc-bytes` (body bytes sent).
    pub bytes_sent: u64,
    /// `cs-bytes` (request header and declared body bytes).
    pub bytes_received: u64,
    /// `time-taken`, milliseconds.
    pub time_taken_ms: u64,
    /// The reference id of a refused request.
    pub reference: Option<String>,
}

/// Validation problems: `(key suffix, reason)`; warnings are plain text.
#[derive(Debug, Default)]
pub struct Issues {
    /// Errors, with the key below the section (`.period`).
    pub errors: Vec<(String, String)>,
    /// Warnings, like errors.
    pub warnings: Vec<(String, String)>,
}

/// Validates the effective `log_file` of a site. `None` when W3C logging is off.
pub fn build(
    raw: Option<&RawLogFile>,
    site_name: &str,
    site_id: Option<u32>,
    base: &Path,
    issues: &mut Issues,
) -> Option<SiteLog> {
    let raw = raw?;
    if raw.enabled == Some(false) {
        return None;
    }
    let mut err = |key: &str, reason: String| issues.errors.push((key.to_owned(), reason));
    let directory = match raw.directory.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => Some(base.join(d)),
        _ => {
            err(
                ".directory",
                "W3C logging needs a directory (IIS logFile@directory)".into(),
            );
            None
        }
    };
    let fields = match Field::parse_flags(
        raw.log_ext_file_flags
            .as_deref()
            .unwrap_or(IIS_DEFAULT_FLAGS),
    ) {
        Ok(f) => Some(f),
        Err(reason) => {
            err(".log_ext_file_flags", reason);
            None
        }
    };
    let period = match raw.period.as_deref().unwrap_or("Daily").trim() {
        p if p.eq_ignore_ascii_case("daily") => Some(Period::Daily),
        p if p.eq_ignore_ascii_case("hourly") => Some(Period::Hourly),
        p if p.eq_ignore_ascii_case("weekly") => Some(Period::Weekly),
        p if p.eq_ignore_ascii_case("monthly") => Some(Period::Monthly),
        p if p.eq_ignore_ascii_case("maxsize") => {
            issues.warnings.push((
                ".period".into(),
                "MaxSize rollover is not supported; certgate rolls over daily".into(),
            ));
            Some(Period::Daily)
        }
        other => {
            err(
                ".period",
                format!("unknown period `{other}` (IIS periods: Daily, Hourly, Weekly, Monthly)"),
            );
            None
        }
    };
    if raw.local_time_rollover == Some(true) {
        issues.warnings.push((
            ".local_time_rollover".into(),
            "certgate rolls over at UTC boundaries; times in the file are UTC either way".into(),
        ));
    }
    let service_name = match site_id {
        Some(id) => format!("W3SVC{id}"),
        None => site_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    };
    Some(SiteLog {
        directory: directory?.join(&service_name),
        service_name,
        computer_name: computer_name(),
        fields: fields?,
        period: period?,
        reference_field: raw.reference_field.unwrap_or(false),
    })
}

fn computer_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "certgate".into())
}

#[cfg(test)]
mod tests;
