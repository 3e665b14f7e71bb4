//! Keep-alive connections: the wait between requests is bounded by `idle_timeout`, a request
//! head that has started arriving by `header_read_timeout`; HTTP/1.1 and HTTP/2, real TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{BASIC, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HEADER_READ: Duration = Duration::from_millis(300);
const IDLE: Duration = Duration::from_millis(1500);

async fn env() -> Env {
    Env::start(&BASIC.replace(
        "backend_response_timeout = \"1s\"",
        "backend_response_timeout = \"1s\"\nheader_read_timeout = \"300ms\"\nidle_timeout = \"1500ms\"",
    ))
    .await
}

fn get(h2: bool) -> Request<Full<Bytes>> {
    let (uri, version) = if h2 {
        ("https://localhost/", Version::HTTP_2)
    } else {
        ("/", Version::HTTP_11)
    };
    let mut req = Request::get(uri)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    *req.version_mut() = version;
    if h2 {
        req.headers_mut().remove("host");
    }
    req
}

#[tokio::test]
async fn idle_keep_alive_outlives_header_read_timeout_and_ends_at_idle_timeout() {
    let env = env().await;
    for (alpn, h2) in [(&b"http/1.1"[..], false), (&b"h2"[..], true)] {
        let client = env.client(Some(&env.pki.alice)).with_alpn(&[alpn]);
        let tls = client.connect(env.addr(), "localhost").await.unwrap();
        let io = TokioIo::new(tls);
        macro_rules! exchange {
            ($sender:ident, $conn:ident) => {{
                let first = $sender.send_request(get(h2)).await.unwrap();
                assert_eq!(first.status(), 200, "{alpn:?}");
                first.into_body().collect().await.unwrap();
                // Idle for longer than header_read_timeout: the connection is still there.
                tokio::time::sleep(HEADER_READ * 3).await;
                $sender.ready().await.expect("connection closed while idle");
                let second = $sender.send_request(get(h2)).await.unwrap();
                assert_eq!(second.status(), 200, "second request ({alpn:?})");
                second.into_body().collect().await.unwrap();
                // Then idle for good: closed after idle_timeout, not before.
                let idle_from = Instant::now();
                let closed = tokio::time::timeout(IDLE * 3, $conn).await;
                assert!(closed.is_ok(), "idle connection not closed ({alpn:?})");
                let waited = idle_from.elapsed();
                assert!(
                    waited >= IDLE - Duration::from_millis(200),
                    "closed after {waited:?}, before idle_timeout ({alpn:?})"
                );
            }};
        }
        if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            let conn = tokio::spawn(conn);
            exchange!(sender, conn);
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            let conn = tokio::spawn(conn);
            exchange!(sender, conn);
        }
    }
}

/// Reads one response without a body (`/status/204`) from a raw stream.
async fn read_head(tls: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the response");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_started_head_on_a_kept_alive_connection_is_cut_at_header_read_timeout() {
    let env = env().await;
    let client = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let mut tls = client.connect(env.addr(), "localhost").await.unwrap();
    let request = b"GET /status/204 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    tls.write_all(request).await.unwrap();
    assert!(read_head(&mut tls).await.starts_with("HTTP/1.1 204"));
    // Idle past header_read_timeout, then a second request on the same connection.
    tokio::time::sleep(HEADER_READ * 2).await;
    tls.write_all(request).await.unwrap();
    assert!(read_head(&mut tls).await.starts_with("HTTP/1.1 204"));
    // Slowloris: a third head starts and never ends. header_read_timeout (300ms) cuts it,
    // well before idle_timeout (1.5s) would.
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(IDLE * 3, tls.read_to_end(&mut rest))
        .await
        .expect("slow head not cut");
    let waited = started.elapsed();
    assert!(
        waited >= HEADER_READ - Duration::from_millis(100)
            && waited < IDLE - Duration::from_millis(300),
        "slow head cut after {waited:?}"
    );
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}
