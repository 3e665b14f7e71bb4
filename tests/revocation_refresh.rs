//! How cached revocation answers are refreshed, against real parts (CRLs by `openssl ca`, the
//! CDP server process, `openssl ocsp`, the certgate binary): a refetched CRL older than the
//! cached one is refused as a rollback while the cached one keeps serving; OCSP answers are
//! persisted, so a restarted certgate serves them with the responder down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use certgate::pki::Issued;
use support::revocation::{
    CdpServer, CrlSpec, OcspResponder, OpensslCa, client_cert, code, explain, ocsp_response,
    site_config,
};
use support::{Env, Pki};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

async fn metrics(env: &Env) -> String {
    let admin = env.server.admin_addr.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn an_older_crl_served_on_refetch_is_refused_and_the_cached_one_keeps_serving() {
    let pki = Arc::new(Pki::new());
    let openssl = OpensslCa::new(&pki.ca);
    let served = tempfile::tempdir().unwrap();
    let cdp = CdpServer::start(served.path(), 0);
    let state = tempfile::tempdir().unwrap();
    let publish = |name: &str, spec: &CrlSpec<'_>| openssl.crl(spec, &served.path().join(name));
    let delta_url = cdp.url("delta.crl");
    let base = |number, entries| CrlSpec {
        entries,
        number,
        freshest: Some(delta_url.clone()),
        ..CrlSpec::default()
    };
    let delta = |number, entries| CrlSpec {
        entries,
        number,
        delta_of: Some(5),
        ..CrlSpec::default()
    };
    // bob is revoked on a base CRL alone, carol on the delta of another base.
    publish(
        "solo.crl",
        &CrlSpec {
            entries: &[(0xB0B, "keyCompromise")],
            number: 5,
            ..CrlSpec::default()
        },
    );
    publish("base.crl", &base(5, &[]));
    publish("delta.crl", &delta(7, &[(0xCA1, "keyCompromise")]));
    let solo = cdp.url("solo.crl");
    let url = cdp.url("base.crl");
    let alice = client_cert(&pki, "alice", 0xA11, std::slice::from_ref(&url), &[]);
    let bob = client_cert(&pki, "bob", 0xB0B, std::slice::from_ref(&solo), &[]);
    let carol = client_cert(&pki, "carol", 0xCA1, std::slice::from_ref(&url), &[]);
    // freshness_time makes every handshake refetch (the CRLs were issued a minute ago).
    let config = site_config(state.path(), "freshness_time = \"1s\"").replace(
        "backend_response_timeout = \"2s\"",
        "backend_response_timeout = \"2s\"\nadmin_listen = \"127.0.0.1:0\"",
    );
    let env = Env::start_with(Arc::clone(&pki), &config).await;
    assert_eq!(code(&env, &alice).await, "200");
    assert_eq!(code(&env, &bob).await, "403.13", "revoked on base 5");
    assert_eq!(code(&env, &carol).await, "403.13", "revoked on delta 7");

    // Replays of older CRLs, from before bob's and carol's revocations.
    publish(
        "solo.crl",
        &CrlSpec {
            number: 3,
            ..CrlSpec::default()
        },
    );
    publish("delta.crl", &delta(6, &[]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(code(&env, &bob).await, "403.13", "base rollback refused");
    assert_eq!(code(&env, &carol).await, "403.13", "delta rollback refused");
    assert_eq!(code(&env, &alice).await, "200", "the cached CRLs serve");
    let text = metrics(&env).await;
    let count = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        count("certgate_revocation_crl_rollbacks_refused_total") >= 2.0,
        "{text}"
    );
    assert!(
        count("certgate_revocation_fetch_failures_total") >= 2.0,
        "{text}"
    );

    // Newer CRLs are taken: the refetches did happen above, refused only for their age.
    publish(
        "solo.crl",
        &CrlSpec {
            number: 8,
            ..CrlSpec::default()
        },
    );
    publish("delta.crl", &delta(9, &[]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        code(&env, &bob).await,
        "200",
        "newer base 8 no longer lists bob"
    );
    assert_eq!(code(&env, &carol).await, "200", "nor delta 9 carol");
}

/// The certgate binary serving `config` (`{backend}` already replaced), and its https address.
async fn start_binary(config: &std::path::Path) -> (tokio::process::Child, std::net::SocketAddr) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["--log-format", "json", "run", "-c"])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening (https)") {
                let addr = line.split("\"addr\":\"").nth(1).unwrap();
                return addr.split('"').next().unwrap().parse().unwrap();
            }
        }
        panic!("certgate exited before listening");
    })
    .await
    .unwrap();
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

