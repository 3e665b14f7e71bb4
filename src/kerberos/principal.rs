//! From a mapped Windows name to the Kerberos principal certgate asks tickets for.
//!
//! The KDC is asked for `sAMAccountName@REALM`: an enterprise (UPN) name is not canonicalised by
//! every KDC, and an MIT/Apache backend would then see `alice\@example.test@EXAMPLE.TEST`. So
//! the directory's `sAMAccountName` wins when the scope already looked the account up; otherwise
//! the mapped name is parsed the way `LogonUser` receives it and its domain goes through
//! `domain_realms` (the realm's own NetBIOS name and DNS name need no entry).

use std::collections::BTreeMap;

use crate::directory::Account;

/// Why a mapped name has no principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// Empty, control characters, or characters Kerberos names cannot carry here.
    #[error("`{0}` cannot be a Kerberos principal")]
    Unsupported(String),
    /// A domain that is neither the realm nor in `domain_realms`.
    #[error("domain `{0}` has no realm (add it to [kerberos].domain_realms)")]
    UnknownDomain(String),
}

/// The principal (`user@REALM`) for a mapped user.
pub fn resolve(
    user_name: &str,
    default_logon_domain: Option<&str>,
    account: Option<&Account>,
    realm: &str,
    domain_realms: &BTreeMap<String, String>,
) -> Result<String, PrincipalError> {
    if let Some(sam) = account.and_then(|a| a.sam_account_name.as_deref()) {
        check_user(sam)?;
        return Ok(format!("{sam}@{realm}"));
    }
    let unsupported = || PrincipalError::Unsupported(user_name.to_owned());
    let (user, domain) = match user_name.split_once('\\') {
        Some((domain, user)) => (user, Some(domain)),
        None => match user_name.rsplit_once('@') {
            Some((user, suffix)) => (user, Some(suffix)),
            None => (
                user_name,
                default_logon_domain.filter(|d| !d.trim().is_empty()),
            ),
        },
    };
    check_user(user).map_err(|_| unsupported())?;
    let realm = match domain.map(|d| d.trim().to_lowercase()) {
        None => realm.to_owned(),
        Some(d) if d.is_empty() || d == "." => return Err(unsupported()),
        Some(d) => realm_for(&d, realm, domain_realms)
            .ok_or_else(|| PrincipalError::UnknownDomain(d.clone()))?,
    };
    Ok(format!("{user}@{realm}"))
}

/// The realm of a lowercase NetBIOS or DNS domain.
fn realm_for(
    domain: &str,
    realm: &str,
    domain_realms: &BTreeMap<String, String>,
) -> Option<String> {
    if let Some(r) = domain_realms.get(domain) {
        return Some(r.clone());
    }
    let lower = realm.to_lowercase();
    let netbios = lower.split('.').next().unwrap_or_default();
    (domain == lower || domain == netbios).then(|| realm.to_owned())
}

fn check_user(user: &str) -> Result<(), PrincipalError> {
    let bad = user.trim().is_empty()
        || user
            .chars()
            .any(|c| c.is_control() || matches!(c, '@' | '/' | '\\' | '\0'));
    if bad {
        Err(PrincipalError::Unsupported(user.to_owned()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map() -> BTreeMap<String, String> {
        BTreeMap::from([("partner".to_owned(), "PARTNER.TEST".to_owned())])
    }

    #[test]
    fn names_in_every_iis_form() {
        let r = |n: &str, d: Option<&str>| resolve(n, d, None, "EXAMPLE.TEST", &map());
        assert_eq!(r("EXAMPLE\\alice", None).unwrap(), "alice@EXAMPLE.TEST");
        assert_eq!(
            r("example.test\\alice", None).unwrap(),
            "alice@EXAMPLE.TEST"
        );
        assert_eq!(r("alice@example.test", None).unwrap(), "alice@EXAMPLE.TEST");
        assert_eq!(r("alice", None).unwrap(), "alice@EXAMPLE.TEST");
        assert_eq!(r("alice", Some("PARTNER")).unwrap(), "alice@PARTNER.TEST");
        assert_eq!(r("Partner\\bob", None).unwrap(), "bob@PARTNER.TEST");
        assert_eq!(
            r("OTHER\\bob", None).unwrap_err(),
            PrincipalError::UnknownDomain("other".into())
        );
        for bad in [
            "",
            "EXAMPLE\\",
            ".\\alice",
            "a/b",
            "EXAMPLE\\a\\b",
            "al\nice",
            "@x",
        ] {
            assert!(r(bad, None).is_err(), "{bad:?}");
        }
    }
}
