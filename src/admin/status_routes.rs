//! Routes of the status page on the admin listener: `/status` (HTML, `?ref=` searches),
//! `/status.json`, and `/status/denial/<ref>` with the denial's `explain` trace.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use super::{status, status_html};
use crate::error_page::Reference;
use crate::state::Shared;
use crate::tools::explain::{Target, explain};

/// Whether `path` is one of the status routes.
pub fn is_status_path(path: &str) -> bool {
    path == "/status" || path == "/status.json" || path.starts_with("/status/denial/")
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

const HTML: &str = "text/html; charset=utf-8";

fn query_ref(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "ref").then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Serves a status route.
pub async fn serve(shared: &Shared, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    if path == "/status.json" {
        let report = status::report(shared).await;
        return match serde_json::to_string_pretty(&report) {
            Ok(json) => respond(StatusCode::OK, "application/json", json),
            Err(_) => respond(StatusCode::INTERNAL_SERVER_ERROR, HTML, String::new()),
        };
    }
    if let Some(text) = path.strip_prefix("/status/denial/") {
        return denial(shared, text);
    }
    // `/status?ref=...`: a found reference goes to its page; anything else shows the status
    // page with a notice.
    let notice = match query_ref(query).filter(|r| !r.trim().is_empty()) {
        Some(text) => match Reference::parse(&text) {
            Some(r) if shared.denials.find(r).is_some() => {
                let mut resp = respond(StatusCode::SEE_OTHER, HTML, String::new());
                if let Ok(location) = HeaderValue::from_str(&format!("/status/denial/{r}")) {
                    resp.headers_mut().insert(header::LOCATION, location);
                }
                return resp;
            }
            Some(r) => Some(format!("No denial with reference {r} is kept.")),
            None => Some(format!("`{text}` is not a reference id (10 characters).")),
        },
        None => None,
    };
    let report = status::report(shared).await;
    respond(
        StatusCode::OK,
        HTML,
        status_html::status_page(&report, notice.as_deref()),
    )
}

fn denial(shared: &Shared, text: &str) -> Response<Full<Bytes>> {
    let Some(denial) = Reference::parse(text).and_then(|r| shared.denials.find(r)) else {
        return respond(
            StatusCode::NOT_FOUND,
            HTML,
            status_html::not_found_page(text),
        );
    };
    let runtime = shared.runtime();
    let chain: Vec<_> = denial.leaf.iter().cloned().collect();
    let target = Target {
        host: None,
        site: Some(&denial.site),
        path: &denial.path,
    };
    let trace = match explain(&runtime, &chain, &target) {
        Ok(explanation) => explanation.to_string(),
        Err(e) => format!("explain cannot run for this request: {e}"),
    };
    respond(
        StatusCode::OK,
        HTML,
        status_html::denial_page(&denial, &trace),
    )
}
