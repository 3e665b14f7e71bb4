//! Accepting one TLS connection: SNI picks the site, the site's config runs the handshake, and
//! the client certificate is judged once for the whole connection.

use std::io;
use std::sync::Arc;

use rustls::server::Acceptor;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::client_auth::{ClientAuth, ClientCert};
use super::coalesce::CoalescingStream;

/// What the handshake needs of a site: its rustls configuration and its client-certificate
/// policy. The configuration's site implements it, so TLS does not depend on the configuration.
pub trait TlsSite {
    /// The site's rustls configuration.
    fn server_config(&self) -> Arc<rustls::ServerConfig>;
    /// The site's client-certificate policy.
    fn client_auth(&self) -> &ClientAuth;
}

/// What the handshake established, for logs, metrics and the request phases.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The SNI the client sent, lowercase.
    pub sni: Option<String>,
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// Whether the session was resumed from a ticket or cache.
    pub resumed: bool,
    /// Whether ALPN chose HTTP/2.
    pub h2: bool,
}

/// Why a connection did not become a usable TLS session.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The SNI names no configured site.
    #[error("no site serves SNI `{0}`")]
    UnknownSni(String),
    /// The handshake failed (bad ClientHello, alert, certificate rejected in TLS, I/O).
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
}

impl AcceptError {
    /// Bounded label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownSni(_) => "unknown_sni",
            Self::Handshake(e) => match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented,
                ) => "client_cert",
                Some(_) => "tls",
                None => "io",
            },
        }
    }
}

/// An accepted connection: the stream, its site, and the verdict on its client certificate.
pub struct Accepted<S> {
    /// The TLS stream; the session ticket waits under it for the first response.
    pub stream: TlsStream<CoalescingStream>,
    /// The site chosen by SNI.
    pub site: Arc<S>,
    /// Handshake facts.
    pub info: TlsInfo,
    /// The client certificate verdict.
    pub client_cert: ClientCert,
}

/// Runs the handshake for `tcp` with the site `select` assigns to its SNI (lowercase). The caller
/// bounds it with the handshake timeout.
pub async fn accept<S: TlsSite>(
    tcp: TcpStream,
    select: impl FnOnce(Option<&str>) -> Option<Arc<S>>,
) -> Result<Accepted<S>, AcceptError> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), CoalescingStream::new(tcp))
        .await
        .map_err(AcceptError::Handshake)?;
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let site = select(sni.as_deref())
        .ok_or_else(|| AcceptError::UnknownSni(sni.clone().unwrap_or_default()))?;
    let mut stream = start
        .into_stream(site.server_config())
        .await
        .map_err(AcceptError::Handshake)?;
    let (io, conn) = stream.get_mut();
    io.handshake_done(conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3));
    let (_, conn) = stream.get_ref();
    let info = TlsInfo {
        sni,
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        },
        resumed: matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed)),
        h2: conn.alpn_protocol() == Some(b"h2"),
    };
    let full_handshake = !matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    let client_cert = site
        .client_auth()
        .classify_handshake(conn.peer_certificates(), full_handshake);
    Ok(Accepted {
        stream,
        site,
        info,
        client_cert,
    })
}
