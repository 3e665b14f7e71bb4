//! Operating certgate: metrics, health, reload without losing requests, file watching,
//! limits, and graceful shutdown, on real sockets and with the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use support::{BASIC, Env, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn with_server(extra: &str) -> String {
    BASIC.replace(
        "backend_response_timeout = \"1s\"",
        &format!("backend_response_timeout = \"1s\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}"),
    )
}

fn named(config: &str, site: &str) -> String {
    config.replace("Default Web Site", site)
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let env = Env::start(&named(&with_server(""), "Metrics Site")).await;
    let admin = env.server.admin_addr.unwrap();
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    assert_eq!(http_get(admin, "/readyz").await.0, 200);

    let alice = env.client(Some(&env.pki.alice));
    assert_eq!(
        alice.get(env.addr(), "/hello/secret-path").await.status,
        200
    );
    assert_eq!(env.client(None).get(env.addr(), "/x").await.status, 403);
    assert_eq!(
        env.client(Some(&env.pki.expired))
            .get(env.addr(), "/x")
            .await
            .status,
        403
    );

    let (status, text) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    let has = |needle: &str| {
        assert!(
            text.lines()
                .any(|l| l.contains(needle) && l.contains("Metrics Site")),
            "no `{needle}` in:\n{text}"
        )
    };
    has("certgate_requests_total{site=\"Metrics Site\",code=\"200.0\"}");
    has("code=\"403.7\"");
    has("code=\"403.17\"");
    has("certgate_tls_handshakes_total");
    has("outcome=\"valid\"");
    has("outcome=\"absent\"");
    has("kind=\"one_to_one\"");
    has("certgate_backend_response_duration_seconds_bucket");
    assert!(text.contains("certgate_active_connections"), "{text}");
    // Per-connection counters (pre-registered handles) count each connection once.
    let value = |parts: &[&str]| -> f64 {
        let line = text
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)) && l.contains("Metrics Site"))
            .unwrap_or_else(|| panic!("no line with {parts:?} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let handshakes = [
        "certgate_tls_handshakes_total{",
        "outcome=\"ok\"",
        "version=\"TLSv1.3\"",
        "kind=\"full\"",
    ];
    assert_eq!(value(&handshakes), 3.0);
    for (outcome, n) in [("valid", 1.0), ("absent", 1.0), ("403.17", 1.0)] {
        let want = format!("outcome=\"{outcome}\"");
        assert_eq!(
            value(&["certgate_client_certificates_total{", &want]),
            n,
            "{outcome}"
        );
    }
    let expiry = text
        .lines()
        .find(|l| {
            l.starts_with("certgate_certificate_expiry_seconds")
                && l.contains("Metrics Site")
                && l.contains("kind=\"server\"")
        })
        .unwrap_or_else(|| panic!("no server expiry gauge:\n{text}"));
    let seconds: f64 = expiry.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds > 300.0 * 86400.0, "{expiry}");
    assert!(text.contains("kind=\"client_ca\""), "{text}");
    // Bounded labels only: no users, subjects or paths.
    for leak in ["alice", "CN=", "secret-path", "127.0.0.1"] {
        assert!(!text.contains(leak), "metrics leak `{leak}`:\n{text}");
    }
}