#[tokio::test]
async fn a_restart_with_the_ocsp_responder_down_serves_the_persisted_answers() {
    let pki = Arc::new(Pki::new());
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let ca = Issued {
        cert_pem: pki.ca.cert_pem.clone(),
        key_pem: pki.ca.key_pem(),
        der: pki.ca.der.clone(),
    };
    let entries = [(0xA11, "valid"), (0xB0B, "keyCompromise")];
    let responder = OcspResponder::start(&pki.ca, &entries, &ca, 60);
    let url = responder.url();
    let alice = client_cert(&pki, "alice", 0xA11, &[], std::slice::from_ref(&url));
    let bob = client_cert(&pki, "bob", 0xB0B, &[], std::slice::from_ref(&url));
    let backend_stop = tokio_util::sync::CancellationToken::new();
    let backend = certgate::echo::spawn("127.0.0.1:0".parse().unwrap(), backend_stop.clone())
        .await
        .unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        site_config(&state, "").replace("{backend}", &backend.to_string()),
    )
    .unwrap();
    let get = async |addr, who: &Issued| {
        support::Client::new(&pki.ca.cert_pem, Some(who))
            .get(addr, "/")
            .await
            .code()
    };

    let (mut first, addr) = start_binary(&config).await;
    assert_eq!(get(addr, &alice).await, "200");
    assert_eq!(get(addr, &bob).await, "403.13");
    first.kill().await.unwrap();
    drop(responder);

    let (mut second, addr) = start_binary(&config).await;
    assert_eq!(get(addr, &alice).await, "200", "persisted good answer");
    assert_eq!(get(addr, &bob).await, "403.13", "persisted revoked answer");
    second.kill().await.unwrap();

    // explain reads them back too, and says so.
    let runtime =
        certgate::config::Runtime::load(&config, &certgate::tls::server::ResumptionKeys::default())
            .unwrap();
    let target = certgate::explain::Target {
        host: Some("localhost"),
        site: None,
        path: "/",
    };
    let e = certgate::explain::explain_with_revocation(
        &runtime,
        std::slice::from_ref(&alice.der),
        &target,
    )
    .await
    .unwrap();
    let detail = e.chain.detail.unwrap_or_default();
    assert_eq!(e.verdict.code, "200", "{detail}");
    assert!(
        detail.contains(&format!(
            "not revoked (OCSP {url}, answer read from the state directory"
        )),
        "{detail}"
    );

    // A tampered answer in the state directory is verified again and not used.
    for file in std::fs::read_dir(&state).unwrap() {
        let path = file.unwrap().path();
        let mut der = std::fs::read(&path).unwrap();
        // Inside the signed data (the responder ID), before the certificates.
        der[60] ^= 1;
        std::fs::write(&path, der).unwrap();
    }
    let (mut third, addr) = start_binary(&config).await;
    assert_eq!(get(addr, &alice).await, "403.13", "tampered: not used");
    third.kill().await.unwrap();
    backend_stop.cancel();
}

