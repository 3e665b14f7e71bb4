//! Shared test harness: a generated PKI, a config written to a temp dir, the real echo backend
//! and the real proxy on loopback, and a TLS client that can send exactly the bytes a test needs
//! (raw paths, forged headers, chosen SNI and Host, HTTP/1.1 or HTTP/2).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use certgate::config::Runtime;
use certgate::pki::{Authority, ClientSpec, Issued};
use certgate::server::Server;
use certgate::tls::server::ResumptionKeys;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

pub mod kerberos;
pub mod mapping_cli;
pub mod revocation;

pub const REVOKED_SERIAL: u64 = 0x5E4F_3D2C_1B0A;

/// Every certificate the tests use.
pub struct Pki {
    pub ca: Authority,
    pub other_ca: Authority,
    pub server: Issued,
    pub alice: Issued,
    pub bob: Issued,
    pub expired: Issued,
    pub not_yet_valid: Issued,
    pub server_auth_only: Issued,
    pub revoked: Issued,
    pub untrusted: Issued,
}

impl Pki {
    pub fn new() -> Self {
        let ca = Authority::new("Example Test CA").unwrap();
        let other_ca = Authority::new("Untrusted CA").unwrap();
        let server = ca
            .server(&["localhost", "site-a.test", "site-b.test", "127.0.0.1"])
            .unwrap();
        let mut alice = ClientSpec::new("alice");
        alice.organizational_units = vec!["Engineering".into()];
        alice.organization = Some("Contoso".into());
        let mut expired = ClientSpec::new("expired");
        expired.not_before_days = -30;
        expired.not_after_days = -1;
        let mut future = ClientSpec::new("future");
        future.not_before_days = 2;
        future.not_after_days = 30;
        let mut server_only = ClientSpec::new("serveronly");
        server_only.client_auth = false;
        let mut revoked = ClientSpec::new("revoked");
        revoked.serial = Some(REVOKED_SERIAL);
        Self {
            alice: ca.client(&alice).unwrap(),
            bob: ca.client(&ClientSpec::new("bob")).unwrap(),
            expired: ca.client(&expired).unwrap(),
            not_yet_valid: ca.client(&future).unwrap(),
            server_auth_only: ca.client(&server_only).unwrap(),
            revoked: ca.client(&revoked).unwrap(),
            untrusted: other_ca.client(&ClientSpec::new("mallory")).unwrap(),
            server,
            ca,
            other_ca,
        }
    }

    /// Writes ca.crt, server.crt/key, alice.crt, ... into `dir`.
    pub fn write(&self, dir: &Path) {
        let files = [
            ("ca.crt", &self.ca.cert_pem),
            ("server.crt", &self.server.cert_pem),
            ("server.key", &self.server.key_pem),
            ("alice.crt", &self.alice.cert_pem),
            ("bob.crt", &self.bob.cert_pem),
        ];
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).unwrap();
        }
        std::fs::write(
            dir.join("ca.crl"),
            self.ca.crl(&[REVOKED_SERIAL], 7).unwrap(),
        )
        .unwrap();
    }
}

/// A running proxy with its backend and files.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub pki: Arc<Pki>,
    pub server: Server,
    pub backend: SocketAddr,
    pub resumption: Arc<ResumptionKeys>,
    pub backend_guard: BackendGuard,
}

/// Stops the echo backend when dropped.
pub struct BackendGuard(CancellationToken);

impl Drop for BackendGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A config with one site requiring certificates, mapping alice one-to-one, with an anonymous
/// `/public` location and the CRL loaded. `{backend}` is replaced.
pub const BASIC: &str = r#"
[server]
listen = ["127.0.0.1:0"]
backend_response_timeout = "1s"

