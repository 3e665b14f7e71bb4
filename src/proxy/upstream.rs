//! The connection pool to one site's backend.
//!
//! Requests and responses stream through (`Incoming` bodies end to end); nothing is buffered.
//! The backend leg is HTTP/1.1 so WebSocket upgrades work the same for HTTP/1.1 and HTTP/2
//! clients.

use std::time::Duration;

use http::Uri;
use http::uri::{Authority, Scheme};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

/// Idle keep-alive connections kept per backend.
const MAX_IDLE_PER_BACKEND: usize = 256;
/// How long an idle backend connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A backend base URL and its pooled client.
#[derive(Clone, Debug)]
pub struct Backend {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// Path prefix without a trailing slash (empty for the root).
    pub prefix: String,
    /// The pooled client.
    pub client: Client<HttpsConnector<HttpConnector>, Incoming>,
    /// Time allowed for the backend's response headers.
    pub response_timeout: Duration,
}

impl Backend {
    /// Parses `url` and builds a pooled client. `ca` is the trust for an `https://` backend;
    /// empty means the system roots.
    pub fn new(
        url: &str,
        ca: &[CertificateDer<'static>],
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no scheme; use http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!(
                "`{url}`: only http:// and https:// backends are supported"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if uri.query().is_some() {
            return Err(format!(
                "`{url}`: a backend URL cannot carry a query string"
            ));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();

        let mut roots = RootCertStore::empty();
        if ca.is_empty() {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        } else {
            let (_, ignored) = roots.add_parsable_certificates(ca.iter().cloned());
            if ignored > 0 {
                return Err(format!(
                    "{ignored} backend_ca certificate(s) could not be parsed"
                ));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(super::super::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(MAX_IDLE_PER_BACKEND)
            .set_host(false)
            .build(https);
        Ok(Self {
            scheme,
            authority,
            prefix,
            client,
            response_timeout,
        })
    }

    /// The backend URI for a normalised path and the original query.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let mut pq = String::with_capacity(self.prefix.len() + path.len() + 1);
        pq.push_str(&self.prefix);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}
