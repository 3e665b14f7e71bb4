//! The admin listener with `[server.admin]`: TLS with its own identity, and `/status`,
//! `/metrics` (everything but the probes) only for an administrator's certificate
//! (see [`crate::admin_auth`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::admin_auth::{AdminAuth, AdminIdentity};
use crate::state::Shared;

/// Paths served without a certificate: liveness and readiness probes.
fn open_path(path: &str) -> bool {
    path == "/healthz" || path == "/readyz"
}

fn forbidden(identity: &AdminIdentity) -> Response<Full<Bytes>> {
    let text = match identity {
        AdminIdentity::Anonymous => "403 Forbidden: this page needs an administrator's client \
                                     certificate\n"
            .to_owned(),
        _ => "403 Forbidden: the client certificate does not map to an allowed administrator\n"
            .to_owned(),
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Serves one admin connection over TLS.
pub(super) async fn serve_tls(tcp: TcpStream, shared: Arc<Shared>, auth: Arc<AdminAuth>) {
    let acceptor = TlsAcceptor::from(Arc::clone(&auth.tls));
    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
    else {
        return;
    };
    let identity = auth.identify(
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first()),
    );
    if let AdminIdentity::Refused(who) = &identity {
        tracing::info!(certificate = %who, "admin listener: certificate is not an administrator's");
    }
    let identity = Arc::new(identity);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let identity = Arc::clone(&identity);
        async move {
            if open_path(req.uri().path()) || matches!(*identity, AdminIdentity::Administrator(_)) {
                super::respond(shared, req).await
            } else {
                Ok(forbidden(&identity))
            }
        }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}
