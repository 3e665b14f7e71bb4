//! Active Directory account rules, kept free of I/O so they can be tested exhaustively.
//!
//! These are the checks `LogonUser` makes before it looks at a password (disabled, locked out,
//! expired, must change password), expressed over the attributes a service account can read,
//! plus the translation of AD's bind diagnostics into the same reasons.

use std::time::{SystemTime, UNIX_EPOCH};

use super::DenyReason;
use super::filter;

/// `userAccountControl` ACCOUNTDISABLE.
const UF_ACCOUNTDISABLE: u32 = 0x2;
/// `userAccountControl` / `msDS-User-Account-Control-Computed` LOCKOUT.
const UF_LOCKOUT: u32 = 0x10;
/// `userAccountControl` / `msDS-User-Account-Control-Computed` PASSWORD_EXPIRED.
const UF_PASSWORD_EXPIRED: u32 = 0x80_0000;
/// `accountExpires` value meaning "never" besides 0.
const NEVER: i64 = i64::MAX;
/// Seconds from 1601-01-01 (FILETIME epoch) to 1970-01-01.
const FILETIME_UNIX_OFFSET_SECS: i64 = 11_644_473_600;

/// How a configured user name is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupName {
    /// By `sAMAccountName` (`DOMAIN\name` or a bare name).
    Sam(String),
    /// By `userPrincipalName` (`name@realm`).
    Upn(String),
}

impl LookupName {
    /// Parses an IIS mapping user name the way `LogonUser` receives it: `DOMAIN\name`,
    /// `name@realm` (UPN), or a bare `name` to which IIS applies `defaultLogonDomain`.
    /// `domains` lists the accepted `DOMAIN` parts (lowercase); empty accepts any.
    pub(crate) fn parse(
        name: &str,
        default_logon_domain: Option<&str>,
        domains: &[String],
    ) -> Result<Self, DenyReason> {
        // Samba compares attribute values as C strings: `alice\0junk`, correctly escaped as
        // `alice\00junk`, still matches alice. No account name contains control characters.
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(DenyReason::UnsupportedName);
        }
        let (domain, user) = match name.split_once('\\') {
            Some((domain, user)) => (Some(domain), user),
            None if name.contains('@') => return Ok(Self::Upn(name.to_owned())),
            None => (default_logon_domain.filter(|d| !d.trim().is_empty()), name),
        };
        if user.is_empty() || user.contains('\\') {
            return Err(DenyReason::UnsupportedName);
        }
        if let Some(domain) = domain {
            let domain = domain.trim();
            // `.\name` is a local SAM account: it cannot be verified off the machine.
            if domain.is_empty() || domain == "." {
                return Err(DenyReason::UnsupportedName);
            }
            if !domains.is_empty() && !domains.contains(&domain.to_lowercase()) {
                return Err(DenyReason::NoSuchUser);
            }
        }
        Ok(Self::Sam(user.to_owned()))
    }

    /// The search filter for this name; the value is escaped.
    pub(crate) fn filter(&self) -> String {
        let clause = match self {
            Self::Sam(name) => filter::eq("sAMAccountName", name),
            Self::Upn(upn) => filter::eq("userPrincipalName", upn),
        };
        format!("(&(objectCategory=person)(objectClass=user){clause})")
    }

    /// Cache key: AD compares both attributes case-insensitively.
    pub(crate) fn cache_key(&self) -> String {
        match self {
            Self::Sam(name) => format!("sam:{}", name.to_lowercase()),
            Self::Upn(upn) => format!("upn:{}", upn.to_lowercase()),
        }
    }
}

/// The attributes the state check reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AccountState {
    /// `userAccountControl`.
    pub(crate) uac: u32,
    /// `msDS-User-Account-Control-Computed` (lockout and password expiry live only here on
    /// current domains).
    pub(crate) computed: u32,
    /// `accountExpires`, 100-ns ticks since 1601; 0 and `i64::MAX` mean never.
    pub(crate) account_expires: i64,
    /// `pwdLastSet`; 0 means "must change at next logon".
    pub(crate) pwd_last_set: Option<i64>,
}

