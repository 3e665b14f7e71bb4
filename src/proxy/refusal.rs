//! Turning an [`Answer`] into the page a person sees: a fresh reference id, the detailed or
//! short page (or the site's custom page), the denial kept for the status page, and the
//! reference in the access and W3C logs.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, Uri, header};

use super::Connection;
use super::answer::Answer;
use super::body::{AccessRecord, ProxyBody};
use crate::denials::Denial;
use crate::error_page::{self, Details, PageBody, Reference, Status};
use crate::tls::client_auth::ClientCert;

/// The response header carrying the reference id on every page certgate writes itself.
pub const REFERENCE_HEADER: &str = "x-certgate-ref";

/// Builds the refusal response for `answer` and records the decision.
pub(super) async fn refuse(
    conn: &Connection,
    answer: Answer,
    uri: &Uri,
    host: Option<&str>,
    record: &mut AccessRecord,
) -> Response<ProxyBody> {
    let reference = Reference::new();
    let (status, substatus) = answer.codes();
    let (reason, hint) = answer.texts();
    let status_text = Status {
        status,
        substatus,
        reason,
        hint,
    };
    record.substatus = substatus;
    record.reference = Some(reference);
    let facts = conn.client_cert.facts();
    tracing::info!(
        site = %conn.site.name,
        code = %status_text.code(),
        reference = %reference,
        "request refused"
    );
    if let Some(denials) = &conn.denials {
        denials.record(Denial {
            time: SystemTime::now(),
            reference,
            site: conn.site.name.clone(),
            host: host.map(str::to_owned),
            path: uri.path().to_owned(),
            status,
            substatus,
            client_ip: conn.peer.ip(),
            subject: facts.map(|f| f.subject.to_display_string()),
            thumbprint: facts.map(|f| f.thumbprint()),
            leaf: facts.map(|f| f.der.clone()),
        });
    }

    // The location's own pages over the site's; a path that does not normalise is the site's.
    let location = crate::forward::path::normalize(uri.path())
        .ok()
        .and_then(|n| conn.site.scope_for(&n.canonical).http_errors.clone());
    let errors = conn.site.http_errors.at(location.as_deref());
    let local = error_page::is_local(conn.peer.ip(), conn.local.map(|a| a.ip()));
    let html = if errors.detailed_for(local) {
        let details = Details {
            site: conn.site.name.clone(),
            url: format!(
                "https://{}{}",
                host.unwrap_or("-"),
                uri.path_and_query().map_or("/", |pq| pq.as_str())
            ),
            logon_method: match &conn.client_cert {
                ClientCert::Valid(_) => "Client certificate (IIS mapper)".into(),
                _ => "Not yet determined".into(),
            },
            logon_user: "Not yet determined".into(),
            certificate_subject: facts.map(|f| f.subject.to_display_string()),
            certificate_thumbprint: facts.map(|f| f.thumbprint()),
        };
        error_page::detailed_page(&status_text, &details, reference)
    } else {
        match errors.find(status, substatus) {
            Some(PageBody::File(bytes)) => {
                error_page::custom_body(&String::from_utf8_lossy(bytes), reference)
            }
            Some(PageBody::ExecuteUrl(path)) => {
                match super::execute_url::fetch(&conn.site.backend, path).await {
                    Some(body) => error_page::custom_body(&body, reference),
                    None => error_page::short_page(&status_text, reference),
                }
            }
            None => error_page::short_page(&status_text, reference),
        }
    };
    let mut resp = Response::new(ProxyBody::full(Bytes::from(html)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(reference.as_str()) {
        headers.insert(REFERENCE_HEADER, v);
    }
    resp
}
