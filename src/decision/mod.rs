//! The one decision certgate makes about a request: forward it (as whom, with which
//! certificate) or refuse it (with which IIS status).
//!
//! IIS's order, in one function ([`decide`]): the location's `sslFlags`, the connection's
//! certificate verdict, the mapper (IIS's one-to-one and many-to-one, or the Active Directory
//! mapper), the directory's account checks, and anonymous access. The proxy and
//! `certgate explain` both call it and only render its [`Verdict`] differently, so what explain
//! says is what the proxy does.
//!
//! The proxy runs it per request on the keep-alive path, so it allocates nothing the proxy did
//! not allocate before: the steps taken are recorded only through a [`Steps`] recorder, and the
//! proxy passes `()`, which records nothing and compiles away.

mod steps;

use std::sync::Arc;

use crate::config::Scope;
use crate::directory::{Account, AccountRef, DenyReason, Directory, Verdict as DirVerdict};
use crate::identity::CertFacts;
use crate::iis::IisStatus;
use crate::mapping::{MappedUser, MappingOutcome};
use crate::tls::client_auth::ClientCert;

pub use steps::{Step, Steps};

/// How the directory takes part.
#[derive(Clone, Copy)]
pub enum DirectoryAccess<'a> {
    /// Ask it, as the proxy does (`None`: no `[directory]` is configured, which fails closed).
    Query(Option<&'a Directory>),
    /// Do not ask: a decision that depends on the directory stops at
    /// [`Outcome::Undecided`] (`certgate explain` without `--query-directory`).
    Describe,
}

/// What [`decide`] concluded.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Forward, refuse, or (only with [`DirectoryAccess::Describe`]) undecided.
    pub outcome: Outcome,
    /// Which revocation sources were consulted for the certificate and what they said. `None`
    /// until a revocation checker fills it; renderers must then say that nothing was checked,
    /// never "not revoked".
    pub revocation: Option<RevocationNote>,
}

/// What a revocation check consulted, for explain and logs (filled by the revocation checker).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationNote {
    /// One line per source consulted, e.g. `CRL ca.crl (next update ...): not listed`.
    pub sources: Vec<String>,
}

/// The three ways a decision ends.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Forward to the backend.
    Forward(Granted),
    /// Answer with an IIS status.
    Refuse(Refusal),
    /// The directory would decide; only with [`DirectoryAccess::Describe`].
    Undecided(Pending),
}

/// Who a forwarded request is.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The validated certificate whose headers are forwarded (`None`: no certificate, or the
    /// location does not ask for one).
    pub cert: Option<Arc<CertFacts>>,
    /// The user; `None` for anonymous access.
    pub user: Option<User>,
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct User {
    /// The account name forwarded in the user header.
    pub name: Arc<str>,
    /// Mapping family: `one_to_one`, `many_to_one` or `active_directory` (a metric label).
    pub mapping: &'static str,
    /// The IIS mapping that produced the user (`None` for the Active Directory mapper).
    pub mapped: Option<Arc<MappedUser>>,
    /// The directory account, when the directory was asked (for the groups header).
    pub account: Option<Arc<Account>>,
}

/// Why a request is refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The answer.
    pub status: IisStatus,
    /// The step that refused.
    pub cause: Cause,
}

/// The step that refused, with what the logs need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Cause {
    /// `SslRequireCert` and no certificate (403.7).
    CertificateRequired,
    /// The certificate failed validation (403.13, 403.16, 403.17).
    CertificateRejected,
    /// A many-to-one Deny mapping matched (403.12).
    MapperDenied {
        /// The mapping's name.
        mapping: Arc<str>,
    },
    /// No user and anonymous access is off (401.2).
    NoUser,
    /// The directory refused or could not answer (401.1, 401.2, 401.3, 503).
    Directory {
        /// The directory's bounded verdict label (`disabled`, `unavailable`, ...).
        outcome: &'static str,
        /// Whom it was asked about: the mapped user name or the certificate subject.
        who: Arc<str>,
    },
    /// The scope needs the directory but none is configured (the loader refuses this; fail
    /// closed if it happens anyway).
    NoDirectory,
}

