//! The authentication phase: from a scope's settings and the connection's certificate verdict
//! to a user, an anonymous pass, or an IIS answer.
//!
//! This is a pure function so the proxy and `certgate explain` reach the same decision by the
//! same code.

use std::sync::Arc;

use crate::config::Scope;
use crate::identity::CertFacts;
use crate::iis::IisStatus;
use crate::mapping::{MappedUser, MappingOutcome};
use crate::tls::client_auth::ClientCert;

/// Who a request is, once authentication succeeded.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Anonymous access; `cert` is a validated certificate the scope accepted but no mapping
    /// matched (its facts are still forwarded, without a user).
    Anonymous {
        /// The validated certificate, if the scope accepts certificates and one was sent.
        cert: Option<Arc<CertFacts>>,
    },
    /// The scope maps certificates with Active Directory (`altSecurityIdentities`); the
    /// caller asks the directory.
    Directory {
        /// The validated certificate.
        cert: Arc<CertFacts>,
    },
    /// A mapping allowed the certificate.
    User {
        /// The mapped account.
        user: Arc<MappedUser>,
        /// The certificate it was mapped from.
        cert: Arc<CertFacts>,
    },
}

/// Runs IIS's order: sslFlags, then chain status, then the mapper (IIS's, or a hand-off to the
/// AD mapper), then anonymous access. Directory account checks come after, in the caller.
/// `map` is called only for a valid certificate, so callers can cache its result.
pub fn authenticate(
    scope: &Scope,
    client_cert: &ClientCert,
    map: impl FnOnce(&CertFacts) -> MappingOutcome,
) -> Result<Decision, IisStatus> {
    let flags = scope.ssl_flags;
    if !flags.wants_certificate() {
        // IIS never asks for a certificate here, so the only way in is anonymous.
        return if scope.anonymous {
            Ok(Decision::Anonymous { cert: None })
        } else {
            Err(IisStatus::LOGON_FAILED_CONFIG)
        };
    }
    match client_cert {
        ClientCert::Absent if flags.require_cert => Err(IisStatus::CERT_REQUIRED),
        ClientCert::Absent if scope.anonymous => Ok(Decision::Anonymous { cert: None }),
        ClientCert::Absent => Err(IisStatus::LOGON_FAILED_CONFIG),
        ClientCert::Rejected { status, .. } => Err(*status),
        ClientCert::Valid(facts) if scope.directory.certificate_mapping.is_some() => {
            Ok(Decision::Directory {
                cert: Arc::clone(facts),
            })
        }
        ClientCert::Valid(facts) => match map(facts) {
            MappingOutcome::Allow(user) => Ok(Decision::User {
                user,
                cert: Arc::clone(facts),
            }),
            MappingOutcome::Deny { .. } => Err(IisStatus::MAPPER_DENIED),
            MappingOutcome::NoMatch if scope.anonymous => Ok(Decision::Anonymous {
                cert: Some(Arc::clone(facts)),
            }),
            MappingOutcome::NoMatch => Err(IisStatus::LOGON_FAILED_CONFIG),
        },
    }
}
