//! What a directory check decides: the verdict, the account it read, and why it refused.

use std::sync::Arc;

use super::altsec::AltSecForm;
use super::config::GroupDn;

/// Why the directory refused an account. The reason goes to logs, never to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// No account has this name (AD code 525).
    NoSuchUser,
    /// A name that cannot be checked against AD: empty, malformed, or a local account
    /// (`.\user`).
    UnsupportedName,
    /// Several accounts match the name or the certificate.
    Ambiguous,
    /// `userAccountControl` ACCOUNTDISABLE (533).
    Disabled,
    /// Locked out after too many bad passwords (775).
    LockedOut,
    /// The password is past its maximum age (532).
    PasswordExpired,
    /// The password must be changed at next logon (773).
    MustChangePassword,
    /// `accountExpires` is in the past (701).
    AccountExpired,
    /// Wrong password (52e).
    BadPassword,
    /// The mapping has no password; refused without a bind because AD treats an empty-password
    /// simple bind as a successful anonymous bind.
    EmptyPassword,
    /// Outside the account's logon hours (530).
    InvalidLogonHours,
    /// Not allowed from this workstation (531).
    InvalidWorkstation,
    /// AD refused the bind with another or no diagnostic code.
    LogonFailed,
    /// The account is in none of the required groups.
    NotInRequiredGroup,
    /// No account's `altSecurityIdentities` names the certificate.
    NoMapping,
}

impl DenyReason {
    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSuchUser => "no_such_user",
            Self::UnsupportedName => "unsupported_name",
            Self::Ambiguous => "ambiguous",
            Self::Disabled => "disabled",
            Self::LockedOut => "locked_out",
            Self::PasswordExpired => "password_expired",
            Self::MustChangePassword => "must_change_password",
            Self::AccountExpired => "account_expired",
            Self::BadPassword => "bad_password",
            Self::EmptyPassword => "empty_password",
            Self::InvalidLogonHours => "invalid_logon_hours",
            Self::InvalidWorkstation => "invalid_workstation",
            Self::LogonFailed => "logon_failed",
            Self::NotInRequiredGroup => "not_in_required_group",
            Self::NoMapping => "no_mapping",
        }
    }

    /// IIS status and sub-status.
    ///
    /// - Everything `LogonUser` itself would fail on (including an ambiguous name) is **401.1**
    ///   "Logon failed", as IIS answers.
    /// - A missing group is **401.3** "Unauthorized due to ACL on resource": IIS's status for an
    ///   authenticated user who lacks rights on what they asked for; the required groups play
    ///   the role of that ACL. It keeps "account unusable" and "account fine but not allowed
    ///   here" apart in logs, and 401.2 stays reserved for "no mapping produced a user".
    /// - No `altSecurityIdentities` match is **401.2**, like a certificate no IIS mapping
    ///   matched.
    pub fn iis_status(self) -> (u16, u16) {
        match self {
            Self::NotInRequiredGroup => (401, 3),
            Self::NoMapping => (401, 2),
            _ => (401, 1),
        }
    }

    /// The Win32 error `LogonUser` would report, for `sc-win32-status`-style log fields.
    pub fn win32_status(self) -> u32 {
        match self {
            Self::NoSuchUser | Self::BadPassword | Self::LogonFailed | Self::EmptyPassword => 1326,
            Self::UnsupportedName => 1317,
            Self::Ambiguous => 1326,
            Self::Disabled => 1331,
            Self::LockedOut => 1909,
            Self::PasswordExpired => 1330,
            Self::MustChangePassword => 1907,
            Self::AccountExpired => 1793,
            Self::InvalidLogonHours => 1328,
            Self::InvalidWorkstation => 1329,
            Self::NotInRequiredGroup => 5,
            Self::NoMapping => 1326,
        }
    }
}

/// An account the directory accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's DN.
    pub dn: String,
    /// `sAMAccountName`, for `DOMAIN\name` renderings.
    pub sam_account_name: Option<String>,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// DNs of every security group in the account's token (nested and primary included), as
    /// the directory spells them, sorted. Groups outside `base_dn` are not listed.
    pub groups: Vec<String>,
    pub(super) normalized_groups: Vec<String>,
}

impl Account {
    /// The name the proxy forwards for an account found by certificate: its
    /// `userPrincipalName`, else its `sAMAccountName`, else its DN.
    pub fn display_name(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .or(self.sam_account_name.as_deref())
            .unwrap_or(&self.dn)
    }

    /// True when the account is in at least one of `required` (or `required` is empty).
    pub fn in_any_group(&self, required: &[GroupDn]) -> bool {
        required.is_empty()
            || required
                .iter()
                .any(|g| self.normalized_groups.contains(&g.normalized))
    }
}

/// The outcome of a directory check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The account may proceed.
    Allow(Arc<Account>),
    /// The directory refused; the reason is for logs only.
    Deny(DenyReason),
    /// No answer could be had and none was cached: fail closed.
    Unavailable,
}

impl Verdict {
    /// IIS status and sub-status for this verdict; `(200, 0)` for [`Verdict::Allow`].
    ///
    /// [`Verdict::Unavailable`] is **503.0**, not the 401.1 IIS shows when no logon server is
    /// reachable (Win32 1311): a 401 tells clients and monitors "your credentials are wrong",
    /// while an outage is ours and retryable. The response is fail-closed either way.
    pub fn iis_status(&self) -> (u16, u16) {
        match self {
            Self::Allow(_) => (200, 0),
            Self::Deny(reason) => reason.iis_status(),
            Self::Unavailable => (503, 0),
        }
    }

    /// A bounded label for logs and metrics: `allow`, `unavailable`, or the deny reason.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Allow(_) => "allow",
            Self::Deny(reason) => reason.as_str(),
            Self::Unavailable => "unavailable",
        }
    }
}

/// Which account to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRef<'a> {
    /// A user name as an IIS mapping stores it: `DOMAIN\name`, `name@realm`, or a bare `name`
    /// to which IIS applies the section's `defaultLogonDomain`.
    Name {
        /// The mapping's `userName`.
        name: &'a str,
        /// IIS `defaultLogonDomain` of the mapping's section.
        default_logon_domain: Option<&'a str>,
    },
    /// A DN the directory returned, e.g. from [`super::Directory::find_by_certificate`].
    Dn(&'a str),
}

/// The result of [`super::Directory::find_by_certificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertMatch {
    /// Exactly one account maps the certificate.
    Found {
        /// The account's DN; check it with [`AccountRef::Dn`].
        dn: String,
        /// The form that matched, when it can be told from the stored values.
        form: Option<AltSecForm>,
    },
    /// No account maps the certificate with an allowed form.
    NotFound,
    /// More than one account does: refused, as Windows does without a user-name hint.
    Ambiguous,
    /// The directory could not be asked.
    Unavailable,
}
