//! IIS vocabulary: `sslFlags` and the status/sub-status answers IIS gives.
//!
//! People moving sites off IIS diagnose problems by sub-status (403.7, 401.2, ...), so certgate
//! answers with the same numbers, the same reason texts and a hint a person can act on.

use std::fmt;

/// IIS `access@sslFlags`, parsed once at config load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SslFlags {
    /// `Ssl`: HTTPS required. Every certgate listener is HTTPS, so this is informational.
    pub ssl: bool,
    /// `SslNegotiateCert`: accept a client certificate (IIS Manager "Accept").
    pub negotiate_cert: bool,
    /// `SslRequireCert`: require one, else 403.7 (IIS Manager "Require").
    pub require_cert: bool,
}

/// The numeric `sslFlags` bits IIS defines (`Ssl`, `SslNegotiateCert`, `SslRequireCert`,
/// `SslMapCert`, `Ssl128`). Any other bit is a typo or a value from another product.
const DEFINED_BITS: u32 = 8 | 32 | 64 | 128 | 256;

/// A problem in an `ssl_flags` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SslFlagsError {
    /// A flag name IIS does not know.
    #[error("unknown flag `{0}` (IIS flags: None, Ssl, SslNegotiateCert, SslRequireCert, Ssl128)")]
    UnknownFlag(String),
    /// A number with bits IIS does not define (e.g. `"1"`), which would otherwise read as no
    /// flag at all and silently turn client certificates off.
    #[error(
        "`{value}` sets bits IIS does not define ({undefined:#x}); IIS sslFlags bits: Ssl=8, \
         SslNegotiateCert=32, SslRequireCert=64, SslMapCert=128, Ssl128=256"
    )]
    UndefinedBits {
        /// The number as given.
        value: u32,
        /// The bits outside [`DEFINED_BITS`].
        undefined: u32,
    },
}

/// A flag IIS accepts that changes nothing in certgate; callers say so in their own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoOpFlag {
    /// `Ssl128` (256): a no-op since IIS 7.5.
    Ssl128,
    /// `SslMapCert` (128): an IIS 6 flag, not an IIS 7+ one.
    SslMapCert,
}

impl NoOpFlag {
    /// Why the flag is ignored, for a configuration warning.
    pub fn note(self) -> &'static str {
        match self {
            Self::Ssl128 => "Ssl128 has had no effect since IIS 7.5; certgate ignores it",
            Self::SslMapCert => "SslMapCert is not an IIS 10 flag; certgate ignores it",
        }
    }
}

impl SslFlags {
    /// Parses IIS's comma-separated flag list (`"Ssl, SslNegotiateCert, SslRequireCert"`) or its
    /// numeric form (`"104"`) for the runtime: `SslRequireCert` implies `SslNegotiateCert`, and
    /// flags IIS accepts but that change nothing come back as warnings.
    pub fn parse(text: &str) -> Result<(Self, Vec<String>), SslFlagsError> {
        let (mut flags, no_op) = Self::parse_as_written(text)?;
        // IIS writes Require together with Negotiate; a certificate cannot be required without
        // being requested.
        if flags.require_cert {
            flags.negotiate_cert = true;
        }
        Ok((flags, no_op.iter().map(|f| f.note().to_owned()).collect()))
    }

    /// The one parser of `sslFlags` (certgate's `ssl_flags` and IIS's XML attribute): the flags
    /// exactly as written, and the accepted no-op flags. Names are case-insensitive; a number
    /// must use only the bits IIS defines.
    pub fn parse_as_written(text: &str) -> Result<(Self, Vec<NoOpFlag>), SslFlagsError> {
        let mut flags = Self::default();
        let mut no_op = Vec::new();
        if let Ok(n) = text.trim().parse::<u32>() {
            if n & !DEFINED_BITS != 0 {
                return Err(SslFlagsError::UndefinedBits {
                    value: n,
                    undefined: n & !DEFINED_BITS,
                });
            }
            flags.ssl = n & 8 != 0;
            flags.negotiate_cert = n & 32 != 0;
            flags.require_cert = n & 64 != 0;
            if n & 128 != 0 {
                no_op.push(NoOpFlag::SslMapCert);
            }
            if n & 256 != 0 {
                no_op.push(NoOpFlag::Ssl128);
            }
        } else {
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.to_ascii_lowercase().as_str() {
                    "none" => {}
                    "ssl" => flags.ssl = true,
                    "sslnegotiatecert" => flags.negotiate_cert = true,
                    "sslrequirecert" => flags.require_cert = true,
                    "ssl128" => no_op.push(NoOpFlag::Ssl128),
                    "sslmapcert" => no_op.push(NoOpFlag::SslMapCert),
                    _ => return Err(SslFlagsError::UnknownFlag(part.to_owned())),
                }
            }
        }
        Ok((flags, no_op))
    }

    /// Whether a client certificate is requested at all for this scope.
    pub fn wants_certificate(self) -> bool {
        self.negotiate_cert
    }
}

