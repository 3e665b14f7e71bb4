//! The per-request phases and forwarding.
//!
//! Every request goes through the same fixed order, so the code reads like the policy:
//! 1. Host check: the request must name the site its connection's SNI chose (else 421);
//! 2. path normalisation (else 400) and location lookup;
//! 3. the decision ([`crate::decision`]): sslFlags, certificate verdict, mapper, directory,
//!    anonymous;
//! 4. headers: identity headers stripped, then set; hop-by-hop removed; `X-Forwarded-*` set;
//! 5. forward (streamed) or upgrade (WebSocket);
//! 6. access log, written when the response body ends ([`body`]).

pub mod answer;
pub mod body;
mod execute_url;
mod kerberos;
mod kerberos_forward;
pub mod refusal;

/// The forwarding building blocks, at their historical paths.
pub use crate::forward::{headers, path, upstream};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::config::{Runtime, Scope, Site};
use crate::decision::{self, Cause, DirectoryAccess, Outcome, Verdict};
use crate::directory::Account;
use crate::identity::CertFacts;
use crate::iis::IisStatus;
use crate::mapping::{Mapper, MappingOutcome};
use crate::state::InFlight;
use crate::tls::accept::TlsInfo;
use crate::tls::client_auth::ClientCert;
use answer::Answer;
use body::{AccessRecord, ProxyBody};
use headers::HeaderSet;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Everything a connection's requests share, computed once per connection.
pub struct Connection {
    /// The configuration the connection started with (reloads never change it mid-connection).
    pub runtime: Arc<Runtime>,
    /// The site SNI chose.
    pub site: Arc<Site>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Handshake facts.
    pub tls: TlsInfo,
    /// The client certificate verdict.
    pub client_cert: ClientCert,
    site_name: Arc<str>,
    thumbprint: Option<Arc<str>>,
    peer_ip: HeaderValue,
    cert_headers: OnceLock<HeaderSet>,
    mapped: OnceLock<Mapped>,
    in_flight: Arc<AtomicUsize>,
    /// The address the client reached (for `s-ip`/`s-port` and "local" error pages).
    local: Option<SocketAddr>,
    /// Where refusals are kept for the status page.
    denials: Option<Arc<crate::denials::Denials>>,
}

/// The mapper's answer for a connection's certificate, with the user header it implies.
#[derive(Clone)]
struct Mapped {
    /// Identity of the mapper that produced it (its address).
    mapper: usize,
    outcome: MappingOutcome,
    user_header: Option<(HeaderName, HeaderValue)>,
}

impl Connection {
    /// Wraps an accepted connection.
    pub fn new(
        runtime: Arc<Runtime>,
        site: Arc<Site>,
        peer: SocketAddr,
        tls: TlsInfo,
        client_cert: ClientCert,
    ) -> Self {
        let thumbprint = client_cert.facts().map(|f| Arc::from(f.thumbprint()));
        let peer_ip = HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            site_name: Arc::from(site.name.as_str()),
            runtime,
            site,
            peer,
            tls,
            client_cert,
            thumbprint,
            peer_ip,
            cert_headers: OnceLock::new(),
            mapped: OnceLock::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            local: None,
            denials: None,
        }
    }

    /// Adds what the server knows beyond the handshake: the local address the client reached
    /// and the denial ring of the status page.
    pub fn attach(
        mut self,
        local: Option<SocketAddr>,
        denials: Option<Arc<crate::denials::Denials>>,
    ) -> Self {
        self.local = local;
        self.denials = denials;
        self
    }

    /// Requests of this connection whose responses are not finished yet.
    pub fn in_flight(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.in_flight)
    }

    /// The mapper's answer for this connection's certificate, cached for the connection's
    /// usual (site-level) mapper.
    fn map(
        &self,
        mapper: &Arc<Mapper>,
        facts: &crate::identity::CertFacts,
    ) -> (MappingOutcome, Option<(HeaderName, HeaderValue)>) {
        let key = Arc::as_ptr(mapper) as usize;
        let compute = || {
            let outcome = mapper.map(facts);
            let user_header = match &outcome {
                MappingOutcome::Allow(user) => self.runtime.headers.user_value(&user.user_name),
                _ => None,
            };
            Mapped {
                mapper: key,
                outcome,
                user_header,
            }
        };
        let cached = self.mapped.get_or_init(compute);
        let mapped = if cached.mapper == key {
            cached.clone()
        } else {
            compute()
        };
        (mapped.outcome, mapped.user_header)
    }

    fn cert_headers(&self, facts: &crate::identity::CertFacts) -> &HeaderSet {
        self.cert_headers
            .get_or_init(|| self.runtime.headers.certificate_values(facts))
    }
}

