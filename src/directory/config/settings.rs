//! `[directory]` validated: endpoints with their transport, the pinned TLS client
//! configuration, the service account and the pool, cache and timeout limits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::{ConfigIssue, RawDirectory};
use crate::directory::filter::normalize_dn;
use crate::secret::{self, Secret};

/// How one URL is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with the StartTLS extended operation before anything else.
    StartTls,
    /// `ldap://` in clear; only with `allow_plaintext`.
    Plain,
}

/// One directory server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured (scheme, host, optional port).
    pub url: String,
    /// How the connection is protected.
    pub transport: Transport,
}

/// Validated `[directory]`.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// Servers in preference order.
    pub endpoints: Vec<Endpoint>,
    /// TLS client configuration pinned to the configured CA; `None` only when every endpoint
    /// is plaintext.
    pub tls: Option<Arc<ClientConfig>>,
    /// Service account name.
    pub bind_dn: String,
    /// Service account password.
    pub bind_password: Secret,
    /// Search base.
    pub base_dn: String,
    /// Accepted domain prefixes for `DOMAIN\user`, lowercased; empty accepts any.
    pub domains: Vec<String>,
    /// Per-operation limit.
    pub timeout: Duration,
    /// Per-URL connect limit.
    pub connect_timeout: Duration,
    /// Positive-answer lifetime.
    pub cache_ttl: Duration,
    /// Negative-answer lifetime.
    pub negative_cache_ttl: Duration,
    /// Maximum cached answers.
    pub cache_capacity: u64,
    /// Service connections.
    pub pool_size: usize,
    /// Concurrent user binds.
    pub max_concurrent_binds: usize,
    /// How long a failed URL is skipped.
    pub retry_dead_after: Duration,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(30);
const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
const DEFAULT_POOL_SIZE: usize = 4;
const MAX_POOL_SIZE: usize = 32;
const DEFAULT_MAX_CONCURRENT_BINDS: usize = 8;
const DEFAULT_RETRY_DEAD_AFTER: Duration = Duration::from_secs(30);

impl DirectorySettings {
    /// Validates `raw` found at `key` (normally `"directory"`). Relative file paths resolve
    /// against `base_dir` (the config file's directory); the password variable is read from the
    /// process environment.
    pub fn from_raw(
        raw: &RawDirectory,
        base_dir: &Path,
        key: &str,
    ) -> Result<Self, Vec<ConfigIssue>> {
        Self::from_raw_with_env(raw, base_dir, key, |name| std::env::var(name).ok())
    }

