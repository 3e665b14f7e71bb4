//! `[server] cipher_suites`: the server's order wins over the client's (as in SChannel), by
//! default AES-128-GCM first; a configured order is used as written, suites not listed are never
//! negotiated, TLS 1.2 is offered only with a TLS 1.2 suite listed, a reload changes the order
//! for new connections, and a bad list is an error naming the entry. Clients: rustls with chosen
//! suite lists, and OpenSSL's `s_client` (curl's library) with its own default order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use rustls::crypto::aws_lc_rs::cipher_suite as cs;
use rustls::{CipherSuite, SupportedCipherSuite, SupportedProtocolVersion};
use support::{BASIC, Env, Pki, send_on};

/// A client offering `suites` in this order, presenting alice's certificate.
fn client(
    pki: &Pki,
    suites: &[SupportedCipherSuite],
    versions: &[&'static SupportedProtocolVersion],
) -> support::Client {
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: suites.to_vec(),
        ..(*certgate::tls::provider()).clone()
    };
    support::Client::with_provider(
        &pki.ca.cert_pem,
        Some(&pki.alice),
        versions,
        Arc::new(provider),
    )
    .with_alpn(&[b"http/1.1"])
}

/// The suite negotiated, after one request on the connection went through as alice.
async fn negotiate(client: &support::Client, addr: SocketAddr) -> std::io::Result<CipherSuite> {
    let tls = client.connect(addr, "localhost").await?;
    let suite = tls.get_ref().1.negotiated_cipher_suite().unwrap().suite();
    let req = Request::get("/")
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap();
    let resp = send_on(tls, req).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.remote_user().as_deref(), Some("EXAMPLE\\alice"));
    Ok(suite)
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn with_suites(suites: &str) -> String {
    BASIC.replacen(
        "backend_response_timeout = \"1s\"\n",
        &format!("backend_response_timeout = \"1s\"\ncipher_suites = [{suites}]\n"),
        1,
    )
}

#[tokio::test]
async fn by_default_aes_128_wins_over_a_client_that_prefers_aes_256() {
    let env = Env::start(BASIC).await;
    let prefers_256 = client(
        &env.pki,
        &[
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        TLS13,
    );
    assert_eq!(
        negotiate(&prefers_256, env.addr()).await.unwrap(),
        CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    // A client that has only ChaCha20 (no AES hardware) still gets it.
    let chacha = client(&env.pki, &[cs::TLS13_CHACHA20_POLY1305_SHA256], TLS13);
    assert_eq!(
        negotiate(&chacha, env.addr()).await.unwrap(),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
    // TLS 1.2 stays on by default, with the same preference.
    let tls12 = client(
        &env.pki,
        &[
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ],
        TLS12,
    );
    assert_eq!(
        negotiate(&tls12, env.addr()).await.unwrap(),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
}

#[tokio::test]
async fn a_configured_order_is_used_as_written_and_nothing_unlisted_is_negotiated() {
    let config = with_suites(r#""TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256""#);
    let env = Env::start(&config).await;
    let prefers_128 = client(
        &env.pki,
        &[cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384],
        TLS13,
    );
    assert_eq!(
        negotiate(&prefers_128, env.addr()).await.unwrap(),
        CipherSuite::TLS13_AES_256_GCM_SHA384
    );
    let chacha = client(&env.pki, &[cs::TLS13_CHACHA20_POLY1305_SHA256], TLS13);
    assert!(negotiate(&chacha, env.addr()).await.is_err());
    // No TLS 1.2 suite listed: TLS 1.2 is not offered at all.
    let tls12 = client(
        &env.pki,
        &[cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
        TLS12,
    );
    assert!(negotiate(&tls12, env.addr()).await.is_err());
}

#[tokio::test]
async fn a_reload_changes_the_order_for_new_connections() {
    let env = Env::start(BASIC).await;
    let both = client(
        &env.pki,
        &[cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384],
        TLS13,
    );
    assert_eq!(
        negotiate(&both, env.addr()).await.unwrap(),
        CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    env.reload(&with_suites(
        r#""TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256""#,
    ));
    assert_eq!(
        negotiate(&both, env.addr()).await.unwrap(),
        CipherSuite::TLS13_AES_256_GCM_SHA384
    );
}

/// The suite `openssl s_client` (OpenSSL's default order: AES-256 first) ends up with.
fn openssl_suite(dir: &std::path::Path, addr: SocketAddr) -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .args(["-tls1_3", "-CAfile", "ca.crt", "-cert", "alice.crt", "-key"])
        .arg(dir.join("alice-key.pem"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.split_once("Cipher is ").map(|(_, suite)| suite.trim()))
        .unwrap_or_else(|| {
            panic!(
                "no cipher in s_client output:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

#[tokio::test]
async fn openssl_clients_get_the_servers_choice() {
    let env = Env::start(BASIC).await;
    std::fs::write(env.dir.path().join("alice-key.pem"), &env.pki.alice.key_pem).unwrap();
    let dir = env.dir.path().to_owned();
    let addr = env.addr();
    let suite = tokio::task::spawn_blocking(move || openssl_suite(&dir, addr))
        .await
        .unwrap();
    assert_eq!(suite, "TLS_AES_128_GCM_SHA256");

    env.reload(&with_suites(r#""TLS_AES_256_GCM_SHA384""#));
    let dir = env.dir.path().to_owned();
    let suite = tokio::task::spawn_blocking(move || openssl_suite(&dir, addr))
        .await
        .unwrap();
    assert_eq!(suite, "TLS_AES_256_GCM_SHA384");
}
