//! Fetching CRLs and OCSP responses from the URLs certificates name.
//!
//! Those URLs come from client-supplied certificates (after their chain verified to a
//! configured CA), so every fetch is bounded: an allow-list of schemes (`http`, and `ldap` via
//! [`super::ldap`]), an optional allow-list of hosts, a response size cap, a redirect cap (http
//! only, never to another scheme), and one deadline for the whole fetch including redirects.
//! HTTP/1.1 over a plain TCP connection per fetch: CRL and OCSP traffic is rare and small
//! enough that pooling is not worth its state.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Limits on every fetch, from `[revocation]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest response body accepted.
    pub max_bytes: usize,
    /// Redirects followed (http only).
    pub max_redirects: u8,
    /// Hosts that may be contacted; empty means any.
    pub allowed_hosts: Vec<String>,
    /// Cached CRLs and OCSP answers no handshake used for this long are dropped (and their
    /// state files deleted), so a URL named by a certificate seen once is not refreshed
    /// forever (`[revocation] evict_unused_after`).
    pub evict_unused_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 32 * 1024 * 1024,
            max_redirects: 3,
            allowed_hosts: Vec::new(),
            evict_unused_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a fetch failed. Messages name the URL (it came from a certificate, not a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The scheme is not one certgate fetches.
    #[error("scheme of {0} is not fetched (http and ldap only)")]
    Scheme(String),
    /// The host is not in `allowed_hosts`.
    #[error("host of {0} is not in revocation.allowed_hosts")]
    Host(String),
    /// The URL does not parse.
    #[error("bad URL {0}")]
    Url(String),
    /// Connection or protocol failure.
    #[error("{url}: {reason}")]
    Io {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The server answered something other than 200.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// More redirects than allowed, or a redirect elsewhere than http.
    #[error("{0}: too many or unsupported redirects")]
    Redirect(String),
    /// The body is larger than `max_crl_bytes`.
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// The deadline passed.
    #[error("{url}: no answer within {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The retrieval timeout.
        after: Duration,
    },
    /// The directory has no CRL at that DN or is not configured.
    #[error("{url}: {reason}")]
    Ldap {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
}

impl FetchError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Scheme(_) | Self::Host(_) | Self::Url(_) => "refused",
            Self::Io { .. } => "io",
            Self::Status { .. } => "status",
            Self::Redirect(_) => "redirect",
            Self::TooLarge { .. } => "too_large",
            Self::Timeout { .. } => "timeout",
            Self::Ldap { .. } => "ldap",
        }
    }
}

/// Whether certgate would fetch `url` at all (scheme and host allow-lists).
pub fn permitted(url: &str, limits: &Limits) -> Result<(), FetchError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
        return Ok(());
    }
    if !lower.starts_with("http://") {
        return Err(FetchError::Scheme(url.to_owned()));
    }
    let uri: Uri = url.parse().map_err(|_| FetchError::Url(url.to_owned()))?;
    let host = uri.host().ok_or_else(|| FetchError::Url(url.to_owned()))?;
    if !limits.allowed_hosts.is_empty()
        && !limits
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    {
        return Err(FetchError::Host(url.to_owned()));
    }
    Ok(())
}

/// GET (or POST with `body`, for OCSP) over http with all limits and one deadline.
pub async fn http(
    url: &str,
    post: Option<(&'static str, Vec<u8>)>,
    limits: &Limits,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    tokio::time::timeout(timeout, follow(url, post, limits))
        .await
        .map_err(|_| FetchError::Timeout {
            url: url.to_owned(),
            after: timeout,
        })?
}

async fn follow(
    url: &str,
    post: Option<(&'static str, Vec<u8>)>,
    limits: &Limits,
) -> Result<Bytes, FetchError> {
    let mut current = url.to_owned();
    for _ in 0..=limits.max_redirects {
        permitted(&current, limits)?;
        if !current.to_ascii_lowercase().starts_with("http://") {
            return Err(FetchError::Redirect(url.to_owned()));
        }
        match once(&current, post.clone(), limits).await? {
            Hop::Body(body) => return Ok(body),
            Hop::Redirect(next) => current = next,
        }
    }
    Err(FetchError::Redirect(url.to_owned()))
}

enum Hop {
    Body(Bytes),
    Redirect(String),
}

async fn once(
    url: &str,
    post: Option<(&'static str, Vec<u8>)>,
    limits: &Limits,
) -> Result<Hop, FetchError> {
    let io = |reason: String| FetchError::Io {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| FetchError::Url(url.to_owned()))?;
    let host = uri.host().ok_or_else(|| FetchError::Url(url.to_owned()))?;
    let port = uri.port_u16().unwrap_or(80);
    let host_header = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| io(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| io(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let builder = Request::builder()
        .uri(path)
        .header(http::header::HOST, host_header)
        .header(http::header::USER_AGENT, "certgate-revocation");
    let request = match post {
        Some((content_type, body)) => builder
            .method(Method::POST)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body))),
        None => builder.method(Method::GET).body(Full::new(Bytes::new())),
    }
    .map_err(|e| io(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| io(e.to_string()))?;
    let status = response.status();
    if status.is_redirection() {
        driver.abort();
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FetchError::Redirect(url.to_owned()))?;
        let next = if location.starts_with('/') {
            format!(
                "http://{}{location}",
                uri.authority().map_or("", |a| a.as_str())
            )
        } else {
            location.to_owned()
        };
        return Ok(Hop::Redirect(next));
    }
    if status != StatusCode::OK {
        driver.abort();
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let announced = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit: limits.max_bytes,
    };
    if announced.is_some_and(|n| n > limits.max_bytes) {
        driver.abort();
        return Err(too_large());
    }
    let body = Limited::new(response.into_body(), limits.max_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                io(e.to_string())
            }
        })?
        .to_bytes();
    driver.abort();
    Ok(Hop::Body(body))
}