    /// [`Self::from_raw`] with an explicit environment lookup, so callers and tests need not
    /// mutate the process environment.
    pub fn from_raw_with_env(
        raw: &RawDirectory,
        base_dir: &Path,
        key: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let k = |field: &str| format!("{key}.{field}");
        let starttls = raw.starttls.unwrap_or(false);
        let allow_plaintext = raw.allow_plaintext.unwrap_or(false);

        if raw.urls.is_empty() {
            issues.push(ConfigIssue::new(
                k("urls"),
                "at least one ldaps:// or ldap:// URL is required",
            ));
        }
        let mut endpoints = Vec::new();
        for (i, url) in raw.urls.iter().enumerate() {
            match parse_url(url, starttls, allow_plaintext) {
                Ok(endpoint) => endpoints.push(endpoint),
                Err(reason) => issues.push(ConfigIssue::new(format!("{key}.urls[{i}]"), reason)),
            }
        }
        let needs_tls = endpoints.iter().any(|e| e.transport != Transport::Plain);
        let tls = match (&raw.ca, needs_tls) {
            (Some(ca), _) => match load_tls(&resolve(base_dir, ca)) {
                Ok(config) => Some(config),
                Err(reason) => {
                    issues.push(ConfigIssue::new(k("ca"), reason));
                    None
                }
            },
            (None, true) => {
                issues.push(ConfigIssue::new(
                    k("ca"),
                    "required for ldaps:// and StartTLS: the CA that issued the domain \
                     controllers' certificates (system roots are never used for LDAP)",
                ));
                None
            }
            (None, false) => None,
        };

        if raw.bind_dn.trim().is_empty() {
            issues.push(ConfigIssue::new(
                k("bind_dn"),
                "required: the service account used for lookups (AD refuses anonymous searches)",
            ));
        }
        let bind_password = match (&raw.bind_password_env, &raw.bind_password_file) {
            (Some(_), Some(_)) => {
                issues.push(ConfigIssue::new(
                    k("bind_password_env"),
                    "set either bind_password_env or bind_password_file, not both",
                ));
                None
            }
            (None, None) => {
                issues.push(ConfigIssue::new(
                    k("bind_password_env"),
                    "required (or bind_password_file): the password is never written in the file",
                ));
                None
            }
            (Some(var), None) => secret::from_env_with(var, &env)
                .map_err(|e| issues.push(ConfigIssue::new(k("bind_password_env"), e.to_string())))
                .ok(),
            (None, Some(file)) => secret::from_file(&resolve(base_dir, file))
                .map_err(|e| issues.push(ConfigIssue::new(k("bind_password_file"), e.to_string())))
                .ok(),
        };

        let base_dn = raw.base_dn.trim();
        if base_dn.is_empty() || normalize_dn(base_dn).is_none() {
            issues.push(ConfigIssue::new(
                k("base_dn"),
                "required: a DN such as DC=example,DC=test",
            ));
        }
        let mut domains = Vec::new();
        if let Some(domain) = &raw.domain {
            let domain = domain.trim();
            if domain.is_empty() || domain.contains(['\\', '@', '/']) {
                issues.push(ConfigIssue::new(
                    k("domain"),
                    "a NetBIOS domain name such as EXAMPLE",
                ));
            } else {
                domains.push(domain.to_lowercase());
                domains.push(dns_domain(base_dn));
            }
        }

        let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            issues.push(ConfigIssue::new(k("timeout"), "must be greater than zero"));
        }
        let connect_timeout = raw.connect_timeout.unwrap_or(timeout);
        if connect_timeout.is_zero() {
            issues.push(ConfigIssue::new(
                k("connect_timeout"),
                "must be greater than zero",
            ));
        }
        let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
            issues.push(ConfigIssue::new(
                k("pool_size"),
                format!("must be between 1 and {MAX_POOL_SIZE}"),
            ));
        }
        let max_concurrent_binds = raw
            .max_concurrent_binds
            .unwrap_or(DEFAULT_MAX_CONCURRENT_BINDS);
        if max_concurrent_binds == 0 {
            issues.push(ConfigIssue::new(
                k("max_concurrent_binds"),
                "must be at least 1",
            ));
        }
        let cache_capacity = raw.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY);

        match (issues.is_empty(), bind_password) {
            (true, Some(bind_password)) => Ok(Self {
                endpoints,
                tls,
                bind_dn: raw.bind_dn.trim().to_owned(),
                bind_password,
                base_dn: base_dn.to_owned(),
                domains,
                timeout,
                connect_timeout,
                cache_ttl: raw.cache_ttl.unwrap_or(DEFAULT_CACHE_TTL),
                negative_cache_ttl: raw.negative_cache_ttl.unwrap_or(DEFAULT_NEGATIVE_CACHE_TTL),
                cache_capacity,
                pool_size,
                max_concurrent_binds,
                retry_dead_after: raw.retry_dead_after.unwrap_or(DEFAULT_RETRY_DEAD_AFTER),
            }),
            _ => Err(issues),
        }
    }
}

/// Relative paths are relative to the config file, not to the working directory.
fn resolve(base_dir: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

/// `DC=example,DC=test` → `example.test`, the DNS domain that `EXAMPLE.TEST\user` names use.
fn dns_domain(base_dn: &str) -> String {
    normalize_dn(base_dn)
        .unwrap_or_default()
        .split(',')
        .filter_map(|rdn| rdn.strip_prefix("dc="))
        .collect::<Vec<_>>()
        .join(".")
}

/// Accepts `scheme://host[:port][/]`; an LDAP URL's DN, attribute or filter parts would be
/// silently ignored, so they are refused.
fn parse_url(url: &str, starttls: bool, allow_plaintext: bool) -> Result<Endpoint, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("{url:?} is not a URL; expected ldaps://host:636 or ldap://host:389")
    })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '@', ' ']) {
        return Err(format!(
            "{url:?}: expected only a host and an optional port"
        ));
    }
    if authority.starts_with('[') {
        return Err(format!(
            "{url:?}: IPv6 literals are not supported; use a host name"
        ));
    }
    if let Some((host, port)) = authority.rsplit_once(':')
        && (host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0))
    {
        return Err(format!("{url:?}: invalid host or port"));
    }
    let transport = match scheme.to_ascii_lowercase().as_str() {
        "ldaps" if starttls => {
            return Err(format!(
                "{url:?}: starttls applies to ldap:// URLs; ldaps:// is already TLS"
            ));
        }
        "ldaps" => Transport::Ldaps,
        "ldap" if starttls => Transport::StartTls,
        "ldap" if allow_plaintext => Transport::Plain,
        "ldap" => {
            return Err(format!(
                "{url:?}: plain LDAP would send passwords in clear; use ldaps://, set \
                 starttls = true, or (lab only) allow_plaintext = true"
            ));
        }
        other => {
            return Err(format!(
                "{url:?}: unsupported scheme {other:?}; expected ldaps or ldap"
            ));
        }
    };
    Ok(Endpoint {
        url: format!("{}://{authority}", scheme.to_ascii_lowercase()),
        transport,
    })
}

