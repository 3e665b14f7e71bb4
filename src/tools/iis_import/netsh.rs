//! The text of `netsh http show sslcert`, exactly as Windows prints it (English), into one
//! [`SslCertBinding`] per http.sys binding.
//!
//! IIS 7+ keeps the client-certificate revocation settings of a binding (`verifyclientcertrevocation`
//! and friends) in http.sys, not in applicationHost.config, so this dump is the only portable
//! record of them. The format is a header, then one block per binding: a key line (`IP:port`,
//! `Hostname:port` or `Central Certificate Store`) followed by `Name<padding>: value` lines, and
//! on newer Windows `Extended Properties:` sub-blocks (HTTP/2 settings). Names this parser does
//! not know (Windows keeps adding `Disable ...` lines) are kept as [`SslCertBinding::other`]; a
//! line that is not of that shape, or a known name with a value netsh would never print, is an
//! error naming the line, so a truncated or localised dump is never half-read.

use std::fmt;
use std::net::SocketAddr;

/// IIS's http.sys application id; bindings with another id belong to other programs.
pub const IIS_APP_ID: &str = "{4dc3e181-e14b-4a21-b022-59fc669b0914}";

/// What an http.sys binding is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `IP:port : 0.0.0.0:443` (0.0.0.0 / `[::]`: every address of that family).
    IpPort(SocketAddr),
    /// `Hostname:port : www.example.test:443` (an SNI binding); host in lower case.
    HostnamePort {
        /// Host name, lower case.
        host: String,
        /// Port.
        port: u16,
    },
    /// `Central Certificate Store : 443`.
    Ccs {
        /// Port.
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IpPort(addr) => write!(f, "IP:port {addr}"),
            Self::HostnamePort { host, port } => write!(f, "Hostname:port {host}:{port}"),
            Self::Ccs { port } => write!(f, "Central Certificate Store {port}"),
        }
    }
}

/// One binding of the dump, with http.sys's defaults where a line is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslCertBinding {
    /// The key line.
    pub endpoint: Endpoint,
    /// 1-based line of the key line.
    pub line: usize,
    /// `Certificate Hash` (thumbprint), when not `(null)`.
    pub certificate_hash: Option<String>,
    /// `Application ID`.
    pub application_id: Option<String>,
    /// `Certificate Store Name`.
    pub certificate_store: Option<String>,
    /// `Verify Client Certificate Revocation` (default enabled).
    pub verify_revocation: bool,
    /// `Verify Revocation Using Cached Client Certificate Only`.
    pub cached_only: bool,
    /// `Usage Check` (default enabled: the EKU is checked).
    pub usage_check: bool,
    /// `Use Revocation Freshness Time`, printed by newer Windows only.
    pub use_freshness_time: Option<bool>,
    /// `Revocation Freshness Time`, seconds.
    pub freshness_time_secs: u32,
    /// `URL Retrieval Timeout`, milliseconds (0: the Windows default).
    pub url_retrieval_timeout_ms: u32,
    /// `Ctl Identifier`.
    pub ctl_identifier: Option<String>,
    /// `Ctl Store Name`.
    pub ctl_store: Option<String>,
    /// `DS Mapper Usage`.
    pub ds_mapper: bool,
    /// `Negotiate Client Certificate`.
    pub negotiate_client_certificate: bool,
    /// Other `Name : value` lines of the binding (not its Extended Properties), with their line.
    pub other: Vec<(String, String, usize)>,
}

impl SslCertBinding {
    fn new(endpoint: Endpoint, line: usize) -> Self {
        Self {
            endpoint,
            line,
            certificate_hash: None,
            application_id: None,
            certificate_store: None,
            verify_revocation: true,
            cached_only: false,
            usage_check: true,
            use_freshness_time: None,
            freshness_time_secs: 0,
            url_retrieval_timeout_ms: 0,
            ctl_identifier: None,
            ctl_store: None,
            ds_mapper: false,
            negotiate_client_certificate: false,
            other: Vec::new(),
        }
    }
}

/// A dump that is not `netsh http show sslcert` output as Windows prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct NetshError {
    /// File name as given.
    pub file: String,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Decodes the file as Windows writes it: UTF-16 with a byte-order mark (PowerShell's `>`),
/// UTF-8 with or without one. `None` when it is neither.
pub fn decode(bytes: &[u8]) -> Option<String> {
    let utf16 = |rest: &[u8], le: bool| {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| match (c, le) {
                ([a, b], true) => u16::from_le_bytes([*a, *b]),
                ([a, b], false) => u16::from_be_bytes([*a, *b]),
                _ => 0xFFFF,
            })
            .collect();
        String::from_utf16(&units).ok()
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()).ok(),
        _ => String::from_utf8(bytes.to_vec()).ok(),
    }
}

/// Splits `Name<padding>: value` at the first colon that has blank (or the line's end) on both
/// sides; `IP:port` and `0.0.0.0:443` keep their own colons.
fn split_line(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .find(|&i| {
            bytes[i] == b':'
                && i > 0
                && bytes[i - 1].is_ascii_whitespace()
                && bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace)
        })
        .map(|i| (line[..i].trim(), line[i + 1..].trim()))
}

