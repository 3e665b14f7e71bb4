//! `certgate explain`: why a certificate is allowed or denied, by the proxy's own code.
//!
//! The decision is reached by the same code the proxy runs per connection and request (chain
//! classification, location lookup, and [`crate::decision::decide`]); explain records each
//! step on the way and renders the verdict so a person can see which one to fix.

mod render;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures_util::FutureExt as _;
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::config::{Runtime, Site};
use crate::decision::{
    self, Cause, DirectoryAccess, Granted, Outcome, Pending, Refusal, Step, User, decide,
};
use crate::identity::CertFacts;
use crate::mapping::many_to_one::MappingTrace;
use crate::mapping::{Mapper, MappingOutcome};
use crate::proxy::path;
use crate::revocation::{Report as RevocationReport, Revocation};
use crate::tls::client_auth::{ClientCert, apply_revocation};

/// What to explain: a certificate chain (leaf first) sent to a site and path.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Host name the request would name (chooses the site like SNI does).
    pub host: Option<&'a str>,
    /// Site name, instead of `host`.
    pub site: Option<&'a str>,
    /// Request path.
    pub path: &'a str,
}

/// Why explain could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No site matches the host or name.
    #[error("{0}")]
    NoSite(String),
    /// The path cannot be normalised (the proxy would answer 400).
    #[error("path `{path}` is refused by the proxy (400): {reason}")]
    BadPath {
        /// The path given.
        path: String,
        /// Why.
        reason: path::PathError,
    },
    /// No certificate in the file.
    #[error("the certificate file holds no certificate")]
    NoCertificate,
    /// The decision waited for something although the directory was not to be queried.
    #[error("the decision could not complete without querying the directory")]
    WouldWait,
}

/// The certificate as read.
#[derive(Debug, Serialize)]
pub struct CertificateSummary {
    /// Subject, IIS display order.
    pub subject: String,
    /// Issuer, IIS display order.
    pub issuer: String,
    /// Serial, uppercase hex.
    pub serial: String,
    /// SHA-1 thumbprint.
    pub thumbprint: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
}