/// A client config that trusts exactly the configured CA, with certgate's one crypto provider.
fn load_tls(path: &Path) -> Result<Arc<ClientConfig>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        // Not PEM: accept a single DER certificate, as Windows exports it.
        certs.push(CertificateDer::from(bytes));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn raw() -> RawDirectory {
        RawDirectory {
            urls: vec![
                "ldaps://dc1.example.test:636".into(),
                "ldaps://dc2.example.test".into(),
            ],
            ca: Some("ca.pem".into()),
            bind_dn: "svc@example.test".into(),
            bind_password_env: Some("PW".into()),
            base_dn: "DC=example,DC=test".into(),
            ..RawDirectory::default()
        }
    }

    fn env(name: &str) -> Option<String> {
        (name == "PW").then(|| "s3cret".to_owned())
    }

    fn ca_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("pw.txt"), "from-file\n").unwrap();
        dir
    }

    fn keys(issues: &[ConfigIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.key.as_str()).collect()
    }

    #[test]
    fn accepts_a_complete_section() {
        let dir = ca_dir();
        let s = DirectorySettings::from_raw_with_env(&raw(), dir.path(), "directory", env).unwrap();
        assert_eq!(s.endpoints.len(), 2);
        assert_eq!(s.endpoints[0].transport, Transport::Ldaps);
        assert_eq!(s.endpoints[1].url, "ldaps://dc2.example.test");
        assert!(s.tls.is_some());
        assert_eq!(s.bind_password.expose(), "s3cret");
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.connect_timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.cache_ttl, Duration::from_secs(300));
        assert!(s.domains.is_empty());
        // The password never shows in Debug output.
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn file_password_and_relative_paths() {
        let dir = ca_dir();
        let mut r = raw();
        r.bind_password_env = None;
        r.bind_password_file = Some("pw.txt".into());
        let s = DirectorySettings::from_raw_with_env(&r, dir.path(), "directory", env).unwrap();
        assert_eq!(s.bind_password.expose(), "from-file");
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let dir = ca_dir();
        let r = RawDirectory {
            urls: vec![
                "ldap://dc1:389".into(),
                "ldaps://dc2:0".into(),
                "http://dc3".into(),
                "ldaps://dc4/DC=x".into(),
            ],
            ca: Some("missing.pem".into()),
            bind_password_env: Some("UNSET".into()),
            bind_password_file: None,
            pool_size: Some(0),
            ..RawDirectory::default()
        };
        let issues =
            DirectorySettings::from_raw_with_env(&r, dir.path(), "directory", env).unwrap_err();
        assert_eq!(
            keys(&issues),
            [
                "directory.urls[0]",
                "directory.urls[1]",
                "directory.urls[2]",
                "directory.urls[3]",
                "directory.ca",
                "directory.bind_dn",
                "directory.bind_password_env",
                "directory.base_dn",
                "directory.pool_size",
            ]
        );
        assert!(
            issues[0].reason.contains("allow_plaintext"),
            "{}",
            issues[0]
        );
        assert!(issues[6].reason.contains("UNSET"));
    }

    #[test]
    fn transport_rules() {
        assert_eq!(
            parse_url("ldap://dc:389", true, false).unwrap().transport,
            Transport::StartTls
        );
        assert_eq!(
            parse_url("ldap://dc", false, true).unwrap().transport,
            Transport::Plain
        );
        assert!(parse_url("ldaps://dc", true, false).is_err());
        assert!(parse_url("ldap://dc", false, false).is_err());
        assert!(parse_url("ldaps://[::1]:636", false, false).is_err());
        assert_eq!(
            parse_url("LDAPS://DC1:636/", false, false).unwrap().url,
            "ldaps://DC1:636"
        );

        // TLS needs a CA; plaintext alone does not.
        let dir = ca_dir();
        let mut r = raw();
        r.ca = None;
        let issues = DirectorySettings::from_raw_with_env(&r, dir.path(), "d", env).unwrap_err();
        assert_eq!(keys(&issues), ["d.ca"]);
        r.urls = vec!["ldap://dc:389".into()];
        r.allow_plaintext = Some(true);
        let s = DirectorySettings::from_raw_with_env(&r, dir.path(), "d", env).unwrap();
        assert!(s.tls.is_none());
    }

    #[test]
    fn domains_include_the_dns_name() {
        let dir = ca_dir();
        let mut r = raw();
        r.domain = Some("EXAMPLE".into());
        let s = DirectorySettings::from_raw_with_env(&r, dir.path(), "d", env).unwrap();
        assert_eq!(s.domains, ["example", "example.test"]);
    }
}