/// [`site_config`] with an admin listener (for `/metrics`) and `[revocation]` `extra` lines.
fn config_with(state: &std::path::Path, revocation: &str, site: &str) -> String {
    site_config(state, site)
        .replace(
            "backend_response_timeout = \"2s\"",
            "backend_response_timeout = \"2s\"\nadmin_listen = \"127.0.0.1:0\"",
        )
        .replace(
            "max_crl_bytes = 1048576",
            &format!("max_crl_bytes = 1048576\n{revocation}"),
        )
}

/// Files in the state directory.
fn state_files(state: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read_dir(state)
        .map(|d| {
            d.filter_map(|f| std::fs::read(f.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to `secs` for `cond`.
async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 10 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond()
}

#[tokio::test]
async fn crls_and_ocsp_answers_are_refreshed_in_the_background_without_handshakes() {
    let pki = Arc::new(Pki::new());
    let openssl = OpensslCa::new(&pki.ca);
    let served = tempfile::tempdir().unwrap();
    let mut cdp = CdpServer::start(served.path(), 0);
    let state = tempfile::tempdir().unwrap();
    let ca = Issued {
        cert_pem: pki.ca.cert_pem.clone(),
        key_pem: pki.ca.key_pem(),
        der: pki.ca.der.clone(),
    };
    // A CRL with a short life (in its last minute: due for refresh) and an OCSP answer valid
    // ten more seconds (issued 50 s ago for a minute: due in four).
    openssl.crl(
        &CrlSpec {
            number: 1,
            next_update: 40,
            ..CrlSpec::default()
        },
        &served.path().join("ca.crl"),
    );
    let good = ocsp_response(&pki.ca, &[(0xB0B, "valid")], &ca, 0xB0B, 1, Some("-50s"));
    std::fs::write(served.path().join("ocsp"), &good).unwrap();
    let alice = client_cert(&pki, "alice", 0xA11, &[cdp.url("ca.crl")], &[]);
    let bob = client_cert(&pki, "bob", 0xB0B, &[], &[cdp.url("ocsp")]);
    let env = Env::start_with(Arc::clone(&pki), &config_with(state.path(), "", "")).await;
    assert_eq!(code(&env, &alice).await, "200");
    assert_eq!(code(&env, &bob).await, "200");

    // The CA revokes both; no handshake from now on until the proxy has the news.
    let revoked_crl = served.path().join("next.crl");
    openssl.crl(
        &CrlSpec {
            entries: &[(0xA11, "keyCompromise")],
            number: 2,
            next_update: 600,
            ..CrlSpec::default()
        },
        &revoked_crl,
    );
    let revoked_crl = std::fs::read(&revoked_crl).unwrap();
    std::fs::write(served.path().join("ca.crl"), &revoked_crl).unwrap();
    let revoked = ocsp_response(&pki.ca, &[(0xB0B, "keyCompromise")], &ca, 0xB0B, 60, None);
    std::fs::write(served.path().join("ocsp"), &revoked).unwrap();
    let fetched = eventually(20, || {
        let files = state_files(state.path());
        files.contains(&revoked_crl) && files.contains(&revoked)
    })
    .await;
    let files = state_files(state.path());
    assert!(
        fetched,
        "the sweeper did not fetch the new CRL ({}) or the new answer ({})",
        files.contains(&revoked_crl),
        files.contains(&revoked)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The distribution point and responder go away: the proxy already knows.
    cdp.stop();
    assert_eq!(code(&env, &alice).await, "403.13", "revoked on the new CRL");
    assert_eq!(
        code(&env, &bob).await,
        "403.13",
        "revoked by the new answer"
    );
    let (_, detail) = explain(&env, &alice).await;
    assert!(detail.contains("revoked (CRL"), "{detail}");
    let (_, detail) = explain(&env, &bob).await;
    assert!(detail.contains("revoked (OCSP"), "{detail}");
    let text = metrics(&env).await;
    for kind in ["crl", "ocsp"] {
        let line = format!(
            "certgate_revocation_background_refreshes_total{{kind=\"{kind}\",outcome=\"ok\"}}"
        );
        assert!(text.lines().any(|l| l.starts_with(&line)), "{line}: {text}");
    }
}

#[tokio::test]
async fn entries_no_handshake_uses_are_evicted_and_no_longer_fetched() {
    let pki = Arc::new(Pki::new());
    let openssl = OpensslCa::new(&pki.ca);
    let served = tempfile::tempdir().unwrap();
    let cdp = CdpServer::start(served.path(), 0);
    let state = tempfile::tempdir().unwrap();
    let publish = |entries| {
        openssl.crl(
            &CrlSpec {
                entries,
                ..CrlSpec::default()
            },
            &served.path().join("ca.crl"),
        );
    };
    publish(&[]);
    let alice = client_cert(&pki, "alice", 0xA11, &[cdp.url("ca.crl")], &[]);
    let config = config_with(state.path(), "evict_unused_after = \"2s\"", "");
    let env = Env::start_with(Arc::clone(&pki), &config).await;
    assert_eq!(code(&env, &alice).await, "200");
    assert_eq!(state_files(state.path()).len(), 1, "the CRL is persisted");

    // Unused for 2 s: dropped from the cache, its state file deleted, and not fetched again.
    let gone = eventually(10, || state_files(state.path()).is_empty()).await;
    assert!(gone, "the unused CRL was not evicted");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        state_files(state.path()).is_empty(),
        "fetched after eviction"
    );
    let text = metrics(&env).await;
    assert!(
        text.lines().any(|l| l.starts_with(
            "certgate_revocation_cache_evictions_total{kind=\"crl\",reason=\"unused\"}"
        )),
        "{text}"
    );

    // The next handshake fetches it anew (the evicted 7-day CRL would have said "good").
    publish(&[(0xA11, "keyCompromise")]);
    assert_eq!(code(&env, &alice).await, "403.13");
}

#[tokio::test]
async fn an_older_ocsp_answer_served_on_refetch_is_refused_and_the_cached_one_keeps_serving() {
    let pki = Arc::new(Pki::new());
    let served = tempfile::tempdir().unwrap();
    let cdp = CdpServer::start(served.path(), 0);
    let state = tempfile::tempdir().unwrap();
    let ca = Issued {
        cert_pem: pki.ca.cert_pem.clone(),
        key_pem: pki.ca.key_pem(),
        der: pki.ca.der.clone(),
    };
    // "revoked", issued 100 s ago for two minutes: due for a refresh in 8 s, valid 20 s more.
    let revoked = ocsp_response(
        &pki.ca,
        &[(0xB0B, "keyCompromise")],
        &ca,
        0xB0B,
        2,
        Some("-100s"),
    );
    std::fs::write(served.path().join("ocsp"), &revoked).unwrap();
    let bob = client_cert(&pki, "bob", 0xB0B, &[], &[cdp.url("ocsp")]);
    let env = Env::start_with(Arc::clone(&pki), &config_with(state.path(), "", "")).await;
    assert_eq!(code(&env, &bob).await, "403.13");

    // The responder (or someone in the middle) now replays a "good" answer from before the
    // revocation, still within its validity.
    let replay = ocsp_response(&pki.ca, &[(0xB0B, "valid")], &ca, 0xB0B, 60, Some("-3m"));
    std::fs::write(served.path().join("ocsp"), &replay).unwrap();
    let mut refused = false;
    for _ in 0..150 {
        let text = metrics(&env).await;
        if text
            .lines()
            .any(|l| l.starts_with("certgate_revocation_ocsp_rollbacks_refused_total"))
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the older answer was not refused");
    assert_eq!(
        code(&env, &bob).await,
        "403.13",
        "the replay did not replace"
    );
    let (_, detail) = explain(&env, &bob).await;
    assert!(detail.contains("revoked (OCSP"), "{detail}");
}
