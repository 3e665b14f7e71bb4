//! `[kerberos]` and `[site.backend_kerberos]`: the TOML shapes and their validation.
//!
//! Validation returns [`ConfigIssue`]s naming the key path, like the directory sections, so the
//! loader reports every problem at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::directory::Secret;
use crate::directory::config::ConfigIssue;

/// Default number of (user, SPN) credentials kept.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
/// Default margin before a ticket's end at which it is no longer used.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(300);

/// `[kerberos]`: certgate's own service account. One per process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKerberos {
    /// The AD domain's Kerberos realm, upper case (`EXAMPLE.TEST`).
    #[serde(default)]
    pub realm: String,
    /// The MIT krb5.conf naming the KDCs (`[realms] REALM = { kdc = ... }`); `certgate run`
    /// starts itself with `KRB5_CONFIG` pointing at it. Absent: the platform's
    /// (`KRB5_CONFIG`, else `/etc/krb5.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krb5_conf: Option<String>,
    /// The service account, `svc-certgate@EXAMPLE.TEST`.
    #[serde(default)]
    pub principal: String,
    /// The service account's keytab (`samba-tool domain exportkeytab`, `ktpass`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keytab: Option<String>,
    /// Environment variable holding the service account's password (instead of a keytab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// NetBIOS domain or DNS suffix (lowercase) to realm, for mapped names outside `realm`:
    /// `{ "partner" = "PARTNER.TEST" }`. The realm's own names need no entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub domain_realms: BTreeMap<String, String>,
    /// Most (user, SPN) credentials kept (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_capacity: Option<u64>,
    /// A ticket is replaced this long before it expires (default 5m).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub renew_before: Option<Duration>,
    /// How long a KDC refusal (unknown or disabled user, refused delegation) is remembered
    /// per (mode, user, SPN), so a burst from such a user does not ask the KDC per request
    /// (default 30s; "0s" turns it off). Transient failures are never remembered.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub negative_cache_ttl: Option<Duration>,
}

/// `[site.backend_kerberos]` / `[site.location.backend_kerberos]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackendKerberos {
    /// `false` turns Kerberos off for a location below a site that has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The backend's service principal, `HTTP/app.example.test` (realm optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spn: Option<String>,
    /// `s4u` (protocol transition + constrained delegation) or `password` (the mapping's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Refuse (502) a backend response that carries no Negotiate reply token, instead of
    /// passing it on (default false; a token that is sent is always verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_mutual_auth: Option<bool>,
    /// Body-less requests of the same user go without a new token on a backend connection
    /// that already accepted one, as IIS (`authPersistNonNTLM`) and mod_auth_gssapi
    /// (`GssapiConnectionBound On`) keep it authenticated (default true; see
    /// [`crate::forward::bound`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_auth: Option<bool>,
}

/// How the service account proves itself to the KDC.
#[derive(Debug, Clone)]
pub enum ServiceCredential {
    /// A keytab file (MIT reads it as the client keytab).
    Keytab(PathBuf),
    /// A password from the environment.
    Password(Secret),
}

/// `[kerberos]`, validated.
#[derive(Debug, Clone)]
pub struct KerberosSettings {
    /// Upper-case realm.
    pub realm: String,
    /// krb5.conf to run with, if configured.
    pub krb5_conf: Option<PathBuf>,
    /// Service principal with realm.
    pub principal: String,
    /// The service account's secret.
    pub credential: ServiceCredential,
    /// Lowercase domain (NetBIOS or DNS) to realm.
    pub domain_realms: BTreeMap<String, String>,
    /// Cache bound.
    pub cache_capacity: u64,
    /// Replacement margin.
    pub renew_before: Duration,
    /// How long a refusal is remembered (zero: not at all).
    pub negative_cache_ttl: Duration,
}

/// How a scope authenticates to its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KerberosMode {
    /// S4U2Self + S4U2Proxy as the service account.
    S4u,
    /// The user's own ticket from the mapping's password.
    Password,
}

impl KerberosMode {
    /// The config and metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S4u => "s4u",
            Self::Password => "password",
        }
    }
}

/// A scope's Kerberos target, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendKerberos {
    /// Service principal with realm (`HTTP/app.example.test@EXAMPLE.TEST`).
    pub spn: Arc<str>,
    /// How the user's ticket is obtained.
    pub mode: KerberosMode,
    /// A response without the backend's reply token is refused (see [`super::mutual`]).
    pub require_mutual_auth: bool,
    /// Connection-bound authentication is relied on (see [`crate::forward::bound`]).
    pub persist_auth: bool,
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

