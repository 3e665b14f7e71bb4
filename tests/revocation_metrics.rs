//! The revocation metrics on the admin `/metrics` endpoint, after real revocation checks: a CRL
//! from a real distribution point process, a distribution point that is down, and `openssl
//! ocsp` answering good and revoked. Labels stay bounded: the configured CA's name and fixed
//! kinds and outcomes, never a client value or a URL. (Own test binary: the metrics recorder
//! is process-wide.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use certgate::pki::Issued;

use support::revocation::{
    CdpServer, CrlSpec, OcspResponder, OpensslCa, client_cert as cert, site_config,
};
use support::{Env, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the series `name` whose labels contain every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .unwrap_or_else(|| panic!("no {name} with {labels:?} in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn crl_age_next_update_fetch_failures_and_ocsp_outcomes_per_issuer() {
    let pki = Arc::new(Pki::new());
    let served = tempfile::tempdir().unwrap();
    let cdp = CdpServer::start(served.path(), 0);
    OpensslCa::new(&pki.ca).crl(
        &CrlSpec {
            this_update: -120,
            next_update: 86_400,
            ..CrlSpec::default()
        },
        &served.path().join("ca.crl"),
    );
    let ca_signer = Issued {
        cert_pem: pki.ca.cert_pem.clone(),
        key_pem: pki.ca.key_pem(),
        der: pki.ca.der.clone(),
    };
    let responder = OcspResponder::start(
        &pki.ca,
        &[(0xA11, "valid"), (0xB0B, "keyCompromise")],
        &ca_signer,
        60,
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = tempfile::tempdir().unwrap();
    // The shared test site, with an admin listener to scrape.
    let config = site_config(state.path(), "").replacen(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"",
        1,
    );
    let env = Env::start_with(Arc::clone(&pki), &config).await;

    let crl_good = cert(&pki, "carla", 0xC01, &[cdp.url("ca.crl")], &[]);
    let down = cert(
        &pki,
        "dora",
        0xD01,
        &[format!("http://127.0.0.1:{dead}/ca.crl")],
        &[],
    );
    let ocsp_good = cert(&pki, "olga", 0xA11, &[], &[responder.url()]);
    let ocsp_revoked = cert(&pki, "oscar", 0xB0B, &[], &[responder.url()]);
    let code = |who: &Issued| {
        let client = env.client(Some(who));
        let addr = env.addr();
        async move { client.get(addr, "/").await.code() }
    };
    assert_eq!(code(&crl_good).await, "200");
    assert_eq!(code(&down).await, "403.13");
    assert_eq!(code(&ocsp_good).await, "200");
    assert_eq!(code(&ocsp_revoked).await, "403.13");

    let text = scrape(env.server.admin_addr.unwrap()).await;
    let ca = "ca=\"Example Test CA\"";
    let age = value(&text, "certgate_revocation_crl_age_seconds", &[ca]);
    assert!((100.0..3600.0).contains(&age), "CRL age {age}");
    let next = value(
        &text,
        "certgate_revocation_crl_next_update_timestamp_seconds",
        &[ca],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((next - now - 86_400.0).abs() < 600.0, "next update {next}");
    let failures = value(
        &text,
        "certgate_revocation_fetch_failures_total",
        &[ca, "kind=\"crl\""],
    );
    assert!(failures >= 1.0, "{failures}");
    for outcome in ["good", "revoked"] {
        let n = value(
            &text,
            "certgate_revocation_ocsp_responses_total",
            &[ca, &format!("outcome=\"{outcome}\"")],
        );
        assert!(n >= 1.0, "OCSP {outcome}: {n}");
    }
    for outcome in ["good", "revoked", "unknown"] {
        let n = value(
            &text,
            "certgate_revocation_checks_total",
            &[&format!("outcome=\"{outcome}\"")],
        );
        assert!(n >= 1.0, "checks {outcome}: {n}");
    }

    // Bounded labels: only the configured CA's name and fixed words.
    for line in text
        .lines()
        .filter(|l| l.starts_with("certgate_revocation_"))
    {
        let labels = line
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map_or("", |(l, _)| l);
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap();
            match key {
                "ca" => assert_eq!(value, "\"Example Test CA\"", "{line}"),
                "kind" | "outcome" => assert!(
                    value
                        .chars()
                        .all(|c| c == '"' || c.is_ascii_lowercase() || c == '_'),
                    "{line}"
                ),
                other => panic!("unexpected label {other} in {line}"),
            }
        }
        for leak in [
            "carla",
            "dora",
            "olga",
            "oscar",
            "127.0.0.1",
            "http",
            "ca.crl",
        ] {
            assert!(!line.contains(leak), "metrics leak `{leak}`: {line}");
        }
    }
}