#[tokio::test]
async fn reload_applies_valid_config_and_keeps_serving_on_a_bad_one() {
    let env = Env::start(&named(&with_server(""), "Reload Site")).await;
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(bob.get(env.addr(), "/").await.status, 401);

    // Map bob too: applied.
    let with_bob = named(&with_server(""), "Reload Site").replace(
        "[[site.location]]",
        "[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
         user_name = \"EXAMPLE\\\\bob\"\ncertificate_file = \"bob.crt\"\n\n[[site.location]]",
    );
    std::fs::write(
        env.config_path(),
        with_bob.replace("{backend}", &env.backend.to_string()),
    )
    .unwrap();
    env.server.reload(&env.config_path()).unwrap();
    let resp = bob.get(env.addr(), "/").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "EXAMPLE\\bob");

    // A broken file is rejected with its errors; the last good config keeps serving.
    std::fs::write(env.config_path(), "[server]\nlisten = 42\n").unwrap();
    let errors = env.server.reload(&env.config_path()).unwrap_err();
    assert!(errors.to_string().contains("server.listen"), "{errors}");
    assert_eq!(bob.get(env.addr(), "/").await.status, 200);
    let (_, text) = http_get(env.server.admin_addr.unwrap(), "/metrics").await;
    assert!(
        text.contains("certgate_config_reloads_total{result=\"failed\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn connections_keep_the_config_they_started_with() {
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let tls = alice.connect(env.addr(), "localhost").await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = || {
        Request::get("/")
            .header("host", "localhost")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap()
    };
    assert_eq!(sender.send_request(req()).await.unwrap().status(), 200);

    // Unmap alice. The open connection still runs on the old config; a new one does not.
    env.reload(&BASIC.replace(
        "enabled = true\n\n[[site.iis",
        "enabled = false\n\n[[site.iis",
    ));
    assert_eq!(alice.get(env.addr(), "/").await.status, 401);
    assert_eq!(sender.send_request(req()).await.unwrap().status(), 200);
}

#[tokio::test]
async fn reloads_under_continuous_load_lose_no_request() {
    let env = Arc::new(Env::start(BASIC).await);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..6 {
        let (env, ok, failed, stop) = (env.clone(), ok.clone(), failed.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let alpn: &[u8] = if i % 2 == 0 { b"h2" } else { b"http/1.1" };
            let client = env.client(Some(&env.pki.alice)).with_alpn(&[alpn]);
            while !stop.load(Ordering::Relaxed) {
                let req = Request::get("/load")
                    .header("host", "localhost")
                    .body(Bytes::new())
                    .unwrap();
                match client.send(env.addr(), "localhost", req).await {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    // Count-based, so a slow machine only makes it slower: each of the 20 reloads waits for
    // three more requests to complete, so requests run across every reload. The bound only
    // catches a load that stopped making progress.
    const RELOADS: u64 = 20;
    const PER_RELOAD: u64 = 3;
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = || ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    for i in 0..RELOADS {
        while done() < (i + 1) * PER_RELOAD {
            assert!(
                Instant::now() < deadline,
                "load stalled at {} requests",
                done()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Alternate two valid configs that both map alice.
        let config = if i % 2 == 0 {
            BASIC.replace(
                "backend_response_timeout = \"1s\"",
                "backend_response_timeout = \"2s\"",
            )
        } else {
            BASIC.to_owned()
        };
        env.reload(&config);
    }
    while done() < (RELOADS + 1) * PER_RELOAD {
        assert!(
            Instant::now() < deadline,
            "load stalled at {} requests",
            done()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests lost");
    assert!(ok.load(Ordering::Relaxed) >= (RELOADS + 1) * PER_RELOAD);
}

#[tokio::test]
async fn watched_files_trigger_a_reload() {
    let config = with_server("watch = true\nwatch_interval = \"100ms\"");
    let env = Arc::new(Env::start(&config).await);
    let watcher = {
        let env = env.clone();
        tokio::spawn(async move { env.server.watch(env.config_path()).await })
    };
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(bob.get(env.addr(), "/").await.status, 401);
    // Replace the mapped certificate file: bob's certificate is now the mapped one.
    let tmp = env.dir.path().join("alice.crt.new");
    std::fs::write(&tmp, &env.pki.bob.cert_pem).unwrap();
    std::fs::rename(&tmp, env.dir.path().join("alice.crt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if bob.get(env.addr(), "/").await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the change was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();
}

#[tokio::test]
async fn handshake_and_header_timeouts_close_stalled_clients() {
    let env = Env::start(&with_server(
        "handshake_timeout = \"300ms\"\nheader_read_timeout = \"300ms\"",
    ))
    .await;
    // No ClientHello at all.
    let mut tcp = tokio::net::TcpStream::connect(env.addr()).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(2));

    // Slowloris: TLS up, headers never finished.
    let client = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let mut tls = client.connect(env.addr(), "localhost").await.unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut out))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not closed in time"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let env = Env::start(&with_server(
        "idle_timeout = \"300ms\"\nheader_read_timeout = \"30s\"",
    ))
    .await;
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let alice = env.client(Some(&env.pki.alice)).with_alpn(&[alpn]);
        // A connection that never sends a request: header_read_timeout (30s) would keep it;
        // idle_timeout closes it.
        let mut raw = alice.connect(env.addr(), "localhost").await.unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        let result = tokio::time::timeout(Duration::from_secs(3), raw.read_to_end(&mut out)).await;
        assert!(result.is_ok(), "idle connection not closed ({alpn:?})");
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "closed too early"
        );
        // A connection that is busy is not idle: a request longer than idle_timeout completes.
        let resp = alice
            .send(
                env.addr(),
                "localhost",
                Request::get("/delay/700")
                    .header("host", "localhost")
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
    }
}

#[tokio::test]
async fn oversized_headers_answer_431() {
    let env = Env::start(&with_server("max_header_bytes = 16384")).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let big = "a".repeat(20_000);
    let raw = support::raw_http1(
        &alice,
        env.addr(),
        "localhost",
        &format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 431"),
        "{}",
        &raw[..raw.len().min(200)]
    );
    // Within the limit: fine.
    let ok = "a".repeat(8_000);
    let raw = support::raw_http1(
        &alice,
        env.addr(),
        "localhost",
        &format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {ok}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 200"),
        "{}",
        &raw[..raw.len().min(200)]
    );
}

#[tokio::test]
async fn connection_limit_makes_extra_clients_wait() {
    let env = Env::start(&with_server("max_connections = 1")).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let first = alice.connect(env.addr(), "localhost").await.unwrap();
    // The second handshake cannot complete while the first connection holds the only slot.
    let second = tokio::time::timeout(
        Duration::from_millis(700),
        alice.connect(env.addr(), "localhost"),
    )
    .await;
    assert!(
        second.is_err(),
        "second connection was served beyond max_connections"
    );
    drop(first);
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        alice.send(
            env.addr(),
            "localhost",
            Request::get("/")
                .header("host", "localhost")
                .body(Bytes::new())
                .unwrap(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn backend_connect_timeout_answers_502() {
    // A listener that never accepts, with its backlog filled: new connects hang in SYN.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let stuck = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(stuck),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let config = with_server("backend_connect_timeout = \"300ms\"")
        .replace("http://{backend}", &format!("http://{stuck}"));
    let env = Env::start(&config).await;
    let started = Instant::now();
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), "/").await;
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_honours_its_deadline() {
    let pki = Arc::new(Pki::new());
    let env = Env::start_with(
        pki.clone(),
        &with_server("backend_response_timeout = \"10s\"")
            .replace("backend_response_timeout = \"1s\"\n", ""),
    )
    .await;
    let addr = env.addr();
    let alice = env.client(Some(&env.pki.alice));
    let in_flight = tokio::spawn({
        let alice = alice.clone();
        async move { alice.get(addr, "/delay/700").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Env { server, .. } = env;
    let started = Instant::now();
    server.shutdown(Duration::from_secs(5)).await;
    assert_eq!(in_flight.await.unwrap().status, 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );

    // A request longer than the deadline does not hold shutdown hostage.
    let env = Env::start_with(
        pki,
        &with_server("backend_response_timeout = \"10s\"")
            .replace("backend_response_timeout = \"1s\"\n", ""),
    )
    .await;
    let addr = env.addr();
    let alice = env.client(Some(&env.pki.alice));
    let _slow = tokio::spawn(async move {
        alice
            .send(
                addr,
                "localhost",
                Request::get("/delay/5000")
                    .header("host", "localhost")
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Env { server, .. } = env;
    let started = Instant::now();
    server.shutdown(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// The binary: SIGHUP reloads (a bad file keeps the old config), SIGTERM drains and exits 0.
#[tokio::test]
async fn binary_reloads_on_sighup_and_drains_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    let backend_stop = tokio_util::sync::CancellationToken::new();
    let backend = certgate::echo::spawn("127.0.0.1:0".parse().unwrap(), backend_stop.clone())
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = BASIC
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace(
            "backend_response_timeout = \"1s\"",
            "backend_response_timeout = \"10s\"",
        )
        .replace("{backend}", &backend.to_string());
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, &config).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["--log-format", "json", "run", "-c"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let wait_for = async |lines: &mut tokio::io::Lines<_>, needle: &str| {
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let line: String = line;
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("certgate exited before logging `{needle}`");
        })
        .await
        .unwrap()
    };
    wait_for(&mut lines, "listening (https)").await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let bob = support::Client::new(&pki.ca.cert_pem, Some(&pki.bob));
    assert_eq!(bob.get(addr, "/").await.status, 401);
    let pid = child.id().unwrap().to_string();

    std::fs::write(&path, config.replace("alice.crt", "bob.crt")).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    wait_for(&mut lines, "configuration reloaded").await;
    assert_eq!(bob.get(addr, "/").await.status, 200);

    std::fs::write(&path, "not toml [").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    wait_for(&mut lines, "configuration reload rejected").await;
    assert_eq!(bob.get(addr, "/").await.status, 200);

    // SIGTERM with a request in flight: it completes, then the process exits 0.
    let slow = tokio::spawn({
        let bob = bob.clone();
        async move { bob.get(addr, "/delay/800").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert_eq!(slow.await.unwrap().status, 200);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    backend_stop.cancel();
}