fn bad_name(s: &str) -> bool {
    s.trim().is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl KerberosSettings {
    /// Validates `[kerberos]` at `key`; relative paths resolve against `base`.
    pub fn from_raw(
        raw: &RawKerberos,
        base: &Path,
        key: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let k = |f: &str| format!("{key}.{f}");
        if !cfg!(feature = "kerberos") {
            issues.push(ConfigIssue::new(
                key.to_owned(),
                "this certgate was built without the `kerberos` feature (MIT GSS-API); \
                 rebuild with `--features kerberos` to use Kerberos to the backend",
            ));
        }
        let realm = raw.realm.trim().to_owned();
        if bad_name(&realm) || realm != realm.to_uppercase() || realm.contains('@') {
            issues.push(ConfigIssue::new(
                k("realm"),
                "the realm is required, upper case, without spaces (e.g. \"EXAMPLE.TEST\")",
            ));
        }
        let principal = match raw.principal.trim() {
            p if bad_name(p) => {
                issues.push(ConfigIssue::new(
                    k("principal"),
                    "the service account principal is required (e.g. \"svc-certgate@EXAMPLE.TEST\")",
                ));
                String::new()
            }
            p if p.contains('@') => p.to_owned(),
            p => format!("{p}@{realm}"),
        };
        let krb5_conf = raw.krb5_conf.as_deref().map(|p| resolve(base, p));
        if let Some(path) = &krb5_conf
            && !path.is_file()
        {
            issues.push(ConfigIssue::new(
                k("krb5_conf"),
                format!("`{}` is not a readable file", path.display()),
            ));
        }
        let credential = match (&raw.keytab, &raw.password_env) {
            (Some(_), Some(_)) => {
                issues.push(ConfigIssue::new(
                    key.to_owned(),
                    "set either keytab or password_env, not both",
                ));
                None
            }
            (None, None) => {
                issues.push(ConfigIssue::new(
                    key.to_owned(),
                    "the service account needs keytab or password_env",
                ));
                None
            }
            (Some(kt), None) => {
                let path = resolve(base, kt);
                match std::fs::File::open(&path) {
                    Ok(_) => Some(ServiceCredential::Keytab(path)),
                    Err(e) => {
                        issues.push(ConfigIssue::new(
                            k("keytab"),
                            format!("cannot read `{}`: {e}", path.display()),
                        ));
                        None
                    }
                }
            }
            (None, Some(var)) => match env(var).filter(|v| !v.is_empty()) {
                Some(v) => Some(ServiceCredential::Password(Secret::new(v))),
                None => {
                    issues.push(ConfigIssue::new(
                        k("password_env"),
                        format!("environment variable `{var}` is not set or empty"),
                    ));
                    None
                }
            },
        };
        let mut domain_realms = BTreeMap::new();
        for (domain, r) in &raw.domain_realms {
            if bad_name(domain) || bad_name(r) || r != &r.to_uppercase() {
                issues.push(ConfigIssue::new(
                    format!("{key}.domain_realms.{domain}"),
                    "domain and realm must be non-empty names; the realm upper case",
                ));
            } else {
                domain_realms.insert(domain.to_lowercase(), r.clone());
            }
        }
        let cache_capacity = raw.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY);
        if cache_capacity == 0 {
            issues.push(ConfigIssue::new(k("cache_capacity"), "must be at least 1"));
        }
        match (issues.is_empty(), credential) {
            (true, Some(credential)) => Ok(Self {
                realm,
                krb5_conf,
                principal,
                credential,
                domain_realms,
                cache_capacity,
                renew_before: raw.renew_before.unwrap_or(DEFAULT_RENEW_BEFORE),
                negative_cache_ttl: raw
                    .negative_cache_ttl
                    .unwrap_or(super::refusals::DEFAULT_NEGATIVE_TTL),
            }),
            _ => Err(issues),
        }
    }
}

