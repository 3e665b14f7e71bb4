//! The plain-HTTP admin listener: `/healthz`, `/readyz` and `/metrics`.
//!
//! It is a separate listener, never the mTLS port, so probes need no client certificate and the
//! operator can keep it on loopback or a private network.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

mod scrape;

/// The metric names, at their historical path.
pub use crate::metrics;

/// Serves admin requests until `shutdown`.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let (tcp, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(Arc::clone(&shared), req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn respond(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
        "/readyz" if shared.is_ready() => {
            let runtime = shared.runtime();
            (
                StatusCode::OK,
                format!("ready: {} site(s)\n", runtime.sites.len()),
            )
        }
        // Draining: tell load balancers to stop sending new connections.
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned(),
        ),
        "/metrics" => match scrape::render(&shared.runtime()) {
            Some(text) => (StatusCode::OK, text),
            None => (
                StatusCode::NOT_FOUND,
                "metrics are not available in this process\n".to_owned(),
            ),
        },
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// The URL is not `http://host:port/path`.
    #[error("`{0}` is not an http:// URL with a host and port")]
    BadUrl(String),
    /// Nothing answered in time.
    #[error("no answer from {0} within 5s")]
    Timeout(String),
    /// Connection or protocol failure.
    #[error("{url}: {reason}")]
    Failed {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The endpoint answered but not with 200.
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
}

/// GETs an admin URL and succeeds on 200: the container `HEALTHCHECK`, which needs no curl in
/// the image.
pub async fn healthcheck(url: &str) -> Result<(), HealthcheckError> {
    use http_body_util::Empty;
    let uri: http::Uri = url
        .parse()
        .map_err(|_| HealthcheckError::BadUrl(url.into()))?;
    let authority = uri
        .authority()
        .filter(|_| uri.scheme_str() == Some("http"))
        .ok_or_else(|| HealthcheckError::BadUrl(url.into()))?
        .clone();
    let failed = |reason: String| HealthcheckError::Failed {
        url: url.into(),
        reason,
    };
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::get(uri.path())
            .header(header::HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if resp.status() == StatusCode::OK {
            Ok(())
        } else {
            Err(HealthcheckError::Status {
                url: url.into(),
                status: resp.status().as_u16(),
            })
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), attempt)
        .await
        .map_err(|_| HealthcheckError::Timeout(url.into()))?
}