/// A directory question [`DirectoryAccess::Describe`] did not ask.
#[derive(Debug, Clone)]
pub enum Pending {
    /// Check the mapped account (exists, enabled, groups, credentials).
    Verify {
        /// The user the mapper chose; forwarded as this user if the directory agrees.
        user: Arc<MappedUser>,
        /// The certificate.
        cert: Arc<CertFacts>,
    },
    /// Find the account whose `altSecurityIdentities` names the certificate.
    CertificateMapping {
        /// The certificate.
        cert: Arc<CertFacts>,
    },
}

impl Verdict {
    fn refuse(status: IisStatus, cause: Cause) -> Self {
        Self::of(Outcome::Refuse(Refusal { status, cause }))
    }

    fn forward(cert: Option<Arc<CertFacts>>, user: Option<User>) -> Self {
        Self::of(Outcome::Forward(Granted { cert, user }))
    }

    fn of(outcome: Outcome) -> Self {
        Self {
            outcome,
            revocation: None,
        }
    }

    /// `(status, substatus)`: `(200, 0)` when forwarded, `(0, 0)` when undecided.
    pub fn codes(&self) -> (u16, u16) {
        match &self.outcome {
            Outcome::Forward(_) => (200, 0),
            Outcome::Refuse(r) => (r.status.status, r.status.substatus),
            Outcome::Undecided(_) => (0, 0),
        }
    }

    /// The user a forwarded request carries.
    pub fn user(&self) -> Option<&User> {
        match &self.outcome {
            Outcome::Forward(g) => g.user.as_ref(),
            _ => None,
        }
    }
}

/// Decides one request at `scope` for a connection whose certificate verdict is `client_cert`.
///
/// `map` runs the scope's IIS mapper; it is called only for a valid certificate and only when
/// the IIS mapper decides, so the proxy can answer it from its per-connection cache.
pub async fn decide<S: Steps>(
    scope: &Scope,
    client_cert: &ClientCert,
    map: impl FnOnce(&CertFacts) -> MappingOutcome,
    directory: DirectoryAccess<'_>,
    steps: &mut S,
) -> Verdict {
    let flags = scope.ssl_flags;
    // 1. sslFlags: without SslNegotiateCert IIS never asks, so the only way in is anonymous.
    if !flags.wants_certificate() {
        steps.record(|| Step::CertificateNotRequested);
        return anonymous(scope, None, steps);
    }
    // 2. The connection's certificate verdict.
    let cert = match client_cert {
        ClientCert::Absent if flags.require_cert => {
            steps.record(|| Step::Certificate { outcome: "absent" });
            return Verdict::refuse(IisStatus::CERT_REQUIRED, Cause::CertificateRequired);
        }
        ClientCert::Absent => {
            steps.record(|| Step::Certificate { outcome: "absent" });
            return anonymous(scope, None, steps);
        }
        ClientCert::Rejected { status, .. } => {
            steps.record(|| Step::Certificate {
                outcome: "rejected",
            });
            return Verdict::refuse(*status, Cause::CertificateRejected);
        }
        ClientCert::Valid(facts) => {
            steps.record(|| Step::Certificate { outcome: "valid" });
            facts
        }
    };
    // 3. The mapper: Active Directory's, or IIS's then the directory's account checks.
    if scope.directory.certificate_mapping.is_some() {
        return directory_mapping(scope, cert, directory, steps).await;
    }
    match map(cert) {
        MappingOutcome::Allow(user) => {
            steps.record(|| Step::Mapped {
                user: user.user_name.to_string(),
                mapping: user.kind.as_str(),
            });
            verify(scope, cert, user, directory, steps).await
        }
        MappingOutcome::Deny { mapping } => {
            steps.record(|| Step::MapperDenied {
                mapping: mapping.to_string(),
            });
            Verdict::refuse(IisStatus::MAPPER_DENIED, Cause::MapperDenied { mapping })
        }
        MappingOutcome::NoMatch => {
            steps.record(|| Step::NoMapping);
            anonymous(scope, Some(Arc::clone(cert)), steps)
        }
    }
}

