//! The backend leg: connection reuse, backends that close idle connections, and TLS to the
//! backend verified against `backend_ca`. Real sockets, real TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::{BASIC, Env, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn backend_connections_are_reused_across_requests_and_clients() {
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice));
    // Each `get` is a new client connection; the backend leg should stay the same one.
    let first = alice.get(env.addr(), "/").await;
    let second = alice.get(env.addr(), "/").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        first.echo()["peer"],
        second.echo()["peer"],
        "the second request opened a new backend connection"
    );
}

/// A backend that answers one request per connection as if keeping it alive (no
/// `Connection: close`), then closes it shortly after, like a backend whose keep-alive timeout
/// is shorter than certgate's.
async fn closing_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nclosed")
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_backend_closing_idle_connections_costs_no_request() {
    let (backend, accepted) = closing_backend().await;
    let env = Env::start(&BASIC.replace("http://{backend}", &format!("http://{backend}"))).await;
    let alice = env.client(Some(&env.pki.alice));
    for i in 0..5 {
        let resp = alice.get(env.addr(), "/").await;
        assert_eq!(resp.status, 200, "request {i}: {}", resp.text());
        assert_eq!(resp.text(), "closed");
        // Let the backend close the connection certgate pooled.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

/// A TLS backend with `pki.server`'s certificate, answering every request with `tls backend`.
async fn tls_backend(pki: &Pki) -> SocketAddr {
    let key = PrivateKeyDer::from_pem_slice(pki.server.key_pem.as_bytes()).unwrap();
    let certs: Vec<CertificateDer<'static>> = vec![pki.server.der.clone()];
    let config = rustls::ServerConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"tls backend",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_backends_are_verified_against_backend_ca() {
    let pki = Arc::new(Pki::new());
    let backend = tls_backend(&pki).await;
    let trusted = BASIC.replace(
        "backend = \"http://{backend}\"",
        &format!("backend = \"https://{backend}\"\nbackend_ca = [\"ca.crt\"]"),
    );
    let env = Env::start_with(Arc::clone(&pki), &trusted).await;
    let resp = env.client(Some(&pki.alice)).get(env.addr(), "/").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "tls backend");

    // The same backend, trusted only through another CA: certgate must refuse to talk to it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other-ca.crt"), &pki.other_ca.cert_pem).unwrap();
    let untrusted = BASIC.replace(
        "backend = \"http://{backend}\"",
        &format!("backend = \"https://{backend}\"\nbackend_ca = [\"other-ca.crt\"]"),
    );
    let env = Env::start_staged(Arc::clone(&pki), &untrusted, dir.path()).await;
    let resp = env.client(Some(&pki.alice)).get(env.addr(), "/").await;
    assert_eq!(resp.status, 502, "{}", resp.text());
}

/// `responseMode="ExecuteURL"` for 401, for everyone (`Custom`).
const EXECUTE_URL_401: &str = r#"
[site.http_errors]
error_mode = "Custom"

[[site.http_errors.error]]
status_code = 401
path = "/errors/401.html"
response_mode = "ExecuteURL"

[[site.location]]"#;

#[tokio::test]
async fn execute_url_error_pages_come_from_an_https_backend_verified_like_requests() {
    let pki = Arc::new(Pki::new());
    let backend = tls_backend(&pki).await;
    let config = |ca: &str| {
        BASIC
            .replace(
                "backend = \"http://{backend}\"",
                &format!("backend = \"https://{backend}\"\nbackend_ca = [\"{ca}\"]"),
            )
            .replacen("[[site.location]]", EXECUTE_URL_401, 1)
    };
    let env = Env::start_with(Arc::clone(&pki), &config("ca.crt")).await;
    // bob is not mapped: 401.2, whose page the TLS backend serves.
    let resp = env.client(Some(&pki.bob)).get(env.addr(), "/").await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.text(), "tls backend");

    // A backend certgate does not trust gives no page: the short page, never the backend's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other-ca.crt"), &pki.other_ca.cert_pem).unwrap();
    let env = Env::start_staged(Arc::clone(&pki), &config("other-ca.crt"), dir.path()).await;
    let resp = env.client(Some(&pki.bob)).get(env.addr(), "/").await;
    assert_eq!(resp.status, 401);
    assert!(!resp.text().contains("tls backend"), "{}", resp.text());
    assert!(resp.headers.contains_key("x-certgate-ref"));
}
