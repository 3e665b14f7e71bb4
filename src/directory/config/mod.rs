//! `[directory]` and `[site.directory]`: the TOML shape and its validated form.
//!
//! The raw types are plain serde data so the top-level loader can report every problem in one
//! pass; [`DirectorySettings::from_raw`] and [`SitePolicy::from_raw`] turn them into values that
//! cannot describe an unsafe setup (no TLS without a pinned CA, no plaintext without an explicit
//! opt-in, no secret inline in the file). Problems come back as [`ConfigIssue`]s that name the key
//! path, so `certgate check` can list them all at once.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod policy;
mod settings;

pub use policy::{AltSecPolicy, GroupDn, SitePolicy, Verification, VerifyMode};
pub use settings::{DirectorySettings, Endpoint, Transport};

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
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
}
