//! `POST /reload` on the admin listener: the same reload as SIGHUP, with the verdict in the
//! answer.
//!
//! `certgate mapping ...` calls it after writing the configuration, so the person who made the
//! edit sees at once whether the running proxy took it, and why not, in the same
//! `file: key: reason` lines `certgate check` prints. It re-reads the file the proxy was started
//! with; nothing in the request is used as configuration.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::config::ConfigErrors;
use crate::state::Shared;

/// The endpoint's path.
pub const PATH: &str = "/reload";

/// Answers a request for [`PATH`].
///
/// 200 when the configuration was reloaded, 422 with every error when the file was rejected
/// (the previous configuration keeps serving), 405 for anything but POST, 403 for a
/// cross-origin browser request. JSON when the client asks for it (`Accept: application/json`
/// or `?format=json`), plain text otherwise.
pub fn respond<B>(
    shared: &Arc<Shared>,
    req: &Request<B>,
) -> impl Future<Output = Response<Full<Bytes>>> + Send + 'static {
    let json = wants_json(req);
    let refused = refusal(req, json);
    let shared = Arc::clone(shared);
    async move {
        match refused {
            Some(resp) => resp,
            None => reload(shared, json).await,
        }
    }
}

/// The answer to a request that must not reload.
fn refusal<B>(req: &Request<B>, json: bool) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::POST {
        let mut resp = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json,
            "POST /reload reloads the configuration\n".to_owned(),
            serde_json::json!({"result": "error", "message": "use POST"}),
        );
        resp.headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
        return Some(resp);
    }
    if cross_origin(req.headers()) {
        // A web page elsewhere must not be able to make a browser on this machine reload the
        // proxy; curl and `certgate mapping` send no Origin.
        return Some(answer(
            StatusCode::FORBIDDEN,
            json,
            "cross-origin requests may not reload the configuration\n".to_owned(),
            serde_json::json!({"result": "error", "message": "cross-origin request refused"}),
        ));
    }
    None
}

/// Reloads the file the running configuration came from.
async fn reload(shared: Arc<Shared>, json: bool) -> Response<Full<Bytes>> {
    // Loading reads files and may decode a million certificates: not on an async worker.
    let result = tokio::task::spawn_blocking(move || {
        let path = shared.runtime().source.clone();
        shared.reload(&path).map(|()| shared.runtime().sites.len())
    })
    .await;
    match result {
        Ok(Ok(sites)) => answer(
            StatusCode::OK,
            json,
            format!("configuration reloaded: {sites} site(s)\n"),
            serde_json::json!({"result": "reloaded", "sites": sites}),
        ),
        Ok(Err(errors)) => rejected(&errors, json),
        Err(e) => {
            tracing::error!(error = %e, "the reload task failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json,
                "the reload failed; see the proxy's log\n".to_owned(),
                serde_json::json!({"result": "error", "message": "the reload failed; see the proxy's log"}),
            )
        }
    }
}

/// 422 with every error, in `check`'s words.
fn rejected(errors: &ConfigErrors, json: bool) -> Response<Full<Bytes>> {
    let mut text = String::new();
    for e in &errors.0 {
        text.push_str(&format!("error: {e}\n"));
    }
    text.push_str(&format!(
        "configuration rejected ({} error(s)); still serving the previous configuration\n",
        errors.0.len()
    ));
    let list: Vec<_> = errors
        .0
        .iter()
        .map(|e| {
            serde_json::json!({
                "file": e.file.display().to_string(),
                "key": e.key,
                "reason": e.reason,
                "message": e.to_string(),
            })
        })
        .collect();
    answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        json,
        text,
        serde_json::json!({"result": "rejected", "errors": list}),
    )
}

fn answer(
    status: StatusCode,
    json: bool,
    text: String,
    value: serde_json::Value,
) -> Response<Full<Bytes>> {
    let (body, content_type) = if json {
        (format!("{value}\n"), "application/json")
    } else {
        (text, "text/plain; charset=utf-8")
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

fn wants_json<B>(req: &Request<B>) -> bool {
    let query = req.uri().query().unwrap_or("");
    query.split('&').any(|p| p == "format=json")
        || req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/json"))
}

/// A browser names the page that sent the request in `Origin`; only the admin listener's own
/// pages (same host) may reload.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok();
    match (origin, host) {
        (Some(origin), Some(host)) => {
            origin != format!("http://{host}") && origin != format!("https://{host}")
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_same_origin_browsers_may_reload() {
        assert!(!cross_origin(&headers(&[("host", "127.0.0.1:9090")])));
        assert!(!cross_origin(&headers(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "http://127.0.0.1:9090")
        ])));
        assert!(cross_origin(&headers(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "http://evil.example")
        ])));
        assert!(cross_origin(&headers(&[("origin", "null")])));
    }

    #[test]
    fn json_is_chosen_by_accept_or_query() {
        let req = Request::post("/reload?format=json").body(()).unwrap();
        assert!(wants_json(&req));
        let req = Request::post("/reload")
            .header("accept", "application/json")
            .body(())
            .unwrap();
        assert!(wants_json(&req));
        let req = Request::post("/reload").body(()).unwrap();
        assert!(!wants_json(&req));
    }
}