impl fmt::Display for SslFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.ssl {
            parts.push("Ssl");
        }
        if self.negotiate_cert {
            parts.push("SslNegotiateCert");
        }
        if self.require_cert {
            parts.push("SslRequireCert");
        }
        if parts.is_empty() {
            parts.push("None");
        }
        f.write_str(&parts.join(", "))
    }
}

/// An IIS answer: HTTP status, IIS sub-status and the texts shown to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IisStatus {
    /// The HTTP status code on the wire.
    pub status: u16,
    /// The IIS sub-status (appears in the body and the access log, never on the status line).
    pub substatus: u16,
    /// IIS's reason text.
    pub reason: &'static str,
    /// What the person can do about it.
    pub hint: &'static str,
}

impl IisStatus {
    /// 401.1 Logon failed: the mapped account cannot log on.
    pub const LOGON_FAILED: Self = Self {
        status: 401,
        substatus: 1,
        reason: "Logon failed",
        hint: "The certificate maps to an account that cannot log on (missing, disabled, locked \
               out, expired, or its password changed). Ask the site administrator to check the \
               mapped account.",
    };
    /// 401.3: the account is valid but not in a group the scope requires.
    pub const UNAUTHORIZED_ACL: Self = Self {
        status: 401,
        substatus: 3,
        reason: "Unauthorized due to ACL on resource",
        hint: "Your account was recognised but is not a member of a group allowed to use this \
               part of the site. Ask the site administrator for access.",
    };
    /// 503.0: the directory that verifies accounts cannot be reached (certgate-specific: IIS
    /// would say 401.1, which wrongly blames the user).
    pub const DIRECTORY_UNAVAILABLE: Self = Self {
        status: 503,
        substatus: 0,
        reason: "Service Unavailable",
        hint: "The directory that verifies accounts cannot be reached right now. Try again in a \
               moment.",
    };
    /// 401.2: no authentication produced a user and anonymous access is off.
    pub const LOGON_FAILED_CONFIG: Self = Self {
        status: 401,
        substatus: 2,
        reason: "Logon failed due to server configuration",
        hint: "Your certificate is valid but is not mapped to any user for this site, and \
               anonymous access is disabled. Ask the site administrator to add a mapping for \
               your certificate.",
    };
    /// 403.7: `SslRequireCert` and no certificate was presented.
    pub const CERT_REQUIRED: Self = Self {
        status: 403,
        substatus: 7,
        reason: "Client certificate required",
        hint: "The page you are attempting to access requires your browser to have a client \
               certificate that the Web server recognizes. Install or select your client \
               certificate and try again.",
    };
    /// 403.12: a Deny many-to-one mapping matched.
    pub const MAPPER_DENIED: Self = Self {
        status: 403,
        substatus: 12,
        reason: "Mapper denied access",
        hint: "Your client certificate has been explicitly denied access to this site.",
    };
    /// 403.13: revoked, or revocation status could not be determined.
    pub const CERT_REVOKED: Self = Self {
        status: 403,
        substatus: 13,
        reason: "Client certificate revoked",
        hint: "Your client certificate has been revoked, or its revocation status could not be \
               checked. Request a new certificate from your certificate authority.",
    };
    /// 403.16: untrusted chain, bad signature, wrong usage or malformed certificate.
    pub const CERT_UNTRUSTED: Self = Self {
        status: 403,
        substatus: 16,
        reason: "Client certificate is untrusted or invalid",
        hint: "Your client certificate is either not trusted or is invalid: it must be issued by \
               a certificate authority this site trusts and be valid for client authentication.",
    };
    /// 403.17: outside its validity period.
    pub const CERT_EXPIRED: Self = Self {
        status: 403,
        substatus: 17,
        reason: "Client certificate has expired or is not yet valid",
        hint: "Your client certificate has expired or is not yet valid. Check your computer's \
               clock, or renew the certificate.",
    };

