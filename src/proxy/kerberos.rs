//! The forward step's Kerberos hook: the `Authorization: Negotiate` value for the request's
//! user, or the IIS answer that ends the request. Nothing is forwarded without it: a scope
//! with Kerberos to the backend never reaches the backend as nobody or as someone else.

use std::sync::Arc;

use http::HeaderValue;

use super::answer::Answer;
use super::{Connection, UserIdentity};
use crate::config::Scope;
use crate::iis::IisStatus;
use crate::kerberos::principal;
use crate::kerberos::{BackendKerberos, error::KERBEROS_REFUSED};

/// The header value and the backend-connection owner (the principal) for one request.
pub(super) async fn authorize(
    conn: &Connection,
    scope: &Scope,
    target: &BackendKerberos,
    user: Option<&UserIdentity>,
) -> Result<(HeaderValue, Arc<str>), Answer> {
    let Some(kerberos) = conn.runtime.kerberos.as_ref() else {
        // The loader refuses such a config; fail closed if it happens anyway.
        tracing::error!(site = %conn.site.name, "backend_kerberos configured without [kerberos]");
        return Err(Answer::Iis(KERBEROS_REFUSED));
    };
    let Some(user) = user else {
        tracing::info!(site = %conn.site.name, scope = %scope.path,
            "anonymous request refused: the backend needs Kerberos as a mapped user");
        return Err(Answer::Iis(IisStatus::LOGON_FAILED_CONFIG));
    };
    let settings = kerberos.settings();
    let principal = principal::resolve(
        &user.name,
        scope.mapper.default_logon_domain.as_deref(),
        user.groups.as_deref(),
        &settings.realm,
        &settings.domain_realms,
    )
    .map_err(|e| {
        tracing::info!(site = %conn.site.name, user = %user.name, error = %e,
            "no Kerberos principal for the mapped user");
        Answer::Iis(IisStatus::LOGON_FAILED)
    })?;
    match kerberos
        .authorization(&principal, target, user.password.as_ref())
        .await
    {
        Ok(value) => Ok((value, Arc::from(principal))),
        Err(failure) => {
            let status = failure.status();
            tracing::warn!(
                site = %conn.site.name,
                user = %user.name,
                principal = %principal,
                spn = %target.spn,
                mode = target.mode.as_str(),
                step = failure.step.as_str(),
                kdc_error = failure.kind.as_str(),
                detail = %failure.detail,
                code = %status.code(),
                "Kerberos ticket to the backend not obtained"
            );
            Err(Answer::Iis(status))
        }
    }
}
