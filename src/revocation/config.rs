//! `[revocation]` (process-wide fetch limits and the state directory) and `[site.revocation]`
//! (the http.sys settings of a binding), from TOML to a validated [`Policy`].
//!
//! The older site keys keep working: `crl_check` is `check`, `allow_unknown_revocation_status =
//! true` is `unknown_status = "allow"`, `allow_expired_crl` still lets configured CRL files
//! serve past their nextUpdate (fetched CRLs never do).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cache::Store;
use super::fetch::Limits;

/// `[site.revocation]`, in http.sys words (`netsh http add sslcert`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteRevocation {
    /// `chain` (default), `end_entity` or `none` (`verifyclientcertrevocation=disable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// `verifyrevocationwithcachedclientcertonly`: never fetch, use cached/persisted only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_only: Option<bool>,
    /// `revocationfreshnesstime`: refetch a CRL older than this (since thisUpdate). 0: at
    /// nextUpdate only.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub freshness_time: Option<Duration>,
    /// `urlretrievaltimeout`: how long a connection waits for revocation data. Default 15s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub url_retrieval_timeout: Option<Duration>,
    /// `deny` (default, 403.13 as IIS) or `allow` when no source gives an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_status: Option<String>,
}

/// `[revocation]`: limits on every fetch and where fetched CRLs are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    /// Directory where fetched CRLs are persisted (restart without the CDP). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// Largest CRL or OCSP response accepted, bytes. Default 32 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_crl_bytes: Option<usize>,
    /// HTTP redirects followed. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u8>,
    /// Only these hosts are contacted (default: any host a verified certificate names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Cached CRLs and OCSP answers that no handshake used for this long are dropped and no
    /// longer refreshed. Default 24h.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub evict_unused_after: Option<Duration>,
}

/// Which certificates of a chain are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// Every certificate below the trust anchor (http.sys default).
    #[default]
    Chain,
    /// The client certificate only.
    EndEntity,
    /// No revocation checking.
    None,
}

/// What an undeterminable status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownStatus {
    /// 403.13, as IIS.
    #[default]
    Deny,
    /// Let the certificate through.
    Allow,
}

/// A site's validated revocation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Which certificates.
    pub depth: Depth,
    /// Never fetch.
    pub cached_only: bool,
    /// Refetch CRLs older than this; zero: never before nextUpdate.
    pub freshness: Duration,
    /// Wait for fetches at most this long.
    pub timeout: Duration,
    /// Unknown status.
    pub unknown: UnknownStatus,
    /// Configured CRL files may be used past their nextUpdate (`allow_expired_crl`).
    pub allow_expired_files: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            depth: Depth::Chain,
            cached_only: false,
            freshness: Duration::ZERO,
            timeout: Duration::from_secs(15),
            unknown: UnknownStatus::Deny,
            allow_expired_files: false,
        }
    }
}

/// The older per-site keys, still honoured.
#[derive(Debug, Clone, Default)]
pub struct Legacy<'a> {
    /// `crl_check`.
    pub crl_check: Option<&'a str>,
    /// `allow_unknown_revocation_status`.
    pub allow_unknown_status: Option<bool>,
    /// `allow_expired_crl`.
    pub allow_expired_crl: Option<bool>,
}

/// Validates a site's settings. Errors are `(key path, reason)` pairs, all of them at once.
pub fn site_policy(
    key: &str,
    raw: Option<&RawSiteRevocation>,
    legacy: &Legacy<'_>,
) -> Result<Policy, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut policy = Policy::default();
    let raw = raw.cloned().unwrap_or_default();
    let check = match (&raw.check, legacy.crl_check) {
        (Some(_), Some(_)) => {
            errors.push((
                format!("{key}.crl_check"),
                "set either crl_check or revocation.check, not both".into(),
            ));
            None
        }
        (Some(c), None) => Some((format!("{key}.revocation.check"), c.as_str())),
        (None, Some(c)) => Some((format!("{key}.crl_check"), c)),
        (None, None) => None,
    };
    if let Some((ckey, value)) = check {
        policy.depth = match value {
            "chain" => Depth::Chain,
            "end_entity" => Depth::EndEntity,
            "none" => Depth::None,
            other => {
                errors.push((
                    ckey,
                    format!("`{other}` is not one of \"chain\", \"end_entity\", \"none\""),
                ));
                Depth::Chain
            }
        };
    }
    policy.cached_only = raw.cached_only.unwrap_or(false);
    policy.freshness = raw.freshness_time.unwrap_or(Duration::ZERO);
    if let Some(t) = raw.url_retrieval_timeout {
        if t.is_zero() || t > Duration::from_secs(300) {
            errors.push((
                format!("{key}.revocation.url_retrieval_timeout"),
                "must be between 1ms and 300s".into(),
            ));
        } else {
            policy.timeout = t;
        }
    }
    policy.unknown = match (raw.unknown_status.as_deref(), legacy.allow_unknown_status) {
        (Some("deny"), _) => UnknownStatus::Deny,
        (Some("allow"), _) => UnknownStatus::Allow,
        (Some(other), _) => {
            errors.push((
                format!("{key}.revocation.unknown_status"),
                format!("`{other}` is not one of \"deny\", \"allow\""),
            ));
            UnknownStatus::Deny
        }
        (None, Some(true)) => UnknownStatus::Allow,
        (None, _) => UnknownStatus::Deny,
    };
    policy.allow_expired_files = legacy.allow_expired_crl.unwrap_or(false);
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(errors)
    }
}

