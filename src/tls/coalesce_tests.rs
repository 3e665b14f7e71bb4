#![allow(clippy::unwrap_used)]

use std::future::poll_fn;
use std::io::{Read as _, Write as _};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

/// The peer: a plain non-blocking socket, read without a reactor in between.
type Peer = std::net::TcpStream;

/// A connected pair: our side wrapped, the peer plain.
async fn pair() -> (CoalescingStream, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let peer = peer.unwrap().into_std().unwrap();
    peer.set_nonblocking(true).unwrap();
    // As the proxy's listener gives it: without it Nagle would hold a second small write.
    let ours = accepted.unwrap().0;
    ours.set_nodelay(true).unwrap();
    (CoalescingStream::new(ours), peer)
}

/// What the peer can read at this instant. On loopback a write has reached the peer's receive
/// queue by the time the writing system call returns, so this sees every byte written so far.
fn arrived(mut peer: &Peer) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match peer.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Everything up to the end of the stream (after our side shut down or went away).
fn to_end(mut peer: &Peer) -> Vec<u8> {
    peer.set_nonblocking(false).unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    rest
}

fn held(ours: &CoalescingStream) -> usize {
    ours.shared.out().held.len()
}

/// The TLS 1.3 shape: client hello, our flight, the client's flight, then the ticket.
async fn through_client_flight(ours: &mut CoalescingStream, mut peer: &Peer) {
    peer.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    ours.read_exact(&mut buf).await.unwrap();
    ours.write_all(b"flight").await.unwrap();
    ours.flush().await.unwrap();
    assert_eq!(arrived(peer), b"flight", "the first flight is not held");
    peer.write_all(b"finished").unwrap();
    let mut buf = [0u8; 8];
    ours.read_exact(&mut buf).await.unwrap();
    ours.write_all(b"ticket").await.unwrap();
    ours.flush().await.unwrap();
}

/// A connection whose handshake reached the ticket (held) and has not ended.
async fn past_client_flight() -> (CoalescingStream, Peer) {
    let (mut ours, peer) = pair().await;
    through_client_flight(&mut ours, &peer).await;
    (ours, peer)
}

/// A TLS 1.3 connection after its handshake, with the ticket held.
async fn after_tls13_handshake() -> (CoalescingStream, Peer) {
    let (mut ours, peer) = past_client_flight().await;
    ours.handshake_done(true);
    (ours, peer)
}

