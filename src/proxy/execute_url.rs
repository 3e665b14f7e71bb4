//! IIS `responseMode="ExecuteURL"`: an error page served by the site's own application.
//!
//! A plain `GET` of the page's path on the backend, on a connection of its own (never the
//! request's identity headers), bounded by the backend response timeout and 1 MiB. Anything
//! but a 200 with a body falls back to the short page. An `https://` backend is reached over
//! TLS verified exactly as for proxied requests (`backend_ca`, the URL's host name).

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use super::upstream::Backend;

const MAX_PAGE: usize = 1024 * 1024;

/// The page's HTML, or `None` when it cannot be fetched.
pub(super) async fn fetch(backend: &Backend, path: &str) -> Option<String> {
    let authority = backend.authority.clone();
    let target = format!("{}{path}", backend.prefix);
    let attempt = async move {
        let io = backend.open().await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = Request::get(target)
            .header(header::HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        let body = Limited::new(resp.into_body(), MAX_PAGE)
            .collect()
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&body.to_bytes()).into_owned())
    };
    match tokio::time::timeout(backend.response_timeout, attempt).await {
        Ok(Some(page)) => Some(page),
        _ => {
            tracing::warn!(
                path,
                "ExecuteURL error page could not be fetched; serving the short page"
            );
            None
        }
    }
}
