//! The Kerberos step of `certgate explain`: which SPN and principal a request would use, and,
//! with `--query-directory`, whether the KDC actually issues the ticket (the same calls the
//! proxy makes, so a refused delegation or a disabled account shows up here with its status).

use super::explain::Verdict;
use crate::config::{Runtime, Scope};
use crate::decision::{self, Outcome};
use crate::iis::IisStatus;
use crate::kerberos::principal;

/// What the scope's Kerberos to the backend does, for the explanation.
pub fn describe(runtime: &Runtime, scope: &Scope) -> Option<String> {
    let target = scope.kerberos.as_ref()?;
    let realm = runtime
        .kerberos
        .as_ref()
        .map_or("", |k| k.settings().realm.as_str());
    let tokens = if target.persist_auth {
        "a fresh token on a backend connection's first request and on requests with a body; \
         body-less requests reuse the connection's logon (persist_auth)"
    } else {
        "a fresh token with every request (persist_auth = false)"
    };
    Some(format!(
        "Authorization: Negotiate to {} (mode {}), principal = the mapped account's \
         sAMAccountName@{realm}; {tokens}; a refusal answers 401.1 (unknown or disabled \
         account, wrong password), 500 (delegation refused, unknown SPN) or 503 (KDC \
         unreachable); a backend reply token that fails mutual authentication answers 502",
        target.spn,
        target.mode.as_str()
    ))
}

/// Asks the KDC for the ticket the proxy would get when the decision forwards a user to a
/// Kerberos scope; a failure replaces `verdict` with the proxy's answer. Returns the answer
/// line (`None` when nothing was asked).
pub async fn query(
    runtime: &Runtime,
    scope: &Scope,
    decided: &decision::Verdict,
    verdict: &mut Verdict,
) -> Option<String> {
    let (Some(target), Some(kerberos)) = (&scope.kerberos, &runtime.kerberos) else {
        return None;
    };
    let Outcome::Forward(granted) = &decided.outcome else {
        return None;
    };
    let Some(user) = &granted.user else {
        refuse(verdict, IisStatus::LOGON_FAILED_CONFIG, "anonymous");
        return Some("refused: the backend needs Kerberos as a mapped user".into());
    };
    let settings = kerberos.settings();
    let principal = match principal::resolve(
        &user.name,
        scope.mapper.default_logon_domain.as_deref(),
        user.account.as_deref(),
        &settings.realm,
        &settings.domain_realms,
    ) {
        Ok(p) => p,
        Err(e) => {
            refuse(verdict, IisStatus::LOGON_FAILED, "no Kerberos principal");
            return Some(format!("no principal: {e}"));
        }
    };
    let password = user.mapped.as_ref().and_then(|m| m.password.clone());
    match kerberos
        .authorization(&principal, target, password.as_ref())
        .await
    {
        Ok(_) => Some(format!("ticket issued for {principal} to {}", target.spn)),
        Err(failure) => {
            refuse(verdict, failure.status(), failure.kind.as_str());
            Some(format!("refused for {principal}: {failure}"))
        }
    }
}

fn refuse(verdict: &mut Verdict, status: IisStatus, why: &str) {
    *verdict = Verdict {
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
