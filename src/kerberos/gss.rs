//! The blocking GSS-API calls (MIT krb5 through `libgssapi`). Every function here may wait on
//! the KDC; callers run them on tokio's blocking pool, never on an async worker.
//!
//! All tokens are SPNEGO-wrapped, as browsers send them: IIS, Apache mod_auth_gssapi and
//! everything else that speaks `Negotiate` accepts them. SPNEGO with an impersonated credential
//! only works when the credential was acquired for the SPNEGO mechanism.

use std::time::Duration;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::Error as GssError;
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL, OidSet};

use super::error::{KdcFailure, Step};

/// A Kerberos initiator credential (a TGT, or an S4U2Self ticket, plus the service tickets
/// obtained with it); `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct Credential(Cred);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential")
    }
}

impl Credential {
    /// Time left before the credential's ticket expires.
    pub fn lifetime(&self) -> Duration {
        self.0.lifetime().unwrap_or_default()
    }
}

fn fail(step: Step) -> impl Fn(GssError) -> KdcFailure {
    move |e| KdcFailure::from_gss(step, e.minor, e.to_string())
}

fn principal(name: &str, step: Step) -> Result<Name, KdcFailure> {
    Name::new(name.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(fail(step))
}

fn spnego() -> Result<OidSet, GssError> {
    OidSet::singleton(GSS_MECH_SPNEGO)
}

/// The service account's TGT from the client keytab (`KRB5_CLIENT_KTNAME`, which `certgate run`
/// sets from `[kerberos].keytab`). MIT renews it from the keytab by itself.
pub fn service_from_keytab(principal_name: &str) -> Result<Credential, KdcFailure> {
    let name = principal(principal_name, Step::Service)?;
    Cred::acquire(Some(&name), None, CredUsage::Initiate, None)
        .map(Credential)
        .map_err(fail(Step::Service))
}

/// A TGT for `principal_name` from its password: the service account's (`password_env`), or
/// a mapped user's (mode `password`, the equivalent of IIS's `LogonUser`).
pub fn from_password(
    principal_name: &str,
    password: &str,
    step: Step,
) -> Result<Credential, KdcFailure> {
    let name = principal(principal_name, step)?;
    let mechs = spnego().map_err(fail(step))?;
    Cred::acquire_with_password(
        Some(&name),
        password,
        None,
        CredUsage::Initiate,
        Some(&mechs),
    )
    .map(Credential)
    .map_err(fail(step))
}

/// S4U2Self: a ticket from `user` to the service account, without the user's password.
pub fn impersonate(service: &Credential, user: &str) -> Result<Credential, KdcFailure> {
    let name = principal(user, Step::S4u2Self)?;
    let mechs = spnego().map_err(fail(Step::S4u2Self))?;
    service
        .0
        .impersonate(&name, None, CredUsage::Initiate, Some(&mechs))
        .map(Credential)
        .map_err(fail(Step::S4u2Self))
}

/// A fresh AP-REQ (SPNEGO) for `spn`. The first call on a credential fetches the service
/// ticket (S4U2Proxy for an impersonated one, a TGS-REQ otherwise); later calls reuse it and
/// cost no KDC round trip.
pub fn token(cred: &Credential, spn: &str) -> Result<Vec<u8>, KdcFailure> {
    start(cred, spn).map(|(token, _)| token)
}

/// A client context that sent its AP-REQ (with mutual authentication requested) and waits for
/// the backend's reply token.
pub struct Pending(ClientCtx);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

/// Like [`token`], keeping the context for [`finish`].
pub fn start(cred: &Credential, spn: &str) -> Result<(Vec<u8>, Pending), KdcFailure> {
    let target = principal(spn, Step::ServiceTicket)?;
    let mut ctx = ClientCtx::new(
        Some(cred.0.clone()),
        target,
        CtxFlags::GSS_C_MUTUAL_FLAG,
        Some(GSS_MECH_SPNEGO),
    );
    match ctx.step(None, None).map_err(fail(Step::ServiceTicket))? {
        Some(tok) => Ok((tok.to_vec(), Pending(ctx))),
        None => Err(KdcFailure::from_gss(
            Step::ServiceTicket,
            0,
            "GSS-API produced no initial token".into(),
        )),
    }
}

/// Completes the context with the backend's reply token (its AP-REP inside SPNEGO): `Ok` only
/// when GSS-API accepts it as the end of a mutually authenticated exchange; otherwise why not.
pub fn finish(pending: Pending, reply: &[u8]) -> Result<(), String> {
    let Pending(mut ctx) = pending;
    // A context that was complete before the reply would accept any token unread.
    if ctx.is_complete() {
        return Err("the context was complete before the reply (no mutual authentication)".into());
    }
    match ctx.step(Some(reply), None) {
        Err(e) => Err(e.to_string()),
        Ok(Some(_)) => Err("the reply asks for another round trip, which HTTP cannot give".into()),
        Ok(None) if !ctx.is_complete() => Err("the context is still incomplete".into()),
        Ok(None) => match ctx.flags() {
            Ok(flags) if flags.contains(CtxFlags::GSS_C_MUTUAL_FLAG) => Ok(()),
            Ok(_) => Err("the backend did not authenticate itself (no mutual flag)".into()),
            Err(e) => Err(e.to_string()),
        },
    }
}