impl AccountState {
    /// Why `LogonUser` would refuse this account whatever the password, if it would. The order
    /// follows what an administrator fixes first: an account that is both disabled and locked
    /// reports disabled.
    pub(crate) fn check(&self, now_ticks: i64) -> Result<(), DenyReason> {
        let flags = self.uac | self.computed;
        if self.uac & UF_ACCOUNTDISABLE != 0 {
            Err(DenyReason::Disabled)
        } else if self.account_expires != 0
            && self.account_expires != NEVER
            && self.account_expires <= now_ticks
        {
            Err(DenyReason::AccountExpired)
        } else if flags & UF_LOCKOUT != 0 {
            Err(DenyReason::LockedOut)
        } else if self.pwd_last_set == Some(0) {
            Err(DenyReason::MustChangePassword)
        } else if flags & UF_PASSWORD_EXPIRED != 0 {
            Err(DenyReason::PasswordExpired)
        } else {
            Ok(())
        }
    }
}

/// Now as a FILETIME (100-ns ticks since 1601-01-01 UTC), the unit of `accountExpires`.
pub(crate) fn now_filetime() -> i64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since_unix.as_secs()).unwrap_or(i64::MAX / 2);
    (secs + FILETIME_UNIX_OFFSET_SECS)
        .saturating_mul(10_000_000)
        .saturating_add(i64::from(since_unix.subsec_nanos() / 100))
}

/// The reason behind an AD invalidCredentials (49) bind result, from its diagnostic text
/// `80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563`.
pub(crate) fn bind_failure_reason(diagnostic: &str) -> DenyReason {
    let code = diagnostic
        .split_once("data ")
        .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or_default())
        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
    match code {
        Some(0x525) => DenyReason::NoSuchUser,
        Some(0x52e) => DenyReason::BadPassword,
        Some(0x530) => DenyReason::InvalidLogonHours,
        Some(0x531) => DenyReason::InvalidWorkstation,
        Some(0x532) => DenyReason::PasswordExpired,
        Some(0x533) => DenyReason::Disabled,
        Some(0x701) => DenyReason::AccountExpired,
        Some(0x773) => DenyReason::MustChangePassword,
        Some(0x775) => DenyReason::LockedOut,
        _ => DenyReason::LogonFailed,
    }
}