/// Parses the whole dump; at least one binding is required.
pub fn parse(text: &str, file: &str) -> Result<Vec<SslCertBinding>, NetshError> {
    let err = |line: usize, message: String| NetshError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut bindings: Vec<SslCertBinding> = Vec::new();
    // Known names already seen in the current binding, to refuse a repeated one.
    let mut seen: Vec<&'static str> = Vec::new();
    let mut in_extended = false;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.bytes().all(|b| b == b'-') {
            continue;
        }
        let Some((name, value)) = split_line(line) else {
            if line.eq_ignore_ascii_case("SSL Certificate bindings:") {
                continue;
            }
            if line.ends_with(':') && !bindings.is_empty() {
                // `Extended Properties:` and any future sub-block header of a binding.
                in_extended = true;
                continue;
            }
            return Err(err(
                n,
                format!(
                    "expected 'Name : value' as `netsh http show sslcert` prints it, found \
                     '{}'",
                    shown(line)
                ),
            ));
        };
        if let Some(endpoint) = endpoint(name, value).map_err(|m| err(n, m))? {
            bindings.push(SslCertBinding::new(endpoint, n));
            seen.clear();
            in_extended = false;
            continue;
        }
        let Some(b) = bindings.last_mut() else {
            return Err(err(
                n,
                format!(
                    "'{}' comes before any binding line (IP:port, Hostname:port or Central \
                     Certificate Store); give the English output of `netsh http show sslcert`",
                    shown(name)
                ),
            ));
        };
        if in_extended {
            continue;
        }
        let Some(key) = KNOWN.iter().copied().find(|k| k.eq_ignore_ascii_case(name)) else {
            b.other.push((name.to_owned(), value.to_owned(), n));
            continue;
        };
        if seen.contains(&key) {
            return Err(err(n, format!("'{key}' appears twice in one binding")));
        }
        seen.push(key);
        set(b, key, value).map_err(|m| err(n, format!("'{key}': {m}")))?;
    }
    if bindings.is_empty() {
        return Err(err(
            0,
            "no SSL certificate binding found (expected the output of `netsh http show sslcert`)"
                .into(),
        ));
    }
    Ok(bindings)
}

/// The names this parser gives a meaning to.
const KNOWN: &[&str] = &[
    "Certificate Hash",
    "Application ID",
    "Certificate Store Name",
    "Verify Client Certificate Revocation",
    "Verify Revocation Using Cached Client Certificate Only",
    "Usage Check",
    "Use Revocation Freshness Time",
    "Revocation Freshness Time",
    "URL Retrieval Timeout",
    "Ctl Identifier",
    "Ctl Store Name",
    "DS Mapper Usage",
    "Negotiate Client Certificate",
];

/// A binding's key line, `Ok(None)` for any other name.
fn endpoint(name: &str, value: &str) -> Result<Option<Endpoint>, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("'{}' is not a port number", shown(p)))
    };
    if name.eq_ignore_ascii_case("IP:port") {
        return value
            .parse::<SocketAddr>()
            .map(|a| Some(Endpoint::IpPort(a)))
            .map_err(|_| format!("IP:port '{}' is not an address and port", shown(value)));
    }
    if name.eq_ignore_ascii_case("Hostname:port") {
        let Some((host, p)) = value.rsplit_once(':') else {
            return Err(format!("Hostname:port '{}' has no port", shown(value)));
        };
        let host = host.trim();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!("Hostname:port '{}' has no host name", shown(value)));
        }
        return Ok(Some(Endpoint::HostnamePort {
            host: host.to_ascii_lowercase(),
            port: port(p.trim())?,
        }));
    }
    if name.eq_ignore_ascii_case("Central Certificate Store") {
        return Ok(Some(Endpoint::Ccs { port: port(value)? }));
    }
    Ok(None)
}

/// Stores a known line's value.
fn set(b: &mut SslCertBinding, key: &str, value: &str) -> Result<(), String> {
    let text = || (!value.is_empty() && value != "(null)").then(|| value.to_owned());
    match key {
        "Certificate Hash" => b.certificate_hash = text(),
        "Application ID" => b.application_id = text(),
        "Certificate Store Name" => b.certificate_store = text(),
        "Ctl Identifier" => b.ctl_identifier = text(),
        "Ctl Store Name" => b.ctl_store = text(),
        "Verify Client Certificate Revocation" => b.verify_revocation = on_off(value)?,
        "Verify Revocation Using Cached Client Certificate Only" => b.cached_only = on_off(value)?,
        "Usage Check" => b.usage_check = on_off(value)?,
        "Use Revocation Freshness Time" => b.use_freshness_time = Some(on_off(value)?),
        "DS Mapper Usage" => b.ds_mapper = on_off(value)?,
        "Negotiate Client Certificate" => b.negotiate_client_certificate = on_off(value)?,
        "Revocation Freshness Time" => b.freshness_time_secs = number(value)?,
        "URL Retrieval Timeout" => b.url_retrieval_timeout_ms = number(value)?,
        _ => {}
    }
    Ok(())
}

fn on_off(value: &str) -> Result<bool, String> {
    match value {
        v if v.eq_ignore_ascii_case("Enabled") || v.eq_ignore_ascii_case("Set") => Ok(true),
        v if v.eq_ignore_ascii_case("Disabled") || v.eq_ignore_ascii_case("Not Set") => Ok(false),
        other => Err(format!("'{}' is not Enabled or Disabled", shown(other))),
    }
}

fn number(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .map_err(|_| format!("'{}' is not a number", shown(value)))
}

/// A value as quoted in a message: at most 80 characters, control characters escaped.
fn shown(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(80) {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[path = "netsh_tests.rs"]
mod tests;