/// Handles one request on a connection. Never fails: every problem becomes a response.
pub async fn handle(
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let mut record = AccessRecord {
        in_flight: Some(InFlight::start(&conn.in_flight)),
        start: Instant::now(),
        client_ip: conn.peer.ip(),
        site: Arc::clone(&conn.site_name),
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        version: req.version(),
        status: 0,
        substatus: 0,
        user: None,
        mapping: None,
        thumbprint: conn.thumbprint.clone(),
        tls: conn.tls.version,
        resumed: conn.tls.resumed,
        reference: None,
        w3c: conn.site.w3c.as_ref().map(|log| {
            let local = conn.local.unwrap_or(([0, 0, 0, 0], 0).into());
            Box::new(crate::w3c::capture::Pending::capture(log, local, &req))
        }),
    };
    // Cheap reference-counted copies, for the error page if there is one.
    let uri = req.uri().clone();
    let host = req.headers().get(header::HOST).cloned();
    let response = match phases(&conn, req, &mut record).await {
        Ok(resp) => resp,
        Err(answer) => {
            let host = uri
                .authority()
                .map(|a| a.as_str())
                .or_else(|| host.as_ref().and_then(|h| h.to_str().ok()));
            refusal::refuse(&conn, answer, &uri, host, &mut record).await
        }
    };
    record.status = response.status().as_u16();
    conn.site.metrics.request(record.status, record.substatus);
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, body.with_record(record)))
}

async fn phases(
    conn: &Connection,
    mut req: Request<Incoming>,
    record: &mut AccessRecord,
) -> Result<Response<ProxyBody>, Answer> {
    // 1. The Host must belong to the site SNI chose.
    let host = request_host(&req).ok_or(Answer::BadHost)?;
    let host_name = strip_port(&host);
    if conn.runtime.site_for_host(host_name) != Some(conn.site.index) {
        return Err(Answer::Misdirected);
    }

    // 2. Normalise the path and find the location.
    let normalized = path::normalize(req.uri().path()).map_err(|e| {
        tracing::debug!(site = %conn.site.name, error = %e, "path refused");
        Answer::BadPath
    })?;
    let scope: &Scope = conn.site.scope_for(&normalized.canonical);

    // 3. Decide: sslFlags, certificate, mapper, directory, anonymous ([`crate::decision`]).
    let mut user_header = None;
    let verdict = decision::decide(
        scope,
        &conn.client_cert,
        |facts| {
            let (outcome, header) = conn.map(&scope.mapper, facts);
            user_header = header;
            outcome
        },
        DirectoryAccess::Query(conn.runtime.directory.as_ref()),
        &mut (),
    )
    .await;
    let identity = identity(conn, verdict, user_header)?;
    let logon = match &scope.kerberos {
        None => None,
        Some(_) => Some(kerberos::logon(conn, scope, identity.user.as_ref())?),
    };

    // 4. Headers.
    let is_upgrade = req_wants_upgrade(req.headers(), req.version());
    let headers = req.headers_mut();
    headers::remove_hop_by_hop(headers, is_upgrade);
    let stripped = conn.runtime.headers.strip(headers);
    if stripped > 0 {
        tracing::debug!(site = %conn.site.name, count = stripped, "stripped client-sent identity headers");
    }
    headers::remove_where(headers, |name| {
        name == X_FORWARDED_FOR
            || name == X_FORWARDED_PROTO
            || name == X_FORWARDED_HOST
            || name == FORWARDED
    });
    if let Some(cert) = &identity.cert {
        for (name, value) in conn.cert_headers(cert) {
            headers.insert(name.clone(), value.clone());
        }
    }
    let kind = identity.user.as_ref().map_or("anonymous", |u| u.mapping);
    conn.site.metrics.mapping(kind);
    if let Some(user) = identity.user {
        record.user = Some(user.name);
        record.mapping = Some(user.mapping);
        if let Some((name, value)) = user.header {
            headers.insert(name, value);
        }
        if let Some((name, value)) = user
            .groups
            .and_then(|account| conn.runtime.headers.groups_value(&account.groups))
        {
            headers.insert(name, value);
        }
    }
    headers.insert(X_FORWARDED_FOR.clone(), conn.peer_ip.clone());
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    if let Ok(v) = HeaderValue::from_str(&host) {
        headers.insert(X_FORWARDED_HOST.clone(), v.clone());
        if conn.site.preserve_host {
            headers.insert(header::HOST, v);
        } else if let Ok(b) = HeaderValue::from_str(conn.site.backend.authority.as_str()) {
            headers.insert(header::HOST, b);
        }
    }
    if req.version() == Version::HTTP_2 {
        join_cookies(req.headers_mut());
    }

    // 5. Forward.
    let backend = &conn.site.backend;
    let uri = backend
        .uri_for(&normalized.forward, req.uri().query())
        .map_err(|_| Answer::BadPath)?;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let client_upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut req));

    // Kerberos: a token, or the connection's logon ([`kerberos_forward`]).
    let mut resp = match (logon, &scope.kerberos) {
        (Some(logon), Some(target)) => kerberos_forward::forward(conn, target, logon, req).await?,
        _ => {
            let (resp, elapsed) = backend_call(conn, backend.request(req)).await?;
            conn.site.metrics.backend_latency(elapsed);
            resp
        }
    };

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            tracing::warn!(site = %conn.site.name, "backend switched protocols without an upgrade request");
            return Err(Answer::BadGateway);
        };
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        let site = conn.site.name.clone();
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, backend_upgrade) {
                Ok((client, backend)) => {
                    let mut client = TokioIo::new(client);
                    let mut backend = TokioIo::new(backend);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                        tracing::debug!(site = %site, error = %e, "upgraded connection ended");
                    }
                }
                Err(e) => tracing::debug!(site = %site, error = %e, "upgrade failed"),
            }
        });
        let (mut parts, _) = resp.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers, true);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        return Ok(Response::from_parts(parts, ProxyBody::empty()));
    }

    let (mut parts, body) = resp.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers, false);
    Ok(Response::from_parts(parts, ProxyBody::stream(body)))
}