/// Writes `chunks` in one poll of the task, checking after each what the peer has, and ends
/// the poll; resolves on the next.
async fn one_poll_writes(ours: &mut CoalescingStream, peer: &Peer, chunks: &[&[u8]]) {
    let mut polled = false;
    let mut seen = Vec::new();
    poll_fn(|cx| {
        if polled {
            return Poll::Ready(());
        }
        polled = true;
        for chunk in chunks {
            let n = ready!(Pin::new(&mut *ours).poll_write(cx, chunk)).unwrap();
            assert_eq!(n, chunk.len());
            ready!(Pin::new(&mut *ours).poll_flush(cx)).unwrap();
            seen.push(arrived(peer));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
    for (i, got) in seen.iter().enumerate() {
        assert!(
            got.is_empty(),
            "write {i} reached the peer during the poll: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_tls13_ticket_goes_out_with_the_first_response_in_order() {
    let (mut ours, peer) = after_tls13_handshake().await;
    ours.flush().await.unwrap();
    assert_eq!(arrived(&peer), b"", "flushing does not release");
    assert_eq!(held(&ours), 6);
    ours.write_all(b"response").await.unwrap();
    assert_eq!(arrived(&peer), b"ticketresponse");
    ours.write_all(b"more").await.unwrap();
    assert_eq!(arrived(&peer), b"more", "later writes pass through");
}

#[tokio::test]
async fn a_tls12_handshake_releases_its_finished_at_once() {
    let (mut ours, peer) = past_client_flight().await;
    ours.handshake_done(false);
    assert_eq!(arrived(&peer), b"ticket");
    assert_eq!(held(&ours), 0);
}

/// A read that finds nothing from the client and gives up after a moment.
async fn wait_briefly_for_the_client(ours: &mut CoalescingStream) {
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        ours.read_exact(&mut buf),
    );
    assert!(read.await.is_err(), "nothing to read yet");
}

#[tokio::test]
async fn a_read_that_would_wait_during_the_handshake_releases_first() {
    let (mut ours, peer) = past_client_flight().await;
    // Still handshaking (a HelloRetryRequest's second flight looks like this): waiting for
    // the client must not leave it waiting for us.
    wait_briefly_for_the_client(&mut ours).await;
    assert_eq!(arrived(&peer), b"ticket");
    // Still handshaking, the next flight is held until the handshake waits again.
    ours.write_all(b"next").await.unwrap();
    assert_eq!(arrived(&peer), b"");
    wait_briefly_for_the_client(&mut ours).await;
    assert_eq!(arrived(&peer), b"next");
}

#[tokio::test]
async fn shutdown_and_drop_deliver_what_is_held() {
    let (mut ours, peer) = after_tls13_handshake().await;
    ours.shutdown().await.unwrap();
    assert_eq!(to_end(&peer), b"ticket");

    let (ours, peer) = past_client_flight().await;
    drop(ours);
    assert_eq!(
        to_end(&peer),
        b"ticket",
        "a held alert still reaches the client"
    );
}

#[tokio::test]
async fn what_one_poll_writes_leaves_together_when_the_poll_ends() {
    let (mut ours, peer) = after_tls13_handshake().await;
    let releaser = ours.releaser();
    let seen = &peer;
    // The task: a poll writing a response and its alert, then a later response.
    let task = releaser.release_after_poll(async move {
        one_poll_writes(&mut ours, seen, &[b"response", b"notify"]).await;
        assert_eq!(
            arrived(seen),
            b"ticketresponsenotify",
            "released between polls"
        );
        ours.write_all(b"second").await.unwrap();
        assert_eq!(
            arrived(seen),
            b"second",
            "after the first release, writes pass straight through"
        );
        ours
    });
    let mut ours = task.await;
    assert_eq!(held(&ours), 0);
    ours.write_all(b"after").await.unwrap();
    assert_eq!(arrived(&peer), b"after");
}

#[tokio::test]
async fn a_task_dropped_before_it_ends_lets_go_of_the_stream() {
    let (mut ours, peer) = after_tls13_handshake().await;
    let task = ours
        .releaser()
        .release_after_poll(std::future::pending::<()>());
    ours.write_all(b"corked").await.unwrap();
    assert_eq!(
        arrived(&peer),
        b"",
        "attached: corked until the task's poll ends"
    );
    drop(task);
    assert_eq!(
        arrived(&peer),
        b"ticketcorked",
        "letting go writes out what is corked"
    );
    ours.write_all(b"tunnel").await.unwrap();
    assert_eq!(arrived(&peer), b"tunnel");
}

#[tokio::test]
async fn a_shutdown_in_the_same_poll_sends_the_corked_bytes_first() {
    let (mut ours, peer) = after_tls13_handshake().await;
    let task = ours.releaser().release_after_poll(async move {
        ours.write_all(b"response").await.unwrap();
        ours.flush().await.unwrap();
        ours.write_all(b"notify").await.unwrap();
        ours.shutdown().await.unwrap();
        ours
    });
    let _ours = task.await;
    assert_eq!(to_end(&peer), b"ticketresponsenotify");
}

#[tokio::test]
async fn large_writes_are_not_corked() {
    let (mut ours, peer) = after_tls13_handshake().await;
    let big = vec![b'x'; CORK_LIMIT + 1];
    let mut expected = b"ticketsmall".to_vec();
    expected.extend_from_slice(&big);
    let releaser = ours.releaser();
    let seen = &peer;
    let task = releaser.release_after_poll(async move {
        let (mut small, mut sent, mut got) = (false, 0, Vec::new());
        poll_fn(|cx| {
            if !small {
                let n = ready!(Pin::new(&mut ours).poll_write(cx, b"small")).unwrap();
                assert_eq!(n, 5);
                assert_eq!(arrived(seen), b"", "a small write is corked");
                small = true;
            }
            while sent < big.len() {
                sent += ready!(Pin::new(&mut ours).poll_write(cx, &big[sent..])).unwrap();
                got.extend(arrived(seen));
            }
            Poll::Ready(())
        })
        .await;
        got
    });
    // The large write went out as it was made, after what was corked before it.
    assert_eq!(task.await, expected);
}