    /// The answer for a directory verdict's `(status, substatus)`.
    pub fn from_codes(status: u16, substatus: u16) -> Self {
        match (status, substatus) {
            (401, 2) => Self::LOGON_FAILED_CONFIG,
            (401, 3) => Self::UNAUTHORIZED_ACL,
            (503, _) => Self::DIRECTORY_UNAVAILABLE,
            _ => Self::LOGON_FAILED,
        }
    }

    /// The `status.substatus` text used in logs and pages, e.g. `403.7`.
    pub fn code(&self) -> String {
        format!("{}.{}", self.status, self.substatus)
    }
}

impl fmt::Display for IisStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} {}", self.status, self.substatus, self.reason)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_flag_lists_and_numbers() {
        let cases = [
            ("Ssl", (true, false, false)),
            ("Ssl, SslNegotiateCert", (true, true, false)),
            ("Ssl,SslNegotiateCert,SslRequireCert", (true, true, true)),
            ("sslrequirecert", (false, true, true)),
            ("None", (false, false, false)),
            ("", (false, false, false)),
            ("104", (true, true, true)),
            ("40", (true, true, false)),
        ];
        for (text, (ssl, neg, req)) in cases {
            let (f, _) = SslFlags::parse(text).unwrap();
            assert_eq!(
                (f.ssl, f.negotiate_cert, f.require_cert),
                (ssl, neg, req),
                "{text}"
            );
        }
    }

    #[test]
    fn warns_on_no_op_flags_and_rejects_unknown() {
        let (_, w) = SslFlags::parse("Ssl, Ssl128").unwrap();
        assert_eq!(w.len(), 1);
        let (_, w) = SslFlags::parse("Ssl, SslMapCert").unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            SslFlags::parse("Ssl, SslRequiredCert"),
            Err(SslFlagsError::UnknownFlag("SslRequiredCert".into()))
        );
    }

    #[test]
    fn numbers_with_undefined_bits_are_refused() {
        for (text, undefined) in [
            ("1", 1),
            ("2", 2),
            ("4", 4),
            ("16", 16),
            ("105", 1),
            ("512", 512),
        ] {
            match SslFlags::parse(text) {
                Err(SslFlagsError::UndefinedBits { undefined: u, .. }) => {
                    assert_eq!(u, undefined, "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let (flags, no_op) = SslFlags::parse_as_written("0").unwrap();
        assert_eq!(flags, SslFlags::default());
        assert!(no_op.is_empty());
        let (flags, no_op) = SslFlags::parse_as_written("456").unwrap();
        assert!(flags.ssl && !flags.negotiate_cert && flags.require_cert);
        assert_eq!(no_op, [NoOpFlag::SslMapCert, NoOpFlag::Ssl128]);
        // Numbers too large or negative are not numbers IIS writes.
        assert!(SslFlags::parse("4294967296").is_err());
        assert!(SslFlags::parse("-8").is_err());
    }

    #[test]
    fn as_written_keeps_require_without_negotiate_and_displays_the_list() {
        let (flags, _) = SslFlags::parse_as_written("Ssl, SslRequireCert").unwrap();
        assert!(!flags.negotiate_cert);
        assert_eq!(flags.to_string(), "Ssl, SslRequireCert");
        let (flags, _) = SslFlags::parse("Ssl, SslRequireCert").unwrap();
        assert!(flags.negotiate_cert);
        assert_eq!(SslFlags::default().to_string(), "None");
    }

    #[test]
    fn displays_codes() {
        assert_eq!(IisStatus::CERT_REQUIRED.code(), "403.7");
        assert_eq!(
            IisStatus::LOGON_FAILED_CONFIG.to_string(),
            "401.2 Logon failed due to server configuration"
        );
    }
}
