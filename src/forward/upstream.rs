//! The connection pool to one site's backend.
//!
//! Requests and responses stream through (`Incoming` bodies end to end); nothing is buffered.
//! The backend leg is HTTP/1.1 so WebSocket upgrades work the same for HTTP/1.1 and HTTP/2
//! clients.
//!
//! The pool is certgate's own rather than hyper-util's general-purpose client: a site has
//! exactly one backend, so there is no per-request pool key to build and hash, no connector
//! future chain and no extra task per response to hand the connection back. callgrind put
//! hyper-util's client at about an eighth of the instructions of a proxied keep-alive request.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::bound::{BoundMark, Persistence};

/// A request body to the backend: the client's, or none (a body-less request certgate resends,
/// see [`super::bound`]).
pub type OutBody = Either<Incoming, Empty<Bytes>>;

/// What [`Backend::send_bound`] did.
pub enum BoundAttempt {
    /// Sent on a connection marked authenticated for the owner.
    Sent(Response<Incoming>, BoundMark),
    /// No such connection: the request, unsent.
    NoConnection(Request<OutBody>),
}

/// Connections kept per backend, idle or finishing a response.
const MAX_POOLED: usize = 256;
/// How long an idle backend connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A backend base URL and its connection pool.
#[derive(Clone)]
pub struct Backend {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// Path prefix without a trailing slash (empty for the root).
    pub prefix: String,
    /// Time allowed for the backend's response headers.
    pub response_timeout: Duration,
    pool: Arc<Pool>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Why a request to the backend failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No connection could be made (refused, unreachable, timed out, TLS failed).
    #[error("cannot connect to the backend: {0}")]
    Connect(#[source] io::Error),
    /// The connection failed while the request or response was under way.
    #[error("backend connection failed: {0}")]
    Http(#[from] hyper::Error),
}

impl BackendError {
    /// The `kind` label of `certgate_backend_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Http(_) => "other",
        }
    }
}

struct Pool {
    /// Host to connect to, without IPv6 brackets.
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    /// Most recently used last. Holds idle connections and ones still streaming a response
    /// body, which become ready again when the body ends.
    conns: Mutex<Vec<Pooled>>,
    /// Whether the backend keeps connection-bound logons, as far as seen.
    persistence: Persistence,
}

struct Pooled {
    sender: SendRequest<OutBody>,
    since: Instant,
    /// The user whose connection-bound authentication (Kerberos) the connection carried, if
    /// any. Backends such as IIS keep a connection authenticated after one `Negotiate`
    /// exchange, so such a connection only ever serves requests of the same owner again.
    owner: Option<Arc<str>>,
    /// Whether the backend accepted the owner's logon on this connection.
    mark: BoundMark,
}

impl Backend {
    /// Parses `url` and prepares the pool. `ca` is the trust for an `https://` backend;
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
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = scheme == Scheme::HTTPS;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });

        let tls = if https {
            let config = client_tls(ca)?;
            let name = ServerName::try_from(host.clone()).map_err(|e| {
                format!("`{url}`: `{host}` cannot be checked against a certificate: {e}")
            })?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            scheme,
            authority,
            prefix,
            response_timeout,
            pool: Arc::new(Pool {
                host,
                port,
                tls,
                connect_timeout,
                conns: Mutex::new(Vec::new()),
                persistence: Persistence::default(),
            }),
        })
    }

    /// The origin-form request target for a normalised path and the original query.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let mut pq = String::with_capacity(self.prefix.len() + path.len() + 1);
        pq.push_str(&self.prefix);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Ok(Uri::from(PathAndQuery::try_from(pq)?))
    }

    /// Sends `req` on a pooled connection, or a new one.
    ///
    /// A pooled connection the backend closed while idle fails before the request is
    /// written; hyper hands the request back and it goes out on a fresh connection, so a
    /// backend's keep-alive timeout never surfaces as a 502.
    pub async fn request(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, BackendError> {
        self.request_as(req, None).await
    }

    /// [`Self::request`] on a connection that only ever carries `owner`'s requests (`None`:
    /// requests without connection-bound authentication).
    pub async fn request_as(
        &self,
        req: Request<Incoming>,
        owner: Option<&Arc<str>>,
    ) -> Result<Response<Incoming>, BackendError> {
        let (resp, _) = self.send_as(req.map(Either::Left), owner).await?;
        Ok(resp)
    }

    /// [`Self::request_as`], also returning the connection's [`BoundMark`] (which the caller
    /// sets once the backend accepted `owner`'s token on it).
    pub async fn send_as(
        &self,
        req: Request<OutBody>,
        owner: Option<&Arc<str>>,
    ) -> Result<(Response<Incoming>, BoundMark), BackendError> {
        let mut req = req;
        while let Some((sender, mark)) = self.pool.checkout(owner, false) {
            match self.pool.try_send(sender, mark, req, owner).await? {
                Ok(sent) => return Ok(sent),
                Err(unsent) => req = unsent,
            }
        }
        let mut sender = self.pool.connect().await?;
        let resp = sender.send_request(req).await?;
        let mark = BoundMark::default();
        self.pool.checkin(sender, owner, mark.clone());
        Ok((resp, mark))
    }

    /// Sends `req` only on a pooled connection marked authenticated for `owner`; the request
    /// comes back unsent when there is none.
    pub async fn send_bound(
        &self,
        req: Request<OutBody>,
        owner: &Arc<str>,
    ) -> Result<BoundAttempt, BackendError> {
        let mut req = req;
        while let Some((sender, mark)) = self.pool.checkout(Some(owner), true) {
            match self.pool.try_send(sender, mark, req, Some(owner)).await? {
                Ok((resp, mark)) => return Ok(BoundAttempt::Sent(resp, mark)),
                Err(unsent) => req = unsent,
            }
        }
        Ok(BoundAttempt::NoConnection(req))
    }

    /// Whether this backend keeps connection-bound logons, as far as seen.
    pub fn persistence(&self) -> &Persistence {
        &self.pool.persistence
    }
}

