//! The forward step of a Kerberos scope, with connection-bound authentication
//! ([`crate::forward::bound`]).
//!
//! - A request without a body, of a scope with `persist_auth` (the default, as IIS's
//!   `authPersistNonNTLM`), goes first to a pooled connection whose backend already accepted
//!   this user's token, without a new token: no GSS-API call, no KDC.
//! - If there is no such connection, if the request has a body, or if the backend was seen not
//!   keeping logons, a fresh token goes along and the response is checked as before (mutual
//!   authentication, [`super::kerberos::verify`]). A non-401 answer that passed the check, and
//!   does not say `Persistent-Auth: false` (IIS with `authPersistNonNTLM` off), marks its
//!   connection authenticated for the user; the pool never lends that connection to anyone
//!   else (its owner is the principal).
//! - A token-less request answered with a Negotiate `401` drops the connection's mark and is
//!   resent once with a fresh token (safe: it has no body); the backend is then remembered not to
//!   keep logons for a while. Nothing is ever sent as another user or as nobody: a request
//!   either carries this user's token or rides a connection only this user's token opened.

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty};
use hyper::body::{Body, Incoming};

use super::answer::Answer;
use super::kerberos::{self, Logon};
use super::upstream::{BoundAttempt, OutBody};
use super::{Connection, backend_call};
use crate::kerberos::{BackendAuth, BackendKerberos, mutual};

/// Sends `req` (headers ready, target set) to the site's backend as `logon`'s user.
pub(super) async fn forward(
    conn: &Connection,
    target: &BackendKerberos,
    logon: Logon,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>, Answer> {
    let backend = &conn.site.backend;
    let counter = |how| {
        if let Some(k) = &conn.runtime.kerberos {
            k.count_backend_auth(how);
        }
    };
    // Only certgate's token (or the connection's logon) authenticates: a client's own
    // credentials would re-authenticate a connection the pool holds for this user.
    req.headers_mut().remove(AUTHORIZATION);
    let mut req = req.map(Either::Left);
    if target.persist_auth && req.body().is_end_stream() && backend.persistence().expected() {
        let again = head_only(&req);
        match backend_call(conn, backend.send_bound(req, &logon.principal)).await? {
            (BoundAttempt::NoConnection(unsent), _) => req = unsent,
            (BoundAttempt::Sent(mut resp, mark), elapsed) => {
                conn.site.metrics.backend_latency(elapsed);
                counter(BackendAuth::Connection);
                if !mutual::asks_to_negotiate(resp.status(), resp.headers()) {
                    if !mutual::keeps_logon(resp.headers()) {
                        mark.clear();
                    }
                    mutual::strip(resp.headers_mut());
                    return Ok(resp);
                }
                // The backend does not keep the logon (or no longer): the connection closes
                // with the unread 401, and the request goes again with a token.
                mark.clear();
                backend.persistence().not_kept();
                counter(BackendAuth::Retry);
                tracing::debug!(site = %conn.site.name, principal = %logon.principal,
                    "backend asked for a new Negotiate token on an authenticated connection; \
                     resending with one");
                req = again;
            }
        }
    }
    let negotiation = kerberos::token(conn, target, &logon).await?;
    req.headers_mut()
        .insert(AUTHORIZATION, negotiation.header.clone());
    let ((mut resp, mark), elapsed) =
        backend_call(conn, backend.send_as(req, Some(&logon.principal))).await?;
    conn.site.metrics.backend_latency(elapsed);
    // Checked before `verify` strips the hint from what the client gets.
    let keeps = resp.status() != StatusCode::UNAUTHORIZED && mutual::keeps_logon(resp.headers());
    match kerberos::verify(conn, target, negotiation, &logon.principal, &mut resp).await {
        Ok(()) if keeps => mark.set(),
        Ok(()) => mark.clear(),
        Err(answer) => {
            mark.clear();
            return Err(answer);
        }
    }
    Ok(resp)
}

/// A copy of a body-less request, to send again.
fn head_only(req: &Request<OutBody>) -> Request<OutBody> {
    let mut copy = Request::new(Either::Right(Empty::new()));
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}