/// The chain check.
#[derive(Debug, Serialize)]
pub struct ChainCheck {
    /// `valid`, `rejected`, or `absent`.
    pub outcome: &'static str,
    /// The IIS status for a rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The validator's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The one-to-one lookup.
#[derive(Debug, Serialize)]
pub struct OneToOneCheck {
    /// Enabled entries in the index.
    pub entries: usize,
    /// The entry that holds this exact certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit: Option<String>,
    /// The user it maps to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// The mapper's part of the decision.
#[derive(Debug, Serialize)]
pub struct MapperCheck {
    /// Section `enabled`.
    pub enabled: bool,
    /// `one_to_one_certificate_mappings_enabled`.
    pub one_to_one_enabled: bool,
    /// `many_to_one_certificate_mappings_enabled`.
    pub many_to_one_enabled: bool,
    /// One-to-one lookup.
    pub one_to_one: OneToOneCheck,
    /// Every many-to-one mapping, in priority order.
    pub many_to_one: Vec<MappingTrace>,
}

/// The final answer.
#[derive(Debug, Serialize)]
pub struct Verdict {
    /// HTTP status.
    pub status: u16,
    /// IIS sub-status.
    pub substatus: u16,
    /// `status.substatus`.
    pub code: String,
    /// What happens: forwarded (as whom) or refused (why).
    pub summary: String,
    /// The mapped user, when forwarded as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Mapping family that produced the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
}

/// The whole trace.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The certificate.
    pub certificate: Option<CertificateSummary>,
    /// Site chosen.
    pub site: String,
    /// How it was chosen.
    pub site_chosen_by: String,
    /// Path as given.
    pub path: String,
    /// Location that applies (`/` for the site root).
    pub location: String,
    /// Effective ssl_flags.
    pub ssl_flags: String,
    /// Effective anonymous_authentication.
    pub anonymous_authentication: bool,
    /// Chain check.
    pub chain: ChainCheck,
    /// Mapper trace (absent when the mapper is never consulted).
    pub mapper: Option<MapperCheck>,
    /// Directory checks that apply after mapping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// What the directory answered, when it was queried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_answer: Option<String>,
    /// Kerberos to the backend, when the scope uses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<String>,
    /// What the KDC answered, when it was queried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos_answer: Option<String>,
    /// The answer.
    pub verdict: Verdict,
    /// The steps of the decision, in order, with their facts.
    pub steps: Vec<Step>,
}

/// Explains what the proxy would answer for `chain` at `target`, without contacting the
/// directory (directory checks are described, not run).
pub fn explain(
    runtime: &Runtime,
    chain: &[CertificateDer<'static>],
    target: &Target<'_>,
) -> Result<Explanation, ExplainError> {
    // Without the directory the decision never waits, so one poll completes it. Revocation
    // from local sources only (configured CRL files): nothing is fetched.
    let report = revocation_for(runtime, chain, target).and_then(|r| r.check_local(chain));
    analyse(
        runtime,
        chain,
        target,
        DirectoryAccess::Describe,
        report.as_ref(),
        false,
    )
    .now_or_never()
    .unwrap_or(Err(ExplainError::WouldWait))
}

/// [`explain`] with the revocation check the proxy runs after the handshake (fetching CRLs and
/// OCSP answers as it would, from the same cache and state directory); the directory checks
/// are described, not run.
pub async fn explain_with_revocation(
    runtime: &Runtime,
    chain: &[CertificateDer<'static>],
    target: &Target<'_>,
) -> Result<Explanation, ExplainError> {
    let report = revocation_report(runtime, chain, target).await;
    analyse(
        runtime,
        chain,
        target,
        DirectoryAccess::Describe,
        report.as_ref(),
        false,
    )
    .await
}

/// The proxy's revocation check for `chain` at the site `target` chooses, when it applies.
async fn revocation_report(
    runtime: &Runtime,
    chain: &[CertificateDer<'static>],
    target: &Target<'_>,
) -> Option<RevocationReport> {
    Some(revocation_for(runtime, chain, target)?.check(chain).await)
}

/// The revocation checker of the site `target` chooses, when `chain` verifies there (the proxy
/// checks revocation only for a verified chain).
fn revocation_for<'r>(
    runtime: &'r Runtime,
    chain: &[CertificateDer<'static>],
    target: &Target<'_>,
) -> Option<&'r Arc<Revocation>> {
    let (site, _) = choose_site(runtime, target).ok()?;
    let verdict = site
        .client_auth
        .classify((!chain.is_empty()).then_some(chain));
    match verdict {
        ClientCert::Valid(_) => site.client_auth.revocation(),
        _ => None,
    }
}

/// [`explain`], then runs the directory checks the decision depends on against the configured
/// directory, as the proxy would.
pub async fn explain_with_directory(
    runtime: &Runtime,
    chain: &[CertificateDer<'static>],
    target: &Target<'_>,
) -> Result<Explanation, ExplainError> {
    let report = revocation_report(runtime, chain, target).await;
    let access = match &runtime.directory {
        Some(directory) => DirectoryAccess::Query(Some(directory)),
        None => DirectoryAccess::Describe,
    };
    analyse(runtime, chain, target, access, report.as_ref(), true).await
}

/// Runs [`decide`] as the proxy does, recording its steps, and renders the result.
async fn analyse(
    runtime: &Runtime,
    chain: &[CertificateDer<'static>],
    target: &Target<'_>,
    access: DirectoryAccess<'_>,
    revocation: Option<&RevocationReport>,
    query_kerberos: bool,
) -> Result<Explanation, ExplainError> {
    let (site, chosen_by) = choose_site(runtime, target)?;
    let normalized = path::normalize(target.path).map_err(|reason| ExplainError::BadPath {
        path: target.path.to_owned(),
        reason,
    })?;
    let scope = site.scope_for(&normalized.canonical);
    let mut client_cert = site
        .client_auth
        .classify((!chain.is_empty()).then_some(chain));
    // Revocation, as the proxy checks it after the handshake; never claimed when not consulted.
    let revocation_note = match (&client_cert, revocation, site.client_auth.revocation()) {
        (ClientCert::Valid(_), Some(report), _) => {
            client_cert = apply_revocation(client_cert, report);
            format!("revocation: {}", report.summary())
        }
        (ClientCert::Valid(_), None, Some(checker)) => format!(
            "revocation not consulted by this explanation (it would need the network); the \
             proxy would check: {}",
            checker.describe(chain)
        ),
        _ => "revocation not checked".into(),
    };
    let certificate = chain
        .first()
        .and_then(|leaf| CertFacts::parse(leaf).ok())
        .map(|f| summary(&f));

    let chain_check = match &client_cert {
        ClientCert::Absent if !chain.is_empty() => ChainCheck {
            outcome: "not requested",
            status: None,
            detail: Some(
                "no ssl_flags of this site ask for client certificates, so none is requested"
                    .into(),
            ),
        },
        ClientCert::Absent => ChainCheck {
            outcome: "absent",
            status: None,
            detail: None,
        },
        ClientCert::Rejected { status, detail, .. } => ChainCheck {
            outcome: "rejected",
            status: Some(status.to_string()),
            detail: Some(detail.clone()),
        },
        ClientCert::Valid(_) => ChainCheck {
            outcome: "valid",
            status: None,
            detail: Some(format!(
                "chains to client_ca, within its validity period; {revocation_note}"
            )),
        },
    };

    let mut mapper_check = None;
    let mut steps = Vec::new();
    let mut decided = decide(
        scope,
        &client_cert,
        |facts| {
            let (check, outcome) = trace_mapper(&scope.mapper, facts);
            mapper_check = Some(check);
            outcome
        },
        access,
        &mut steps,
    )
    .await;
    // The decision starts from the connection's verdict, revocation included; carry what the
    // check consulted with it.
    decided.revocation = revocation.map(|report| decision::RevocationNote {
        sources: report.lines.clone(),
    });
    let mut verdict = render_verdict(&decided);
    let kerberos_answer = if query_kerberos {
        super::explain_kerberos::query(runtime, scope, &decided, &mut verdict).await
    } else {
        None
    };
    let directory_answer = steps.iter().find_map(|step| match step {
        Step::Directory { answer, .. } => Some(answer.clone()),
        _ => None,
    });

    Ok(Explanation {
        certificate,
        site: site.name.clone(),
        site_chosen_by: chosen_by,
        path: target.path.to_owned(),
        location: scope.path.clone(),
        ssl_flags: scope.ssl_flags.to_string(),
        anonymous_authentication: scope.anonymous,
        chain: chain_check,
        mapper: mapper_check,
        directory: describe_directory(&scope.directory),
        directory_answer,
        kerberos: super::explain_kerberos::describe(runtime, scope),
        kerberos_answer,
        verdict,
        steps,
    })
}

/// The decision in words.
fn render_verdict(decided: &decision::Verdict) -> Verdict {
    let forwarded = |summary: String, user: Option<&User>| Verdict {
        status: 200,
        substatus: 0,
        code: "200".into(),
        summary,
        user_name: user.map(|u| u.name.to_string()),
        mapping: user.map(|u| u.mapping.to_owned()),
    };
    let as_user = |user: &User| match &user.mapped {
        Some(mapped) => format!(
            "forwarded to the backend as {} ({} mapping {})",
            user.name, user.mapping, mapped.source
        ),
        None => format!(
            "forwarded to the backend as {} ({})",
            user.name, user.mapping
        ),
    };
    match &decided.outcome {
        Outcome::Forward(Granted {
            user: Some(user), ..
        }) => forwarded(as_user(user), Some(user)),
        Outcome::Forward(Granted { cert, user: None }) => forwarded(
            if cert.is_some() {
                "forwarded anonymously (no mapping matched; anonymous_authentication is on), with \
                 the certificate headers but no user"
                    .into()
            } else {
                "forwarded anonymously (anonymous_authentication is on), without identity headers"
                    .into()
            },
            None,
        ),
        Outcome::Undecided(Pending::Verify { user, .. }) => Verdict {
            status: 200,
            substatus: 0,
            code: "200".into(),
            summary: format!(
                "forwarded to the backend as {} ({} mapping {}) if the directory accepts the \
                 account (not queried)",
                user.user_name,
                user.kind.as_str(),
                user.source
            ),
            user_name: Some(user.user_name.to_string()),
            mapping: Some(user.kind.as_str().into()),
        },
        Outcome::Undecided(_) => Verdict {
            status: 0,
            substatus: 0,
            code: "directory".into(),
            summary: "decided by Active Directory: the account whose altSecurityIdentities names \
                      this certificate (explain does not query the directory)"
                .into(),
            user_name: None,
            mapping: Some("active_directory".into()),
        },
        Outcome::Refuse(Refusal { status, cause }) => Verdict {
            status: status.status,
            substatus: status.substatus,
            code: status.code(),
            summary: match cause {
                Cause::Directory { outcome, .. } => format!(
                    "refused by the directory ({outcome}): {} {}",
                    status.code(),
                    status.reason
                ),
                _ => format!("refused: {} {}", status.code(), status.reason),
            },
            user_name: None,
            mapping: None,
        },
    }
}

fn describe_directory(policy: &crate::directory::config::SitePolicy) -> Option<String> {
    let mut parts = Vec::new();
    if policy.certificate_mapping.is_some() {
        parts.push(
            "the user is the AD account whose altSecurityIdentities names the certificate"
                .to_owned(),
        );
    }
    if let Some(v) = &policy.verification {
        let mode = match v.mode {
            crate::directory::config::VerifyMode::Credentials => {
                "credentials (bind as the user with the mapping's password)"
            }
            _ => "account (exists, enabled, not locked out or expired)",
        };
        parts.push(format!("verify = {mode}"));
        if !v.require_groups.is_empty() {
            let groups: Vec<&str> = v.require_groups.iter().map(|g| g.dn.as_str()).collect();
            parts.push(format!("member of one of: {}", groups.join("; ")));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{}; a refusal answers 401.1 (account), 401.3 (groups) or 503 (directory down)",
            parts.join("; ")
        )
    })
}

fn choose_site<'r>(
    runtime: &'r Runtime,
    target: &Target<'_>,
) -> Result<(&'r Arc<Site>, String), ExplainError> {
    if let Some(name) = target.site {
        return runtime
            .sites
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| (s, format!("--site {name}")))
            .ok_or_else(|| {
                let names: Vec<&str> = runtime.sites.iter().map(|s| s.name.as_str()).collect();
                ExplainError::NoSite(format!(
                    "no site named `{name}` (sites: {})",
                    names.join(", ")
                ))
            });
    }
    match target.host {
        Some(host) => runtime
            .site_for_sni(Some(host))
            .map(|s| (s, format!("host name {host}")))
            .ok_or_else(|| ExplainError::NoSite(format!("no site serves host name `{host}`"))),
        None => runtime
            .site_for_sni(None)
            .map(|s| (s, "default site (no --host or --site)".to_owned()))
            .ok_or_else(|| ExplainError::NoSite("the configuration has no site".into())),
    }
}

/// Runs the mapper as the proxy does and records each step.
fn trace_mapper(mapper: &Mapper, facts: &CertFacts) -> (MapperCheck, MappingOutcome) {
    let hit = mapper.one_to_one.lookup(&facts.sha256);
    let check = MapperCheck {
        enabled: mapper.enabled,
        one_to_one_enabled: mapper.one_to_one_enabled,
        many_to_one_enabled: mapper.many_to_one_enabled,
        one_to_one: OneToOneCheck {
            entries: mapper.one_to_one.len(),
            hit: hit.map(|u| u.source.to_string()),
            user_name: hit.map(|u| u.user_name.to_string()),
        },
        many_to_one: mapper.many_to_one.explain(facts),
    };
    (check, mapper.map(facts))
}

fn summary(f: &CertFacts) -> CertificateSummary {
    CertificateSummary {
        subject: f.subject.to_display_string(),
        issuer: f.issuer.to_display_string(),
        serial: f.serial_hex(),
        thumbprint: f.thumbprint(),
        not_before: rfc3339(f.not_before),
        not_after: rfc3339(f.not_after),
    }
}

fn rfc3339(ts: i64) -> String {
    u64::try_from(ts)
        .map(|s| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string())
        .unwrap_or_else(|_| format!("{ts} (before 1970)"))
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
