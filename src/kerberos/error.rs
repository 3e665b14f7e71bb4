//! KDC and GSS-API failures, classified for the answer page, the log and the metrics.
//!
//! The KDC tells a client little (Samba and AD alike): the GSS minor status carries the KDC
//! error code (`ERROR_TABLE_BASE_krb5 + code`), which is what the classification uses. The
//! full GSS text goes to the log line, never to the page.

use crate::iis::IisStatus;

/// MIT's `ERROR_TABLE_BASE_krb5` as an unsigned minor status: KDC error `n` is `BASE + n`.
const BASE: u32 = 2_529_638_912;
/// `KRB5_KDC_UNREACH` (-1765328228 as `u32`): no KDC of the realm answered.
const KDC_UNREACH: u32 = 2_529_639_068;
/// `KRB5_REALM_CANT_RESOLVE` / `KRB5_REALM_UNKNOWN`: no KDC configured for the realm.
const REALM_UNKNOWN: [u32; 2] = [2_529_639_066, 2_529_639_132];

/// 500.0 when certgate cannot get a Kerberos ticket to the backend for a valid user.
pub const KERBEROS_REFUSED: IisStatus = IisStatus {
    status: 500,
    substatus: 0,
    reason: "Internal Server Error",
    hint: "The application behind this site signs you in with Kerberos, and the domain \
           refused to let this gateway sign in on your behalf. Ask the site administrator to \
           check the gateway's delegation settings and your account.",
};
/// 503.0 when no domain controller (KDC) answers.
pub const KERBEROS_UNAVAILABLE: IisStatus = IisStatus {
    status: 503,
    substatus: 0,
    reason: "Service Unavailable",
    hint: "The domain controller that issues Kerberos tickets cannot be reached right now. Try \
           again in a moment.",
};

/// Which exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The service account's own TGT (keytab or password).
    Service,
    /// S4U2Self for the user.
    S4u2Self,
    /// The user's TGT from the mapping password.
    Password,
    /// The service ticket (S4U2Proxy, or a TGS-REQ) and the AP-REQ.
    ServiceTicket,
}

impl Step {
    /// Log and metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service_account",
            Self::S4u2Self => "s4u2self",
            Self::Password => "password",
            Self::ServiceTicket => "service_ticket",
        }
    }
}

/// What went wrong, in the terms an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user (or service account) is not in the KDC's database.
    PrincipalUnknown,
    /// Disabled, locked out, expired, or policy (`KDC_ERR_POLICY`, `CLIENT_REVOKED`,
    /// `KEY_EXPIRED`).
    AccountRefused,
    /// Wrong password.
    BadPassword,
    /// `KDC_ERR_BADOPTION`: the SPN is not in `msDS-AllowedToDelegateTo`, protocol transition
    /// is off, the user is "sensitive and cannot be delegated", or the TGT is not forwardable.
    DelegationRefused,
    /// The SPN is not in the KDC's database.
    UnknownSpn,
    /// Clocks differ by more than the KDC allows.
    ClockSkew,
    /// No KDC answered.
    Unreachable,
    /// No KDC is configured for the realm.
    NoKdcForRealm,
    /// Anything else.
    Other,
}