/// Renders a binary SID (`objectSid`, `tokenGroups`) as `S-1-5-21-...`, for logs.
pub(crate) fn sid_to_string(sid: &[u8]) -> Option<String> {
    let (&revision, rest) = sid.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let authority = rest.get(..6)?;
    let subs = rest.get(6..)?;
    if subs.len() != usize::from(count) * 4 {
        return None;
    }
    let authority = authority
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut out = format!("S-{revision}-{authority}");
    for chunk in subs.chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        out.push_str(&format!("-{sub}"));
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_iis_user_names() {
        let none: &[String] = &[];
        let p = |n: &str, d: Option<&str>| LookupName::parse(n, d, none);
        assert_eq!(
            p("EXAMPLE\\alice", None),
            Ok(LookupName::Sam("alice".into()))
        );
        assert_eq!(
            p("alice@example.test", None),
            Ok(LookupName::Upn("alice@example.test".into()))
        );
        assert_eq!(p("alice", None), Ok(LookupName::Sam("alice".into())));
        assert_eq!(
            p("alice", Some("EXAMPLE")),
            Ok(LookupName::Sam("alice".into()))
        );
        assert_eq!(p(".\\alice", None), Err(DenyReason::UnsupportedName));
        assert_eq!(p("alice", Some(".")), Err(DenyReason::UnsupportedName));
        assert_eq!(p("EXAMPLE\\", None), Err(DenyReason::UnsupportedName));
        assert_eq!(p("A\\B\\c", None), Err(DenyReason::UnsupportedName));
        assert_eq!(p("  ", None), Err(DenyReason::UnsupportedName));
        assert_eq!(p("alice\0", None), Err(DenyReason::UnsupportedName));
        assert_eq!(
            p("EXAMPLE\\al\nice", None),
            Err(DenyReason::UnsupportedName)
        );
        assert_eq!(
            p("alice@example.test\0x", None),
            Err(DenyReason::UnsupportedName)
        );

        let domains = ["example".to_owned(), "example.test".to_owned()];
        let q = |n: &str, d: Option<&str>| LookupName::parse(n, d, &domains);
        assert!(q("Example\\alice", None).is_ok());
        assert!(q("EXAMPLE.TEST\\alice", None).is_ok());
        assert_eq!(q("OTHER\\alice", None), Err(DenyReason::NoSuchUser));
        assert_eq!(q("alice", Some("OTHER")), Err(DenyReason::NoSuchUser));
        assert!(q("alice", None).is_ok());
    }

    #[test]
    fn filters_escape_names() {
        assert_eq!(
            LookupName::Sam("*)(uid=*".into()).filter(),
            "(&(objectCategory=person)(objectClass=user)(sAMAccountName=\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(LookupName::Upn("A@X".into()).cache_key(), "upn:a@x");
        assert_ne!(
            LookupName::Upn("a@x".into()).cache_key(),
            LookupName::Sam("a@x".into()).cache_key()
        );
    }

    #[test]
    fn account_state_rules() {
        let now = now_filetime();
        let ok = AccountState {
            uac: 0x200,
            account_expires: NEVER,
            pwd_last_set: Some(now - 1),
            ..AccountState::default()
        };
        assert_eq!(ok.check(now), Ok(()));
        assert_eq!(
            AccountState {
                account_expires: 0,
                ..ok
            }
            .check(now),
            Ok(())
        );
        let future = now + 10_000_000;
        assert_eq!(
            AccountState {
                account_expires: future,
                ..ok
            }
            .check(now),
            Ok(())
        );

        let cases = [
            (AccountState { uac: 0x202, ..ok }, DenyReason::Disabled),
            (
                AccountState {
                    account_expires: now - 1,
                    ..ok
                },
                DenyReason::AccountExpired,
            ),
            (
                AccountState {
                    computed: UF_LOCKOUT,
                    ..ok
                },
                DenyReason::LockedOut,
            ),
            (AccountState { uac: 0x210, ..ok }, DenyReason::LockedOut),
            (
                AccountState {
                    pwd_last_set: Some(0),
                    computed: UF_PASSWORD_EXPIRED,
                    ..ok
                },
                DenyReason::MustChangePassword,
            ),
            (
                AccountState {
                    computed: UF_PASSWORD_EXPIRED,
                    ..ok
                },
                DenyReason::PasswordExpired,
            ),
            (
                AccountState {
                    uac: 0x202,
                    computed: UF_LOCKOUT,
                    ..ok
                },
                DenyReason::Disabled,
            ),
        ];
        for (state, reason) in cases {
            assert_eq!(state.check(now), Err(reason), "{state:?}");
        }
    }

    #[test]
    fn filetime_is_plausible() {
        // 2020-01-01 is 132223104000000000 ticks; the clock is later than that.
        assert!(now_filetime() > 132_223_104_000_000_000);
    }

    #[test]
    fn decodes_ad_bind_codes() {
        let text = |code: &str| {
            format!(
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1\0"
            )
        };
        let cases = [
            ("525", DenyReason::NoSuchUser),
            ("52e", DenyReason::BadPassword),
            ("530", DenyReason::InvalidLogonHours),
            ("531", DenyReason::InvalidWorkstation),
            ("532", DenyReason::PasswordExpired),
            ("533", DenyReason::Disabled),
            ("701", DenyReason::AccountExpired),
            ("773", DenyReason::MustChangePassword),
            ("775", DenyReason::LockedOut),
            ("52f", DenyReason::LogonFailed),
        ];
        for (code, reason) in cases {
            assert_eq!(bind_failure_reason(&text(code)), reason, "{code}");
        }
        assert_eq!(bind_failure_reason(""), DenyReason::LogonFailed);
        assert_eq!(
            bind_failure_reason("Invalid credentials"),
            DenyReason::LogonFailed
        );
    }

    #[test]
    fn renders_sids() {
        let builtin_users = [1, 2, 0, 0, 0, 0, 0, 5, 0x20, 0, 0, 0, 0x21, 2, 0, 0];
        assert_eq!(
            sid_to_string(&builtin_users).as_deref(),
            Some("S-1-5-32-545")
        );
        assert_eq!(sid_to_string(&[1, 2, 0]), None);
    }
}