/// A byte stream to the backend, plain or TLS.
pub trait BackendIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> BackendIo for T {}

impl Backend {
    /// A new connection of its own to the backend, outside the pool, for a request that is
    /// not a client's (an `ExecuteURL` error page, which sends no request body): TCP, then TLS
    /// for an `https://` backend with the same trust (`backend_ca`) and server name as proxied
    /// requests, within the same connect timeout.
    pub async fn open(&self) -> Result<Box<dyn BackendIo>, BackendError> {
        let pool = &self.pool;
        let connect = async {
            let tcp = TcpStream::connect((pool.host.as_str(), pool.port))
                .await
                .map_err(BackendError::Connect)?;
            tcp.set_nodelay(true).map_err(BackendError::Connect)?;
            match &pool.tls {
                None => Ok(Box::new(tcp) as Box<dyn BackendIo>),
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(BackendError::Connect)?;
                    Ok(Box::new(tls) as Box<dyn BackendIo>)
                }
            }
        };
        tokio::time::timeout(pool.connect_timeout, connect)
            .await
            .map_err(|_| BackendError::Connect(io::ErrorKind::TimedOut.into()))?
    }
}

impl Pool {
    /// The most recently used connection of `owner` that can take a request now (with
    /// `bound`, only one marked authenticated); closed and expired ones are dropped on the way.
    fn checkout(
        &self,
        owner: Option<&Arc<str>>,
        bound: bool,
    ) -> Option<(SendRequest<OutBody>, BoundMark)> {
        let mut conns = self.conns.lock().ok()?;
        let mut i = conns.len();
        while i > 0 {
            i -= 1;
            let pooled = &conns[i];
            if pooled.sender.is_closed() || pooled.since.elapsed() > IDLE_TIMEOUT {
                conns.remove(i);
            } else if pooled.sender.is_ready()
                && pooled.owner.as_ref() == owner
                && (!bound || pooled.mark.is_set())
            {
                let pooled = conns.remove(i);
                return Some((pooled.sender, pooled.mark));
            }
        }
        None
    }

    /// Sends on a checked-out connection: `Ok(Err(req))` when the connection had closed before
    /// the request was written (hyper hands it back).
    #[allow(clippy::type_complexity)]
    async fn try_send(
        &self,
        mut sender: SendRequest<OutBody>,
        mark: BoundMark,
        req: Request<OutBody>,
        owner: Option<&Arc<str>>,
    ) -> Result<Result<(Response<Incoming>, BoundMark), Request<OutBody>>, BackendError> {
        match sender.try_send_request(req).await {
            Ok(resp) => {
                self.checkin(sender, owner, mark.clone());
                Ok(Ok((resp, mark)))
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) => Ok(Err(unsent)),
                None => Err(BackendError::Http(e.into_error())),
            },
        }
    }

    fn checkin(&self, sender: SendRequest<OutBody>, owner: Option<&Arc<str>>, mark: BoundMark) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut conns) = self.conns.lock()
            && conns.len() < MAX_POOLED
        {
            conns.push(Pooled {
                sender,
                since: Instant::now(),
                owner: owner.cloned(),
                mark,
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<OutBody>, BackendError> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(BackendError::Connect)?;
            tcp.set_nodelay(true).map_err(BackendError::Connect)?;
            match &self.tls {
                None => handshake(TokioIo::new(tcp)).await,
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(BackendError::Connect)?;
                    handshake(TokioIo::new(tls)).await
                }
            }
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| BackendError::Connect(io::ErrorKind::TimedOut.into()))?
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<OutBody>, BackendError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(|e| BackendError::Connect(io::Error::other(e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "backend connection ended");
        }
    });
    sender
        .ready()
        .await
        .map_err(|e| BackendError::Connect(io::Error::other(e)))?;
    Ok(sender)
}

fn client_tls(ca: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
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
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn backend(url: &str) -> Backend {
        Backend::new(url, &[], Duration::from_secs(1), Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn requests_go_out_in_origin_form_under_the_prefix() {
        let b = backend("http://127.0.0.1:8080/app/");
        let uri = b.uri_for("/a%20b", Some("x=1")).unwrap();
        assert_eq!(uri.to_string(), "/app/a%20b?x=1");
        assert!(uri.authority().is_none());
        assert_eq!(backend("http://h").uri_for("/", None).unwrap(), "/");
    }

    #[test]
    fn connect_addresses_come_from_the_url() {
        let b = backend("http://[::1]:8080");
        assert_eq!((b.pool.host.as_str(), b.pool.port), ("::1", 8080));
        let b = backend("http://backend.example");
        assert_eq!((b.pool.host.as_str(), b.pool.port), ("backend.example", 80));
        let b = backend("https://backend.example");
        assert_eq!(b.pool.port, 443);
        assert!(b.pool.tls.is_some());
    }

    #[test]
    fn bad_urls_say_why() {
        let err = |url| Backend::new(url, &[], Duration::ZERO, Duration::ZERO).unwrap_err();
        assert!(err("ftp://h").contains("only http:// and https://"));
        assert!(err("http://h/?q=1").contains("query string"));
        assert!(err("/relative").contains("no scheme"));
    }
}
