//! The forward step's Kerberos hooks: the `Authorization: Negotiate` value for the request's
//! user, or the IIS answer that ends the request. Nothing is forwarded without it: a scope
//! with Kerberos to the backend never reaches the backend as nobody or as someone else. Then
//! the backend's reply token is verified (mutual authentication) before its response is
//! passed on.

use std::sync::Arc;

use hyper::Response;
use hyper::body::Incoming;

use super::answer::Answer;
use super::{Connection, UserIdentity};
use crate::config::Scope;
use crate::iis::IisStatus;
use crate::kerberos::mutual::{self, Negotiation, Verified};
use crate::kerberos::principal;
use crate::kerberos::{BackendKerberos, error::KERBEROS_REFUSED};

/// The header value (with its context) and the backend-connection owner (the principal) for
/// one request.
pub(super) async fn authorize(
    conn: &Connection,
    scope: &Scope,
    target: &BackendKerberos,
    user: Option<&UserIdentity>,
) -> Result<(Negotiation, Arc<str>), Answer> {
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

/// Verifies the backend's reply token for `negotiation` (see [`crate::kerberos::mutual`]); a
/// response that fails is not passed on (502), and the Negotiate challenge of one that passes
/// is removed. `principal` is the user the request ran as, for the log.
pub(super) async fn verify(
    conn: &Connection,
    target: &BackendKerberos,
    negotiation: Negotiation,
    principal: &str,
    resp: &mut Response<Incoming>,
) -> Result<(), Answer> {
    let Some(kerberos) = conn.runtime.kerberos.as_ref() else {
        return Err(Answer::BadGateway);
    };
    let verified = kerberos
        .verify_reply(
            negotiation,
            resp.status(),
            resp.headers(),
            target.require_mutual_auth,
        )
        .await;
    match verified {
        Ok(Verified::Refused) => Ok(()),
        Ok(_) => {
            mutual::strip(resp.headers_mut());
            Ok(())
        }
        Err(failure) => {
            conn.site.metrics.backend_error("kerberos_mutual_auth");
            tracing::warn!(
                site = %conn.site.name,
                principal = %principal,
                spn = %target.spn,
                backend_status = resp.status().as_u16(),
                reason = %failure,
                "backend response withheld: Kerberos mutual authentication failed"
            );
            Err(Answer::BadGateway)
        }
    }
}