/// Awaits one backend call within the response timeout: the answer for a failure (logged and
/// counted), or the result and how long it took.
async fn backend_call<T>(
    conn: &Connection,
    call: impl Future<Output = Result<T, upstream::BackendError>>,
) -> Result<(T, std::time::Duration), Answer> {
    let started = Instant::now();
    let backend_error = |kind: &'static str| conn.site.metrics.backend_error(kind);
    match tokio::time::timeout(conn.site.backend.response_timeout, call).await {
        Err(_) => {
            backend_error("timeout");
            tracing::warn!(site = %conn.site.name, "backend response timed out");
            Err(Answer::GatewayTimeout)
        }
        Ok(Err(e)) => {
            backend_error(e.kind());
            tracing::warn!(site = %conn.site.name, error = %error_chain(&e), "backend request failed");
            Err(Answer::BadGateway)
        }
        Ok(Ok(done)) => Ok((done, started.elapsed())),
    }
}

/// Who a request is, after the directory had its say.
struct Identity {
    /// The validated certificate whose headers are forwarded.
    cert: Option<Arc<CertFacts>>,
    /// The user, when one was established.
    user: Option<UserIdentity>,
}

struct UserIdentity {
    name: Arc<str>,
    mapping: &'static str,
    header: Option<(HeaderName, HeaderValue)>,
    /// The directory account, when the scope checks accounts (for `X-Remote-Groups`).
    groups: Option<Arc<Account>>,
    /// The mapping's password (Kerberos mode `password`).
    password: Option<crate::directory::Secret>,
}

/// Renders the decision for forwarding: the identity to send, or the answer to give (logged
/// with the step that refused).
fn identity(
    conn: &Connection,
    verdict: Verdict,
    mut user_header: Option<(HeaderName, HeaderValue)>,
) -> Result<Identity, Answer> {
    let refusal = match verdict.outcome {
        Outcome::Forward(granted) => {
            let user = granted.user.map(|user| UserIdentity {
                // The IIS mapper's header comes from the connection's cache; an Active
                // Directory user is named by the directory.
                header: match user.mapped {
                    Some(_) => user_header.take(),
                    None => conn.runtime.headers.user_value(&user.name),
                },
                password: user.mapped.as_ref().and_then(|m| m.password.clone()),
                name: user.name,
                mapping: user.mapping,
                groups: user.account,
            });
            return Ok(Identity {
                cert: granted.cert,
                user,
            });
        }
        Outcome::Refuse(refusal) => refusal,
        Outcome::Undecided(_) => {
            // Only explain describes instead of querying; never forward undecided.
            tracing::error!(site = %conn.site.name, "decision left undecided by the proxy");
            return Err(Answer::Iis(IisStatus::DIRECTORY_UNAVAILABLE));
        }
    };
    let status = refusal.status;
    match &refusal.cause {
        Cause::CertificateRejected => {
            if let ClientCert::Rejected { detail, .. } = &conn.client_cert {
                tracing::info!(site = %conn.site.name, code = %status.code(), reason = %detail,
                    "client certificate rejected");
            }
        }
        Cause::Directory { outcome, who } => tracing::info!(
            site = %conn.site.name,
            user = %who,
            outcome = outcome,
            code = %format_args!("{}.{}", status.status, status.substatus),
            "directory refused the request"
        ),
        Cause::NoDirectory => {
            // The loader refuses such a config; never forward unverified if it happens anyway.
            tracing::error!(site = %conn.site.name, "directory check configured without [directory]");
        }
        _ => {}
    }
    Err(Answer::Iis(status))
}

/// The authority a request names: `:authority`/absolute-form first, else Host.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    if let Some(authority) = req.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

fn req_wants_upgrade(headers: &http::HeaderMap, version: Version) -> bool {
    version == Version::HTTP_11
        && headers.contains_key(header::UPGRADE)
        && headers::connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// HTTP/2 may split cookies across several fields; HTTP/1.1 backends expect one.
fn join_cookies(headers: &mut http::HeaderMap) {
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if cookies.len() > 1
        && let Ok(joined) = HeaderValue::from_str(&cookies.join("; "))
    {
        headers.insert(header::COOKIE, joined);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_from_hosts() {
        assert_eq!(strip_port("example.test:8443"), "example.test");
        assert_eq!(strip_port("example.test"), "example.test");
        assert_eq!(strip_port("[::1]:8443"), "::1");
        assert_eq!(strip_port("127.0.0.1:1"), "127.0.0.1");
    }
}
