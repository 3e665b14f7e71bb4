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
use crate::directory::Secret;
use crate::iis::IisStatus;
use crate::kerberos::mutual::{self, Negotiation, Verified};
use crate::kerberos::principal;
use crate::kerberos::{BackendKerberos, error::KERBEROS_REFUSED};

/// Who a Kerberos scope's request reaches the backend as, settled in the decision step.
pub(super) struct Logon {
    /// The user's principal, also the owner of the backend connections that carry it.
    pub(super) principal: Arc<str>,
    /// The mapped name, for the log.
    user: Arc<str>,
    /// The mapping's password (mode `password`).
    password: Option<Secret>,
}

/// The principal for the request's user, or the IIS answer that ends the request: nothing is
/// forwarded for an anonymous request or a name without a principal.
pub(super) fn logon(
    conn: &Connection,
    scope: &Scope,
    user: Option<&UserIdentity>,
) -> Result<Logon, Answer> {
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
    Ok(Logon {
        principal: Arc::from(principal),
        user: Arc::clone(&user.name),
        password: user.password.clone(),
    })
}

/// A fresh `Authorization: Negotiate` value (with its context) for `logon` to `target`, or the
/// IIS answer for the KDC's refusal.
pub(super) async fn token(
    conn: &Connection,
    target: &BackendKerberos,
    logon: &Logon,
) -> Result<Negotiation, Answer> {
    let Some(kerberos) = conn.runtime.kerberos.as_ref() else {
        return Err(Answer::Iis(KERBEROS_REFUSED));
    };
    match kerberos
        .authorization(&logon.principal, target, logon.password.as_ref())
        .await
    {
        Ok(value) => Ok(value),
        Err(failure) => {
            let status = failure.status();
            tracing::warn!(
                site = %conn.site.name,
                user = %logon.user,
                principal = %logon.principal,
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