impl BackendKerberos {
    /// Validates a scope's `backend_kerberos` at `key`; `parent` is the enclosing scope's
    /// effective value, which absent keys inherit. `realm` completes an SPN without one.
    pub fn from_raw(
        raw: Option<&RawBackendKerberos>,
        parent: Option<&Arc<BackendKerberos>>,
        realm: Option<&str>,
        key: &str,
    ) -> Result<Option<Arc<Self>>, Vec<ConfigIssue>> {
        let Some(raw) = raw else {
            return Ok(parent.cloned());
        };
        if raw.enabled == Some(false) {
            return Ok(None);
        }
        let mut issues = Vec::new();
        let spn = match (&raw.spn, parent) {
            (Some(spn), _) => {
                let spn = spn.trim();
                let service = spn.split('@').next().unwrap_or_default();
                if bad_name(spn) || !service.contains('/') || spn.matches('@').count() > 1 {
                    issues.push(ConfigIssue::new(
                        format!("{key}.spn"),
                        format!(
                            "`{spn}` is not a service principal like \"HTTP/app.example.test\""
                        ),
                    ));
                    None
                } else if spn.contains('@') {
                    Some(Arc::<str>::from(spn))
                } else {
                    Some(Arc::from(format!("{spn}@{}", realm.unwrap_or_default())))
                }
            }
            (None, Some(p)) => Some(Arc::clone(&p.spn)),
            (None, None) => {
                issues.push(ConfigIssue::new(
                    format!("{key}.spn"),
                    "the backend's service principal is required (e.g. \"HTTP/app.example.test\")",
                ));
                None
            }
        };
        let mode = match raw.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => parent.map_or(KerberosMode::S4u, |p| p.mode),
            Some("s4u") => KerberosMode::S4u,
            Some("password") => KerberosMode::Password,
            Some(other) => {
                issues.push(ConfigIssue::new(
                    format!("{key}.mode"),
                    format!("unknown mode {other:?}; expected \"s4u\" or \"password\""),
                ));
                KerberosMode::S4u
            }
        };
        let require_mutual_auth = raw
            .require_mutual_auth
            .unwrap_or_else(|| parent.is_some_and(|p| p.require_mutual_auth));
        let persist_auth = raw
            .persist_auth
            .unwrap_or_else(|| parent.is_none_or(|p| p.persist_auth));
        match spn {
            Some(spn) if issues.is_empty() => Ok(Some(Arc::new(Self {
                spn,
                mode,
                require_mutual_auth,
                persist_auth,
            }))),
            _ => Err(issues),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(s: &str) -> RawKerberos {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn service_settings_need_realm_principal_and_one_secret() {
        let env = |_: &str| None;
        let issues = KerberosSettings::from_raw(
            &raw("realm = \"example.test\""),
            Path::new("/"),
            "kerberos",
            env,
        )
        .unwrap_err();
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert!(keys.contains(&"kerberos.realm"), "{keys:?}");
        assert!(keys.contains(&"kerberos.principal"), "{keys:?}");
        assert!(keys.contains(&"kerberos"), "{keys:?}");
    }

    /// A plain `cargo build` has no Kerberos: the section is refused with the way to get it,
    /// never accepted and left to fail on the first request.
    #[cfg(not(feature = "kerberos"))]
    #[test]
    fn a_build_without_the_feature_refuses_the_section_and_says_how_to_build_it() {
        let env = |v: &str| (v == "SVC_PW").then(|| "pw".to_owned());
        let issues = KerberosSettings::from_raw(
            &raw("realm = \"EXAMPLE.TEST\"\nprincipal = \"svc\"\npassword_env = \"SVC_PW\""),
            Path::new("/"),
            "kerberos",
            env,
        )
        .unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].key, "kerberos");
        assert!(
            issues[0].reason.contains("--features kerberos"),
            "{issues:?}"
        );
    }

    #[cfg(feature = "kerberos")]
    #[test]
    fn password_env_and_default_realm_on_the_principal() {
        let env = |v: &str| (v == "SVC_PW").then(|| "pw".to_owned());
        let s = KerberosSettings::from_raw(
            &raw("realm = \"EXAMPLE.TEST\"\nprincipal = \"svc\"\npassword_env = \"SVC_PW\"\n[domain_realms]\nPARTNER = \"PARTNER.TEST\""),
            Path::new("/"),
            "kerberos",
            env,
        )
        .unwrap();
        assert_eq!(s.principal, "svc@EXAMPLE.TEST");
        assert_eq!(
            s.domain_realms.get("partner").map(String::as_str),
            Some("PARTNER.TEST")
        );
        assert!(matches!(s.credential, ServiceCredential::Password(_)));
    }

    #[test]
    fn backend_targets_inherit_and_can_be_turned_off() {
        let site: RawBackendKerberos = toml::from_str("spn = \"HTTP/app.example.test\"").unwrap();
        let root = BackendKerberos::from_raw(
            Some(&site),
            None,
            Some("EXAMPLE.TEST"),
            "site[0].backend_kerberos",
        )
        .unwrap()
        .unwrap();
        assert_eq!(&*root.spn, "HTTP/app.example.test@EXAMPLE.TEST");
        assert_eq!(root.mode, KerberosMode::S4u);
        assert!(!root.require_mutual_auth);
        assert!(root.persist_auth, "IIS's authPersistNonNTLM default");
        let loc: RawBackendKerberos =
            toml::from_str("mode = \"password\"\nrequire_mutual_auth = true\npersist_auth = false")
                .unwrap();
        let child = BackendKerberos::from_raw(Some(&loc), Some(&root), None, "x")
            .unwrap()
            .unwrap();
        assert_eq!(
            (child.spn.clone(), child.mode, child.require_mutual_auth),
            (root.spn.clone(), KerberosMode::Password, true)
        );
        let grandchild = BackendKerberos::from_raw(
            Some(&RawBackendKerberos::default()),
            Some(&child),
            None,
            "y",
        )
        .unwrap()
        .unwrap();
        assert!(grandchild.require_mutual_auth);
        assert!(!grandchild.persist_auth);
        let off: RawBackendKerberos = toml::from_str("enabled = false").unwrap();
        assert!(
            BackendKerberos::from_raw(Some(&off), Some(&root), None, "x")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            BackendKerberos::from_raw(None, Some(&root), None, "x").unwrap(),
            Some(root)
        );
        let bad: RawBackendKerberos = toml::from_str("spn = \"app\"\nmode = \"ntlm\"").unwrap();
        assert_eq!(
            BackendKerberos::from_raw(Some(&bad), None, None, "k")
                .unwrap_err()
                .len(),
            2
        );
    }
}