impl Kind {
    /// The bounded `outcome` label of `certgate_kerberos_kdc_requests_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrincipalUnknown => "principal_unknown",
            Self::AccountRefused => "account_refused",
            Self::BadPassword => "bad_password",
            Self::DelegationRefused => "delegation_refused",
            Self::UnknownSpn => "unknown_spn",
            Self::ClockSkew => "clock_skew",
            Self::Unreachable => "kdc_unreachable",
            Self::NoKdcForRealm => "no_kdc_for_realm",
            Self::Other => "other",
        }
    }

    /// From the minor status, else from MIT's (com_err, English) message: for the SPNEGO
    /// mechanism the GSS mechglue hands out its own mapped minor codes.
    fn classify(minor: u32, text: &str) -> Self {
        match Self::from_minor(minor) {
            Self::Other => Self::from_text(text),
            kind => kind,
        }
    }

    fn from_text(text: &str) -> Self {
        const TEXTS: [(&str, Kind); 11] = [
            (
                "Client not found in Kerberos database",
                Kind::PrincipalUnknown,
            ),
            (
                "Client's entry in database has expired",
                Kind::AccountRefused,
            ),
            ("KDC policy rejects request", Kind::AccountRefused),
            (
                "Client's credentials have been revoked",
                Kind::AccountRefused,
            ),
            ("Password has expired", Kind::AccountRefused),
            (
                "KDC can't fulfill requested option",
                Kind::DelegationRefused,
            ),
            ("Server not found in Kerberos database", Kind::UnknownSpn),
            ("Preauthentication failed", Kind::BadPassword),
            ("Clock skew too great", Kind::ClockSkew),
            ("Cannot contact any KDC", Kind::Unreachable),
            ("Cannot find KDC for realm", Kind::NoKdcForRealm),
        ];
        TEXTS
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map_or(Self::Other, |(_, kind)| *kind)
    }

    fn from_minor(minor: u32) -> Self {
        match minor.checked_sub(BASE) {
            Some(6) => Self::PrincipalUnknown,
            Some(7) => Self::UnknownSpn,
            Some(12 | 18 | 23) => Self::AccountRefused,
            Some(13) => Self::DelegationRefused,
            Some(24 | 31) => Self::BadPassword,
            Some(37) => Self::ClockSkew,
            _ if minor == KDC_UNREACH => Self::Unreachable,
            _ if REALM_UNKNOWN.contains(&minor) => Self::NoKdcForRealm,
            _ => Self::Other,
        }
    }
}

/// A failed Kerberos step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} failed ({}): {detail}", step.as_str(), kind.as_str())]
pub struct KdcFailure {
    /// Which exchange.
    pub step: Step,
    /// Classification.
    pub kind: Kind,
    /// The GSS-API text (major and minor status), for the log.
    pub detail: String,
}

impl KdcFailure {
    /// Classifies a GSS-API error.
    pub fn from_gss(step: Step, minor: u32, detail: String) -> Self {
        Self {
            step,
            kind: Kind::classify(minor, &detail),
            detail,
        }
    }

    /// A failure with no GSS status behind it.
    pub fn other(step: Step, detail: impl Into<String>) -> Self {
        Self {
            step,
            kind: Kind::Other,
            detail: detail.into(),
        }
    }

    /// The answer for the client. A user the KDC does not know or will not log on is IIS's
    /// 401.1, as `LogonUser` failing would be; everything that is the gateway's or the domain's
    /// configuration is 500.0; an unreachable KDC is 503.0.
    pub fn status(&self) -> IisStatus {
        let user_step = matches!(self.step, Step::S4u2Self | Step::Password);
        match self.kind {
            Kind::Unreachable => KERBEROS_UNAVAILABLE,
            Kind::PrincipalUnknown | Kind::AccountRefused | Kind::BadPassword if user_step => {
                IisStatus::LOGON_FAILED
            }
            _ => KERBEROS_REFUSED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdc_codes_become_statuses() {
        let f = |step, minor| KdcFailure::from_gss(step, minor, String::new());
        assert_eq!(
            f(Step::S4u2Self, BASE + 12).status(),
            IisStatus::LOGON_FAILED
        );
        assert_eq!(
            f(Step::S4u2Self, BASE + 6).status(),
            IisStatus::LOGON_FAILED
        );
        assert_eq!(
            f(Step::Password, BASE + 24).status(),
            IisStatus::LOGON_FAILED
        );
        assert_eq!(
            f(Step::ServiceTicket, BASE + 13).kind,
            Kind::DelegationRefused
        );
        assert_eq!(f(Step::ServiceTicket, BASE + 13).status(), KERBEROS_REFUSED);
        assert_eq!(f(Step::Service, BASE + 6).status(), KERBEROS_REFUSED);
        assert_eq!(f(Step::Service, KDC_UNREACH).status(), KERBEROS_UNAVAILABLE);
        assert_eq!(f(Step::S4u2Self, 1).kind, Kind::Other);
        let spnego = KdcFailure::from_gss(
            Step::S4u2Self,
            100_001,
            "Unspecified GSS failure.  Minor code may provide more information (KDC policy \
             rejects request)"
                .into(),
        );
        assert_eq!(spnego.kind, Kind::AccountRefused);
    }
}
