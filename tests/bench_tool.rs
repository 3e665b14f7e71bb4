//! `certgate bench` against a real in-process mTLS server: every mode produces traffic, and
//! every failure class the summary promises is counted rather than crashing the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certgate::bench::{self, BenchArgs, ErrorKind, Mode, Summary};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Two independent CAs: the server trusts only `trusted`; `rogue` issues a client certificate
/// the server must refuse.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trusted = ca("certgate bench test CA");
        let rogue = ca("rogue CA");
        std::fs::write(dir.path().join("ca.pem"), &trusted.0).unwrap();
        std::fs::write(dir.path().join("rogue-ca.pem"), &rogue.0).unwrap();
        let (cert, key) = leaf(&trusted.1, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
        std::fs::write(dir.path().join("server.pem"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        let (cert, key) = leaf(&trusted.1, "client", ExtendedKeyUsagePurpose::ClientAuth);
        std::fs::write(dir.path().join("client.pem"), cert).unwrap();
        std::fs::write(dir.path().join("client.key"), key).unwrap();
        let (cert, key) = leaf(&rogue.1, "intruder", ExtendedKeyUsagePurpose::ClientAuth);
        std::fs::write(dir.path().join("rogue.pem"), cert).unwrap();
        std::fs::write(dir.path().join("rogue.key"), key).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// An mTLS HTTP/1.1 server that requires a client certificate from the trusted CA and answers
/// every request with `status`. Runs until the test's runtime shuts down.
async fn serve(pki: &Pki, status: StatusCode) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.path("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let chain = CertificateDer::pem_file_iter(pki.path("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |_req| async move {
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok\n")));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

fn args(pki: &Pki, addr: SocketAddr, mode: Mode) -> BenchArgs {
    BenchArgs {
        url: format!("https://localhost:{}/bench?x=1", addr.port()),
        cert: pki.path("client.pem"),
        key: pki.path("client.key"),
        ca: Some(pki.path("ca.pem")),
        insecure: false,
        mode,
        concurrency: 2,
        duration: Duration::from_millis(800),
        requests: None,
        timeout: Duration::from_secs(2),
        servername: None,
        connect_to: Some(addr),
        method: http::Method::GET,
        headers: vec!["X-Bench: 1".into()],
        tls_version: None,
        kx_groups: Vec::new(),
        json: false,
        quiet: true,
    }
}

fn count(summary: &Summary, kind: ErrorKind) -> u64 {
    summary.errors.get(&kind).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_mode_does_full_handshakes() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    let summary = bench::run(&args(&pki, addr, Mode::Handshake))
        .await
        .unwrap();
    assert!(summary.ok > 0, "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(summary.resumed, 0, "{summary}");
    assert_eq!(summary.hello_retries, 0, "{summary}");
    assert!(summary.connections >= summary.ok, "{summary}");
    let negotiated = summary.negotiated.as_deref().unwrap_or_default();
    assert!(negotiated.starts_with("TLSv1_3 "), "{negotiated}");
    assert!(summary.latency.p50 > Duration::ZERO && summary.latency.p99 <= summary.latency.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_mode_resumes_sessions() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    let summary = bench::run(&args(&pki, addr, Mode::Resume)).await.unwrap();
    assert!(summary.ok > 0, "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    assert!(summary.resumed > 0, "{summary}");
    assert!(summary.resumed_fraction() > 0.5, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_mode_reuses_connections() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    let summary = bench::run(&args(&pki, addr, Mode::Keepalive))
        .await
        .unwrap();
    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(summary.connections, 2, "{summary}");
    assert!(summary.ok > 2 * summary.connections, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_client_certificate_is_counted() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    for mode in [Mode::Handshake, Mode::Keepalive] {
        let mut args = args(&pki, addr, mode);
        args.cert = pki.path("rogue.pem");
        args.key = pki.path("rogue.key");
        args.duration = Duration::from_millis(400);
        let summary = bench::run(&args).await.unwrap();
        assert_eq!(summary.ok, 0, "{summary}");
        assert!(
            count(&summary, ErrorKind::TlsCertificateRejected) > 0,
            "{summary}"
        );
        assert_eq!(
            count(&summary, ErrorKind::TlsCertificateRejected),
            summary.error_count(),
            "every failure should be classified as a rejected certificate: {summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_is_counted_by_status() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::INTERNAL_SERVER_ERROR).await;
    let summary = bench::run(&args(&pki, addr, Mode::Keepalive))
        .await
        .unwrap();
    assert_eq!(summary.ok, 0, "{summary}");
    assert!(count(&summary, ErrorKind::Status(500)) > 0, "{summary}");
    assert_eq!(count(&summary, ErrorKind::Status(500)), summary.requests);
    assert_eq!(summary.to_json()["errors"]["status_500"], summary.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_count_stops_the_run() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    let mut args = args(&pki, addr, Mode::Handshake);
    args.requests = Some(7);
    args.duration = Duration::from_secs(30);
    let summary = bench::run(&args).await.unwrap();
    assert_eq!(summary.requests, 7, "{summary}");
    assert_eq!(summary.ok, 7, "{summary}");
    assert!(summary.elapsed < Duration::from_secs(5), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_trust_is_enforced_unless_insecure() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    let mut args = args(&pki, addr, Mode::Handshake);
    args.requests = Some(3);
    args.ca = Some(pki.path("rogue-ca.pem"));
    let summary = bench::run(&args).await.unwrap();
    assert_eq!(
        count(&summary, ErrorKind::TlsServerCertificate),
        3,
        "{summary}"
    );

    args.ca = None;
    args.insecure = true;
    let summary = bench::run(&args).await.unwrap();
    assert_eq!(summary.ok, 3, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_connect_errors() {
    let pki = Pki::new();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let mut args = args(&pki, closed, Mode::Handshake);
    args.requests = Some(4);
    let summary = bench::run(&args).await.unwrap();
    assert_eq!(count(&summary, ErrorKind::Connect), 4, "{summary}");
    assert!(summary.to_string().contains("connect: 4"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_exchange_group_can_be_pinned() {
    let pki = Pki::new();
    let addr = serve(&pki, StatusCode::OK).await;
    let mut args = args(&pki, addr, Mode::Handshake);
    args.requests = Some(2);
    args.kx_groups = vec!["p256".into()];
    let summary = bench::run(&args).await.unwrap();
    assert_eq!(summary.ok, 2, "{summary}");
    let negotiated = summary.negotiated.unwrap_or_default();
    assert!(negotiated.ends_with(" secp256r1"), "{negotiated}");

    args.kx_groups = vec!["x448".into()];
    let err = bench::run(&args).await.unwrap_err();
    assert!(matches!(err, bench::BenchError::KxGroup { .. }), "{err}");
}
