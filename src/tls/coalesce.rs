//! The TLS 1.3 session ticket rides with the first response instead of going out alone.
//!
//! A TLS 1.3 server sends its session ticket as soon as it has read the client's Finished, and
//! the response to the request that came with that Finished moments later: two writes, two
//! segments, two wake-ups of the client, for a message the client does not need until it
//! reconnects. [`CoalescingStream`] sits under rustls and holds the writes the handshake makes
//! after the client's second flight; the first write after the handshake sends them along in
//! the same `writev`. Measured with one client connection at a time (`certgate bench -c 1`),
//! sending no ticket at all saved about a tenth of a full handshake's server CPU; resumption
//! needs the ticket, so it is still made, and what holding it saves is its own write, segment
//! and client wake-up (one `writev` fewer per connection).
//!
//! Held bytes never keep anything from the peer: during the handshake they go out before a read
//! would wait (a HelloRetryRequest's flight, a TLS 1.2 Finished); a TLS 1.2 connection releases
//! them when the handshake ends (its client waits for our Finished); otherwise they leave with
//! the next write, before a shutdown, or, if the connection is dropped first (a failed handshake
//! whose alert was held), in a last non-blocking write. Only that one group of writes is ever
//! held; everything after passes straight through.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Slices per `writev`: the held bytes plus what rustls passes (a few records at most).
const MAX_SLICES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Handshake, before our first flight (`wrote` once it went out).
    Opening { wrote: bool },
    /// Handshake, after the client answered our flight: writes are held.
    Holding,
    /// Handshake over with bytes still held: the next write takes them along.
    Held,
    /// Everything passes through.
    Through,
}

/// A client connection under rustls; see the module documentation.
#[derive(Debug)]
pub struct CoalescingStream {
    inner: TcpStream,
    phase: Phase,
    held: Vec<u8>,
}