/// Validates `[revocation]` into fetch limits and a state directory (resolved by the caller).
pub fn limits(raw: Option<&RawRevocation>) -> Result<Limits, Vec<(String, String)>> {
    let mut limits = Limits::default();
    let Some(raw) = raw else {
        return Ok(limits);
    };
    let mut errors = Vec::new();
    if let Some(max) = raw.max_crl_bytes {
        if max < 1024 {
            errors.push((
                "revocation.max_crl_bytes".into(),
                "must be at least 1024".into(),
            ));
        } else {
            limits.max_bytes = max;
        }
    }
    if let Some(r) = raw.max_redirects {
        limits.max_redirects = r.min(10);
    }
    for (i, host) in raw.allowed_hosts.iter().enumerate() {
        if host.trim().is_empty() || host.contains(['/', ' ']) {
            errors.push((
                format!("revocation.allowed_hosts[{i}]"),
                format!("`{host}` is not a host name"),
            ));
        }
    }
    limits.allowed_hosts = raw.allowed_hosts.clone();
    if let Some(after) = raw.evict_unused_after {
        if after < Duration::from_secs(1) || after > Duration::from_secs(366 * 86_400) {
            errors.push((
                "revocation.evict_unused_after".into(),
                "must be between 1s and 366d".into(),
            ));
        } else {
            limits.evict_unused_after = after;
        }
    }
    if errors.is_empty() {
        Ok(limits)
    } else {
        Err(errors)
    }
}

type StoreKey = (Limits, Option<PathBuf>, Option<String>);

/// The cache for these settings: the one a previous load of the same configuration made, while
/// it is alive, so a reload keeps every cached CRL; otherwise a new one.
pub fn shared_store(
    limits: Limits,
    state_dir: Option<PathBuf>,
    ldap: Option<Arc<super::ldap::LdapSource>>,
    config_path: &std::path::Path,
) -> Arc<Store> {
    static STORES: Mutex<Option<HashMap<StoreKey, Weak<Store>>>> = Mutex::new(None);
    let key = (
        limits.clone(),
        state_dir.clone(),
        Some(format!(
            "{}|{}",
            config_path.display(),
            ldap.as_ref().map_or(String::new(), |l| l.identity())
        )),
    );
    let Ok(mut guard) = STORES.lock() else {
        return Arc::new(Store::new(limits, state_dir, ldap));
    };
    let map = guard.get_or_insert_with(HashMap::new);
    map.retain(|_, weak| weak.strong_count() > 0);
    if let Some(store) = map.get(&key).and_then(Weak::upgrade) {
        return store;
    }
    let store = Arc::new(Store::new(limits, state_dir, ldap));
    map.insert(key, Arc::downgrade(&store));
    store
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn legacy_keys_map_and_conflicts_are_errors() {
        let p = site_policy(
            "site[0]",
            None,
            &Legacy {
                crl_check: Some("end_entity"),
                allow_unknown_status: Some(true),
                allow_expired_crl: Some(true),
            },
        )
        .unwrap();
        assert_eq!(p.depth, Depth::EndEntity);
        assert_eq!(p.unknown, UnknownStatus::Allow);
        assert!(p.allow_expired_files);
        let raw = RawSiteRevocation {
            check: Some("sometimes".into()),
            unknown_status: Some("maybe".into()),
            url_retrieval_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        let errors = site_policy("site[0]", Some(&raw), &Legacy::default()).unwrap_err();
        let keys: Vec<_> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "site[0].revocation.check",
                "site[0].revocation.url_retrieval_timeout",
                "site[0].revocation.unknown_status"
            ]
        );
        let both = RawSiteRevocation {
            check: Some("none".into()),
            ..Default::default()
        };
        let legacy = Legacy {
            crl_check: Some("chain"),
            ..Legacy::default()
        };
        assert!(site_policy("s", Some(&both), &legacy).is_err());
    }

    #[test]
    fn evict_unused_after_is_bounded() {
        let raw = |secs| RawRevocation {
            evict_unused_after: Some(Duration::from_secs(secs)),
            ..Default::default()
        };
        assert_eq!(limits(None).unwrap().evict_unused_after.as_secs(), 86_400);
        assert_eq!(
            limits(Some(&raw(2))).unwrap().evict_unused_after.as_secs(),
            2
        );
        let errors = limits(Some(&raw(0))).unwrap_err();
        assert_eq!(errors[0].0, "revocation.evict_unused_after");
    }
}
