//! `[directory]` and `[site.directory]`: the TOML shape and its validated form.
//!
//! The raw types are plain serde data so the top-level loader can report every problem in one
//! pass; [`DirectorySettings::from_raw`] and [`SitePolicy::from_raw`] turn them into values that
//! cannot describe an unsafe setup (no TLS without a pinned CA, no plaintext without an explicit
//! opt-in, no secret inline in the file). Problems come back as [`ConfigIssue`]s that name the key
//! path, so `certgate check` can list them all at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::filter::normalize_dn;
use super::secret::Secret;

/// `[directory]`: how to reach Active Directory. One per process; sites choose what to check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    /// `ldaps://host:636` or `ldap://host:389` URLs, tried in order: the first is preferred and
    /// the next ones are failovers. A URL that fails is skipped for `retry_dead_after`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// PEM (or DER) file with the CA certificate(s) that issued the DCs' certificates. Required
    /// for `ldaps://` and StartTLS; system roots are never used for LDAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Upgrade `ldap://` URLs with StartTLS. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
    /// Allow `ldap://` without StartTLS: passwords then cross the network in clear. Default
    /// false; meant for lab setups only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_plaintext: Option<bool>,
    /// Service account certgate binds as for lookups: a DN, UPN or `DOMAIN\name`.
    #[serde(default)]
    pub bind_dn: String,
    /// Environment variable holding the service account's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_env: Option<String>,
    /// File holding the service account's password (one line; a trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<String>,
    /// Where users and groups are searched, e.g. `DC=example,DC=test`.
    #[serde(default)]
    pub base_dn: String,
    /// NetBIOS domain name (`EXAMPLE`). When set, `OTHER\user` names are refused instead of
    /// being looked up by their `user` part. The DNS name derived from `base_dn` is always
    /// accepted as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Limit for each LDAP operation (search, bind). Default 3s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Limit for TCP connect plus TLS (and StartTLS) handshake per URL. Default: `timeout`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// How long positive answers (account usable, password right, certificate mapped) are
    /// reused. Default 5m. They are also what is served while the directory is unreachable.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_ttl: Option<Duration>,
    /// How long negative answers (no such user, disabled, bad password, ...) are reused.
    /// Default 30s. Caching bad passwords keeps a stale mapping password from locking the
    /// account out.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub negative_cache_ttl: Option<Duration>,
    /// Maximum cached answers. Default 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_capacity: Option<u64>,
    /// Service-account connections kept open. Default 4, at most 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Password checks (one dedicated connection each) allowed at once. Default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_binds: Option<usize>,
    /// How long a URL that failed to connect is skipped while another one works. Default 30s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_dead_after: Option<Duration>,
}

/// `[site.directory]` and `[site.location.directory]`: what to check for users of this scope.
/// In a location every absent key inherits the enclosing scope's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteDirectory {
    /// `"none"` (default), `"account"` (the account exists, is enabled, not locked or expired;
    /// read with the service account) or `"credentials"` (additionally bind as the user with the
    /// mapping's password, as IIS `LogonUser` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// Group DNs; the user must be a member of at least one, directly or through nested groups
    /// (including the primary group). Needs `verify` other than `"none"`. Empty: no requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_groups: Option<Vec<String>>,
    /// IIS `clientCertificateMappingAuthentication` (the Active Directory mapper): find the user
    /// whose `altSecurityIdentities` names the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_mapping: Option<RawCertificateMapping>,
}

/// `[site.directory.certificate_mapping]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificateMapping {
    /// Turns the AD mapper on. Default false, as in IIS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Weak mapping forms to accept besides the strong ones (KB5014754): `"issuer_subject"`
    /// (`X509:<I>..<S>..`), `"subject"` (`X509:<S>..`), `"rfc822"` (`X509:<RFC822>..`), `"upn"`
    /// (SAN UPN = `userPrincipalName`). Default none: strong mappings only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak: Option<Vec<String>>,
}

/// One configuration problem: the dotted key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Key path, e.g. `directory.urls[1]` or `site[0].directory.verify`.
    pub key: String,
    /// Why the value is refused.
    pub reason: String,
}

impl ConfigIssue {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

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
            (Some(var), None) => match env(var) {
                Some(value) if !value.is_empty() => Some(Secret::new(value)),
                Some(_) => {
                    issues.push(ConfigIssue::new(
                        k("bind_password_env"),
                        format!("environment variable {var} is empty"),
                    ));
                    None
                }
                None => {
                    issues.push(ConfigIssue::new(
                        k("bind_password_env"),
                        format!("environment variable {var} is not set"),
                    ));
                    None
                }
            },
            (None, Some(file)) => {
                let path = resolve(base_dir, file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let value = text.strip_suffix('\n').unwrap_or(&text);
                        let value = value.strip_suffix('\r').unwrap_or(value);
                        if value.is_empty() {
                            issues.push(ConfigIssue::new(
                                k("bind_password_file"),
                                format!("{} is empty", path.display()),
                            ));
                            None
                        } else {
                            Some(Secret::new(value))
                        }
                    }
                    Err(e) => {
                        issues.push(ConfigIssue::new(
                            k("bind_password_file"),
                            format!("cannot read {}: {e}", path.display()),
                        ));
                        None
                    }
                }
            }
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