impl CoalescingStream {
    /// Wraps an accepted connection before its handshake.
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            phase: Phase::Opening { wrote: false },
            held: Vec::new(),
        }
    }

    /// Called when the handshake is complete. A TLS 1.3 ticket waits for the next write; what a
    /// TLS 1.2 handshake held (its Finished) goes out now, since that client waits for it.
    pub fn handshake_done(&mut self, tls13: bool) {
        self.phase = if self.held.is_empty() {
            Phase::Through
        } else if tls13 {
            Phase::Held
        } else {
            self.release_now();
            Phase::Through
        };
    }

    /// Writes what is held without waiting. A socket that cannot take it at once (a fresh
    /// connection's buffer always can) keeps the rest for the next write or the shutdown.
    fn release_now(&mut self) {
        while !self.held.is_empty() {
            match self.inner.try_write(&self.held) {
                Ok(0) | Err(_) => return,
                Ok(n) => drop(self.held.drain(..n)),
            }
        }
    }

    /// Writes all held bytes; Pending (with the waker registered) while the socket is full.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        self.phase = Phase::Through;
        Poll::Ready(Ok(()))
    }

    /// The held bytes and `bufs` in one `writev`; returns how many bytes of `bufs` went out.
    fn poll_write_with_held(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        while !self.held.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            slices[0] = IoSlice::new(&self.held);
            let mut count = 1;
            for buf in bufs.iter().filter(|b| !b.is_empty()).take(MAX_SLICES - 1) {
                slices[count] = *buf;
                count += 1;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n < self.held.len() {
                self.held.drain(..n);
                continue;
            }
            let past_held = n - self.held.len();
            self.held.clear();
            if past_held > 0 {
                self.phase = Phase::Through;
                return Poll::Ready(Ok(past_held));
            }
        }
        self.phase = Phase::Through;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

impl Drop for CoalescingStream {
    fn drop(&mut self) {
        // A failed handshake's held alert: the client should still learn why.
        self.release_now();
    }
}

impl AsyncRead for CoalescingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == (Phase::Opening { wrote: true }) && buf.filled().len() > before {
                    this.phase = Phase::Holding;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.phase == Phase::Holding && !this.held.is_empty() => {
                // The handshake waits for the client, which may be waiting for these bytes.
                ready!(this.poll_release(cx))?;
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for CoalescingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.phase {
            Phase::Through => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            Phase::Opening { .. } => {
                this.phase = Phase::Opening { wrote: true };
                Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
            }
            Phase::Holding => {
                let mut n = 0;
                for buf in bufs {
                    this.held.extend_from_slice(buf);
                    n += buf.len();
                }
                Poll::Ready(Ok(n))
            }
            Phase::Held => this.poll_write_with_held(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.phase {
            // Holding is the point: the bytes wait for the next write, whoever flushes.
            Phase::Holding | Phase::Held => Poll::Ready(Ok(())),
            Phase::Opening { .. } | Phase::Through => Pin::new(&mut this.inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair: our side wrapped, the peer plain.
    async fn pair() -> (CoalescingStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (CoalescingStream::new(accepted.unwrap().0), peer.unwrap())
    }

    /// Everything the peer can read right now, without waiting.
    async fn readable_now(peer: &mut TcpStream) -> Vec<u8> {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match peer.try_read(&mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The TLS 1.3 shape: client hello, our flight, the client's flight, then the ticket.
    async fn through_client_flight(ours: &mut CoalescingStream, peer: &mut TcpStream) {
        peer.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        ours.read_exact(&mut buf).await.unwrap();
        ours.write_all(b"flight").await.unwrap();
        ours.flush().await.unwrap();
        assert_eq!(
            readable_now(peer).await,
            b"flight",
            "the first flight is not held"
        );
        peer.write_all(b"finished").await.unwrap();
        let mut buf = [0u8; 8];
        ours.read_exact(&mut buf).await.unwrap();
        ours.write_all(b"ticket").await.unwrap();
        ours.flush().await.unwrap();
    }

    #[tokio::test]
    async fn a_tls13_ticket_goes_out_with_the_first_response_in_order() {
        let (mut ours, mut peer) = pair().await;
        through_client_flight(&mut ours, &mut peer).await;
        ours.handshake_done(true);
        ours.flush().await.unwrap();
        assert_eq!(
            readable_now(&mut peer).await,
            b"",
            "flushing does not release"
        );
        assert_eq!(ours.held.len(), 6);
        ours.write_all(b"response").await.unwrap();
        assert_eq!(readable_now(&mut peer).await, b"ticketresponse");
        ours.write_all(b"more").await.unwrap();
        assert_eq!(
            readable_now(&mut peer).await,
            b"more",
            "later writes pass through"
        );
    }

    #[tokio::test]
    async fn a_tls12_handshake_releases_its_finished_at_once() {
        let (mut ours, mut peer) = pair().await;
        through_client_flight(&mut ours, &mut peer).await;
        ours.handshake_done(false);
        assert_eq!(readable_now(&mut peer).await, b"ticket");
        assert_eq!(ours.held.len(), 0);
    }

    #[tokio::test]
    async fn a_read_that_would_wait_during_the_handshake_releases_first() {
        let (mut ours, mut peer) = pair().await;
        through_client_flight(&mut ours, &mut peer).await;
        // Still handshaking (a HelloRetryRequest's second flight looks like this): waiting for
        // the client must not leave it waiting for us.
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            ours.read_exact(&mut buf),
        );
        assert!(read.await.is_err(), "nothing to read yet");
        assert_eq!(readable_now(&mut peer).await, b"ticket");
        ours.write_all(b"next").await.unwrap();
        assert_eq!(readable_now(&mut peer).await, b"next");
    }

    #[tokio::test]
    async fn shutdown_and_drop_deliver_what_is_held() {
        let (mut ours, mut peer) = pair().await;
        through_client_flight(&mut ours, &mut peer).await;
        ours.handshake_done(true);
        ours.shutdown().await.unwrap();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"ticket");

        let (mut ours, mut peer) = pair().await;
        through_client_flight(&mut ours, &mut peer).await;
        drop(ours);
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"ticket", "a held alert still reaches the client");
    }
}
