//! What reaches the client's socket, segment by segment: a one-shot connection's last writes
//! share a segment (`tls::coalesce`), and coalescing never holds a byte back from a client that
//! is waiting for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::{BASIC, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Segments with data the kernel received on the client socket bound to `local`
/// (`ss`'s `data_segs_in`, from the socket's TCP_INFO).
fn data_segments_in(local: SocketAddr) -> u64 {
    let out = Command::new("ss")
        .args(["-tinH", "state", "all", "src"])
        .arg(local.to_string())
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|field| field.strip_prefix("data_segs_in:"))
        .unwrap_or_else(|| panic!("no data_segs_in for {local} in {text:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_closing_response_its_ticket_and_close_notify_share_one_segment() {
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let mut tls = alice.connect(env.addr(), "localhost").await.unwrap();
    let local = tls.get_ref().0.local_addr().unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    // rustls reports a close without close_notify as an error: this one ends cleanly.
    tls.read_to_end(&mut response).await.unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    // The server's flight, then everything after the handshake in one write: the session
    // ticket, the response and the close_notify alert (each in a segment of its own before).
    assert_eq!(data_segments_in(local), 2);
}

/// A backend that sends a response head and a first chunk, then holds the rest until told.
async fn trickling_backend() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (finish, finish_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        support::read_head(&mut tcp).await;
        tcp.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await
            .unwrap();
        let _ = finish_rx.await;
        tcp.write_all(b"4\r\nlast\r\n0\r\n\r\n").await.unwrap();
        let _ = tcp.read(&mut [0u8; 1]).await;
    });
    (addr, finish)
}

#[tokio::test]
async fn a_streamed_response_is_not_held_back_waiting_for_the_backend() {
    let (backend, finish) = trickling_backend().await;
    let config = BASIC.replace("{backend}", &backend.to_string());
    let env = Env::start(&config).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let mut tls = alice.connect(env.addr(), "localhost").await.unwrap();
    tls.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // The first chunk must arrive while the backend still holds the rest.
    let mut got = Vec::new();
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while !got.windows(5).any(|w| w == b"first") {
            let mut buf = [0u8; 4096];
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(first.is_ok(), "the first chunk was held: {got:?}");
    finish.send(()).unwrap();
    tls.read_to_end(&mut got).await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("first") && text.contains("last"), "{text}");
}