/// What to check for a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyMode {
    /// Read the account with the service account: exists, enabled, not locked out, password
    /// neither expired nor to be changed, account not expired.
    Account,
    /// [`VerifyMode::Account`] plus a simple bind as the user with the mapping's password: the
    /// `LogonUser` equivalent.
    Credentials,
}

/// A group DN from the configuration, kept with its comparison form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDn {
    /// As written in the configuration.
    pub dn: String,
    pub(crate) normalized: String,
}

impl GroupDn {
    /// Parses a group DN; `None` when it is not a DN.
    pub fn parse(dn: &str) -> Option<Self> {
        Some(Self {
            normalized: normalize_dn(dn)?,
            dn: dn.trim().to_owned(),
        })
    }
}

/// Directory checks for a scope with `verify` other than `"none"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// What to check.
    pub mode: VerifyMode,
    /// Any-of group requirement; empty means none.
    pub require_groups: Vec<GroupDn>,
}

/// Which `altSecurityIdentities` forms identify a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AltSecPolicy {
    /// Accept `X509:<I>issuer<S>subject`.
    pub issuer_subject: bool,
    /// Accept `X509:<S>subject`.
    pub subject: bool,
    /// Accept `X509:<RFC822>email` from the SAN.
    pub rfc822: bool,
    /// Accept the SAN UPN matched against `userPrincipalName`.
    pub upn: bool,
}

impl AltSecPolicy {
    /// Strong forms only (the default, and what Windows enforces since 2025).
    pub const STRONG_ONLY: Self = Self {
        issuer_subject: false,
        subject: false,
        rfc822: false,
        upn: false,
    };

    pub(crate) fn bits(self) -> u8 {
        u8::from(self.issuer_subject)
            | u8::from(self.subject) << 1
            | u8::from(self.rfc822) << 2
            | u8::from(self.upn) << 3
    }
}

/// Validated `[site.directory]` for one scope (site or location).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitePolicy {
    /// `None` for `verify = "none"`.
    pub verification: Option<Verification>,
    /// `Some` when the AD certificate mapper is on.
    pub certificate_mapping: Option<AltSecPolicy>,
}

impl SitePolicy {
    /// Validates `raw` at `key` (e.g. `site[0].directory`). For a location pass the site's
    /// policy as `parent`: keys absent from `raw` inherit from it.
    pub fn from_raw(
        raw: Option<&RawSiteDirectory>,
        parent: Option<&SitePolicy>,
        key: &str,
    ) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let inherited = parent.cloned().unwrap_or_default();
        let empty = RawSiteDirectory::default();
        let raw = raw.unwrap_or(&empty);