[[site]]
name = "Default Web Site"
host_names = ["localhost", "site-a.test"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
crl = ["ca.crl"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true
one_to_one_certificate_mappings_enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "alice.crt"
enabled = true

[[site.location]]
path = "/public"
ssl_flags = "Ssl"
anonymous_authentication = true
"#;

impl Env {
    pub async fn start(config: &str) -> Self {
        Self::start_with(Arc::new(Pki::new()), config).await
    }

    pub async fn start_with(pki: Arc<Pki>, config: &str) -> Self {
        let empty = tempfile::tempdir().unwrap();
        Self::start_staged(pki, config, empty.path()).await
    }

    /// Like [`Env::start_with`], with every file of `staged` copied next to the config first.
    pub async fn start_staged(pki: Arc<Pki>, config: &str, staged: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        for entry in std::fs::read_dir(staged).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let backend_shutdown = CancellationToken::new();
        let backend =
            certgate::echo::spawn("127.0.0.1:0".parse().unwrap(), backend_shutdown.clone())
                .await
                .unwrap();
        let path = dir.path().join("certgate.toml");
        std::fs::write(&path, config.replace("{backend}", &backend.to_string())).unwrap();
        let resumption = Arc::new(ResumptionKeys::default());
        let runtime = Runtime::load(&path, &resumption).unwrap_or_else(|e| panic!("{e}"));
        let server = Server::start(runtime, Arc::clone(&resumption))
            .await
            .unwrap();
        Self {
            dir,
            pki,
            server,
            backend,
            resumption,
            backend_guard: BackendGuard(backend_shutdown),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.https_addrs[0]
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("certgate.toml")
    }

    /// Loads new config text (with `{backend}` replaced) and swaps it in.
    pub fn reload(&self, config: &str) {
        let path = self.config_path();
        std::fs::write(
            &path,
            config.replace("{backend}", &self.backend.to_string()),
        )
        .unwrap();
        let runtime = Runtime::load(&path, &self.resumption).unwrap_or_else(|e| panic!("{e}"));
        self.server.swap(runtime);
    }

    pub fn client(&self, identity: Option<&Issued>) -> Client {
        Client::new(&self.pki.ca.cert_pem, identity)
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub version: Version,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The answer as IIS would log it: `200` for a forwarded request, else the
    /// `status.substatus` of certgate's page (e.g. `403.7`).
    pub fn code(&self) -> String {
        if self.status == 200 {
            return "200".into();
        }
        self.text()
            .split("HTTP Error ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .map_or_else(|| self.status.to_string(), str::to_owned)
    }

    /// The `X-Remote-User` the backend received, for a forwarded request.
    pub fn remote_user(&self) -> Option<String> {
        (self.status == 200)
            .then(|| {
                self.echo()["headers"]["x-remote-user"]
                    .as_str()
                    .map(str::to_owned)
            })
            .flatten()
    }

    /// The echo backend's JSON report.
    pub fn echo(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not an echo report ({e}): {}", self.text()))
    }

    /// A header as the backend received it (all values if repeated).
    pub fn backend_header(&self, name: &str) -> Option<serde_json::Value> {
        self.echo()["headers"].get(name).cloned()
    }
}

/// A TLS client with an optional client certificate.
#[derive(Clone)]
pub struct Client {
    pub config: Arc<rustls::ClientConfig>,
}

impl Client {
    pub fn new(ca_pem: &str, identity: Option<&Issued>) -> Self {
        Self::with_versions(
            ca_pem,
            identity,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    pub fn with_versions(
        ca_pem: &str,
        identity: Option<&Issued>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        Self::with_provider(ca_pem, identity, versions, certgate::tls::provider())
    }

    /// A client with its own crypto provider (e.g. another cipher-suite list).
    pub fn with_provider(
        ca_pem: &str,
        identity: Option<&Issued>,
        versions: &[&'static rustls::SupportedProtocolVersion],
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![id.der.clone()],
                    PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            config: Arc::new(config),
        }
    }

    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> Self {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        self.config = Arc::new(config);
        self
    }

    pub async fn connect(
        &self,
        addr: SocketAddr,
        sni: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(sni.to_owned()).unwrap();
        TlsConnector::from(Arc::clone(&self.config))
            .connect(name, tcp)
            .await
    }

    /// One GET over a fresh connection, HTTP/1.1 (ALPN-negotiated h2 is not used).
    pub async fn get(&self, addr: SocketAddr, path: &str) -> Resp {
        self.send(
            addr,
            "localhost",
            Request::get(path)
                .header("host", "localhost")
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap()
    }

    /// Sends one request on a fresh connection; uses HTTP/2 if ALPN chose it.
    pub async fn send(
        &self,
        addr: SocketAddr,
        sni: &str,
        req: Request<Bytes>,
    ) -> Result<Resp, Box<dyn std::error::Error + Send + Sync>> {
        let tls = self.connect(addr, sni).await?;
        send_on(tls, req).await
    }
}

/// Sends a request on an established TLS stream.
pub async fn send_on(
    tls: TlsStream<TcpStream>,
    req: Request<Bytes>,
) -> Result<Resp, Box<dyn std::error::Error + Send + Sync>> {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let req = req.map(Full::new);
    let resp = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let mut req = req;
        *req.version_mut() = Version::HTTP_2;
        if req.uri().authority().is_none() {
            // HTTP/2 carries the host in :authority, which hyper builds from an absolute URI.
            let host = req
                .headers_mut()
                .remove("host")
                .map(|h| h.to_str().unwrap().to_owned())
                .unwrap_or_else(|| "localhost".into());
            let pq = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *req.uri_mut() = format!("https://{host}{pq}").parse().unwrap();
        }
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Resp {
        status,
        version,
        headers,
        body,
    })
}

/// Reads an HTTP/1.1 head up to its blank line, byte by byte, so nothing after it is consumed.
pub async fn read_head(io: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    head
}

/// Writes raw HTTP/1.1 bytes on a TLS connection and reads until the server closes.
pub async fn raw_http1(client: &Client, addr: SocketAddr, sni: &str, request: &str) -> String {
    let mut tls = client.connect(addr, sni).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