/// 4. Anonymous access, when nothing produced a user.
fn anonymous<S: Steps>(scope: &Scope, cert: Option<Arc<CertFacts>>, steps: &mut S) -> Verdict {
    steps.record(|| Step::Anonymous {
        allowed: scope.anonymous,
    });
    if scope.anonymous {
        Verdict::forward(cert, None)
    } else {
        Verdict::refuse(IisStatus::LOGON_FAILED_CONFIG, Cause::NoUser)
    }
}

/// The Active Directory mapper: the account whose `altSecurityIdentities` names `cert`.
async fn directory_mapping<S: Steps>(
    scope: &Scope,
    cert: &Arc<CertFacts>,
    directory: DirectoryAccess<'_>,
    steps: &mut S,
) -> Verdict {
    let directory = match directory {
        DirectoryAccess::Describe => {
            steps.record(|| Step::DirectoryNotQueried);
            return Verdict::of(Outcome::Undecided(Pending::CertificateMapping {
                cert: Arc::clone(cert),
            }));
        }
        DirectoryAccess::Query(None) => return no_directory(steps),
        DirectoryAccess::Query(Some(directory)) => directory,
    };
    let answer = directory
        .authenticate_certificate(cert, &scope.directory)
        .await;
    steps.record(|| Step::directory(&answer, &cert.subject.to_display_string()));
    match answer {
        DirVerdict::Allow(account) => {
            let user = User {
                name: account.display_name().into(),
                mapping: "active_directory",
                mapped: None,
                account: Some(account),
            };
            Verdict::forward(Some(Arc::clone(cert)), Some(user))
        }
        // No account names the certificate: the same as no IIS mapping matching.
        DirVerdict::Deny(DenyReason::NoMapping) if scope.anonymous => {
            anonymous(scope, Some(Arc::clone(cert)), steps)
        }
        other => directory_refusal(&other, cert.subject.to_display_string().into()),
    }
}

/// The directory's account checks for a user the IIS mapper chose (the `LogonUser` step).
async fn verify<S: Steps>(
    scope: &Scope,
    cert: &Arc<CertFacts>,
    user: Arc<MappedUser>,
    directory: DirectoryAccess<'_>,
    steps: &mut S,
) -> Verdict {
    let Some(verification) = &scope.directory.verification else {
        let user = User {
            name: Arc::clone(&user.user_name),
            mapping: user.kind.as_str(),
            mapped: Some(user),
            account: None,
        };
        return Verdict::forward(Some(Arc::clone(cert)), Some(user));
    };
    let directory = match directory {
        DirectoryAccess::Describe => {
            steps.record(|| Step::DirectoryNotQueried);
            return Verdict::of(Outcome::Undecided(Pending::Verify {
                user,
                cert: Arc::clone(cert),
            }));
        }
        DirectoryAccess::Query(None) => return no_directory(steps),
        DirectoryAccess::Query(Some(directory)) => directory,
    };
    let account = AccountRef::Name {
        name: &user.user_name,
        default_logon_domain: scope.mapper.default_logon_domain.as_deref(),
    };
    let answer = directory
        .verify(account, user.password.as_ref(), verification)
        .await;
    steps.record(|| Step::directory(&answer, &user.user_name));
    match answer {
        DirVerdict::Allow(account) => {
            let granted = User {
                name: Arc::clone(&user.user_name),
                mapping: user.kind.as_str(),
                mapped: Some(user),
                account: Some(account),
            };
            Verdict::forward(Some(Arc::clone(cert)), Some(granted))
        }
        other => directory_refusal(&other, Arc::clone(&user.user_name)),
    }
}

fn directory_refusal(answer: &DirVerdict, who: Arc<str>) -> Verdict {
    let (status, substatus) = answer.iis_status();
    Verdict::refuse(
        IisStatus::from_codes(status, substatus),
        Cause::Directory {
            outcome: answer.label(),
            who,
        },
    )
}

fn no_directory<S: Steps>(steps: &mut S) -> Verdict {
    steps.record(|| Step::NoDirectory);
    Verdict::refuse(IisStatus::DIRECTORY_UNAVAILABLE, Cause::NoDirectory)
}
