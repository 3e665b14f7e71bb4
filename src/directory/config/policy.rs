//! `[site.directory]` validated for one scope: what to verify of the mapped account, which
//! groups are required, and which `altSecurityIdentities` forms the AD mapper accepts.

use super::{ConfigIssue, RawSiteDirectory};
use crate::directory::filter::normalize_dn;

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
    use crate::directory::config::RawCertificateMapping;

    fn keys(issues: &[ConfigIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.key.as_str()).collect()
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
