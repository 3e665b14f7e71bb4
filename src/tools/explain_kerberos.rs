//! The Kerberos step of `certgate explain`: which SPN and principal a request would use, and,
//! with `--query-directory`, whether the KDC actually issues the ticket (the same calls the
//! proxy makes, so a refused delegation or a disabled account shows up here with its status).

use rustls::pki_types::CertificateDer;

use super::explain::{Explanation, Verdict};
use crate::config::{Runtime, Scope};
use crate::identity::CertFacts;
use crate::kerberos::principal;
use crate::mapping::MappingOutcome;

/// What the scope's Kerberos to the backend does, for the explanation.
pub fn describe(runtime: &Runtime, scope: &Scope) -> Option<String> {
    let target = scope.kerberos.as_ref()?;
    let realm = runtime
        .kerberos
        .as_ref()
        .map_or("", |k| k.settings().realm.as_str());
    Some(format!(
        "Authorization: Negotiate to {} (mode {}), principal = the mapped account's \
         sAMAccountName@{realm}; a refusal answers 401.1 (unknown or disabled account, wrong \
         password), 500.0 (delegation refused, unknown SPN) or 503.0 (KDC unreachable)",
        target.spn,
        target.mode.as_str()
    ))
}

/// Asks the KDC for the ticket the proxy would get, when the verdict forwards a user to a
/// Kerberos scope; a failure replaces the verdict with the proxy's answer.
pub async fn query(
    runtime: &Runtime,
    scope: &Scope,
    chain: &[CertificateDer<'static>],
    explanation: &mut Explanation,
) {
    let (Some(target), Some(kerberos)) = (&scope.kerberos, &runtime.kerberos) else {
        return;
    };
    let Some(name) = explanation.verdict.user_name.clone() else {
        return;
    };
    if explanation.verdict.status != 200 {
        return;
    }
    // The mapping's password (mode `password`): the mapper's answer for this certificate.
    let password = chain
        .first()
        .and_then(|leaf| CertFacts::parse(leaf).ok())
        .and_then(|facts| match scope.mapper.map(&facts) {
            MappingOutcome::Allow(user) => user.password.clone(),
            _ => None,
        });
    let settings = kerberos.settings();
    let principal = match principal::resolve(
        &name,
        scope.mapper.default_logon_domain.as_deref(),
        None,
        &settings.realm,
        &settings.domain_realms,
    ) {
        Ok(p) => p,
        Err(e) => {
            explanation.kerberos_answer = Some(format!("no principal: {e}"));
            refuse(
                explanation,
                crate::iis::IisStatus::LOGON_FAILED,
                "no Kerberos principal",
            );
            return;
        }
    };
    match kerberos
        .authorization(&principal, target, password.as_ref())
        .await
    {
        Ok(_) => {
            explanation.kerberos_answer = Some(format!(
                "ticket issued for {principal} to {} ({} KDC exchange(s))",
                target.spn,
                kerberos.stats().kdc_requests
            ));
        }
        Err(failure) => {
            explanation.kerberos_answer = Some(format!("refused for {principal}: {failure}"));
            refuse(explanation, failure.status(), failure.kind.as_str());
        }
    }
}

fn refuse(explanation: &mut Explanation, status: crate::iis::IisStatus, why: &str) {
    explanation.verdict = Verdict {
        status: status.status,
        substatus: status.substatus,
        code: status.code(),
        summary: format!(
            "refused by Kerberos ({why}): {} {}",
            status.code(),
            status.reason
        ),
        user_name: None,
        mapping: None,
    };
}