        let mut verify_invalid = false;
        let mode = match raw
            .verify
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => inherited.verification.as_ref().map(|v| v.mode),
            Some("none") => None,
            Some("account") => Some(VerifyMode::Account),
            Some("credentials") => Some(VerifyMode::Credentials),
            Some(other) => {
                verify_invalid = true;
                issues.push(ConfigIssue::new(
                    format!("{key}.verify"),
                    format!(
                        "unknown value {other:?}; expected \"none\", \"account\" or \"credentials\""
                    ),
                ));
                None
            }
        };
        let require_groups = match &raw.require_groups {
            None => inherited
                .verification
                .as_ref()
                .map(|v| v.require_groups.clone())
                .unwrap_or_default(),
            Some(groups) => {
                let mut parsed = Vec::new();
                for (i, dn) in groups.iter().enumerate() {
                    match GroupDn::parse(dn) {
                        Some(group) => parsed.push(group),
                        None => issues.push(ConfigIssue::new(
                            format!("{key}.require_groups[{i}]"),
                            format!("{dn:?} is not a DN; write the group's full DN, e.g. CN=Staff,OU=Groups,DC=example,DC=test"),
                        )),
                    }
                }
                parsed
            }
        };
        // An invalid `verify` is already reported; do not add a second issue for the same cause.
        if mode.is_none()
            && !verify_invalid
            && raw.require_groups.as_ref().is_some_and(|g| !g.is_empty())
        {
            issues.push(ConfigIssue::new(
                format!("{key}.require_groups"),
                "needs verify = \"account\" or \"credentials\" in this scope or an enclosing one: \
                 group membership is read from the directory",
            ));
        }
        let verification = mode.map(|mode| Verification {
            mode,
            require_groups,
        });

        let certificate_mapping = match &raw.certificate_mapping {
            None => inherited.certificate_mapping,
            Some(mapping) => {
                let mut policy = match mapping.weak {
                    None => inherited.certificate_mapping.unwrap_or_default(),
                    Some(_) => AltSecPolicy::STRONG_ONLY,
                };
                for (i, form) in mapping.weak.iter().flatten().enumerate() {
                    match form.to_ascii_lowercase().as_str() {
                        "issuer_subject" => policy.issuer_subject = true,
                        "subject" => policy.subject = true,
                        "rfc822" => policy.rfc822 = true,
                        "upn" => policy.upn = true,
                        other => issues.push(ConfigIssue::new(
                            format!("{key}.certificate_mapping.weak[{i}]"),
                            format!("unknown form {other:?}; expected \"issuer_subject\", \"subject\", \"rfc822\" or \"upn\""),
                        )),
                    }
                }
                let enabled = mapping
                    .enabled
                    .unwrap_or(inherited.certificate_mapping.is_some());
                enabled.then_some(policy)
            }
        };

        if issues.is_empty() {
            Ok(Self {
                verification,
                certificate_mapping,
            })
        } else {
            Err(issues)
        }
    }

    /// True when this scope needs a `[directory]` section.
    pub fn needs_directory(&self) -> bool {
        self.verification.is_some() || self.certificate_mapping.is_some()
    }
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
    fn parses_toml_shape() {
        let text = r#"
            urls = ["ldaps://dc1.example.test:636", "ldaps://dc2.example.test:636"]
            ca = "ad-ca.crt"
            bind_dn = "svc-certgate@example.test"
            bind_password_env = "CERTGATE_LDAP_PASSWORD"
            base_dn = "DC=example,DC=test"
            timeout = "3s"
            cache_ttl = "5m"
            negative_cache_ttl = "30s"
        "#;
        let raw: RawDirectory = toml::from_str(text).unwrap();
        assert_eq!(raw.cache_ttl, Some(Duration::from_secs(300)));
        let back: RawDirectory = toml::from_str(&toml::to_string(&raw).unwrap()).unwrap();
        assert_eq!(back, raw);
        assert!(toml::from_str::<RawDirectory>("bind_password = \"x\"").is_err());

        let site: RawSiteDirectory = toml::from_str(
            r#"
            verify = "account"
            require_groups = ["CN=Intranet Users,OU=Groups,DC=example,DC=test"]
            [certificate_mapping]
            enabled = true
            weak = ["upn"]
            "#,
        )
        .unwrap();
        let policy = SitePolicy::from_raw(Some(&site), None, "site[0].directory").unwrap();
        assert_eq!(
            policy.verification.as_ref().unwrap().mode,
            VerifyMode::Account
        );
        assert!(policy.certificate_mapping.unwrap().upn);
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

    #[test]
    fn site_policy_inherits_and_overrides() {
        let site = RawSiteDirectory {
            verify: Some("credentials".into()),
            require_groups: Some(vec!["CN=Staff, OU=Groups,DC=example,DC=test".into()]),
            certificate_mapping: Some(RawCertificateMapping {
                enabled: Some(true),
                weak: None,
            }),
        };
        let site = SitePolicy::from_raw(Some(&site), None, "site[0].directory").unwrap();
        assert!(site.needs_directory());
        assert_eq!(site.certificate_mapping, Some(AltSecPolicy::STRONG_ONLY));

        // A location that only changes the groups keeps verify and the mapper.
        let loc = RawSiteDirectory {
            require_groups: Some(vec![]),
            ..RawSiteDirectory::default()
        };
        let loc = SitePolicy::from_raw(Some(&loc), Some(&site), "l").unwrap();
        let v = loc.verification.unwrap();
        assert_eq!(v.mode, VerifyMode::Credentials);
        assert!(v.require_groups.is_empty());
        assert!(loc.certificate_mapping.is_some());

        // Absent section: inherit everything; no parent: nothing to do.
        assert_eq!(SitePolicy::from_raw(None, Some(&site), "l").unwrap(), site);
        assert!(
            !SitePolicy::from_raw(None, None, "s")
                .unwrap()
                .needs_directory()
        );

        let off = RawSiteDirectory {
            verify: Some("none".into()),
            require_groups: Some(vec![]),
            certificate_mapping: Some(RawCertificateMapping {
                enabled: Some(false),
                weak: None,
            }),
        };
        assert!(
            !SitePolicy::from_raw(Some(&off), Some(&site), "l")
                .unwrap()
                .needs_directory()
        );
    }

    #[test]
    fn site_policy_errors() {
        let bad = RawSiteDirectory {
            verify: Some("password".into()),
            require_groups: Some(vec!["Staff".into()]),
            certificate_mapping: Some(RawCertificateMapping {
                enabled: Some(true),
                weak: Some(vec!["upn".into(), "thumbprint".into()]),
            }),
        };
        let issues = SitePolicy::from_raw(Some(&bad), None, "s").unwrap_err();
        assert_eq!(
            keys(&issues),
            [
                "s.verify",
                "s.require_groups[0]",
                "s.certificate_mapping.weak[1]"
            ]
        );
        let groups_without_verify = RawSiteDirectory {
            require_groups: Some(vec!["CN=Staff,DC=x".into()]),
            ..RawSiteDirectory::default()
        };
        let issues = SitePolicy::from_raw(Some(&groups_without_verify), None, "s").unwrap_err();
        assert_eq!(keys(&issues), ["s.require_groups"]);
    }
}
