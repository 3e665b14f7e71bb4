//! A connection's small writes leave together: one `writev` where a plain stream makes several.
//!
//! Two groups of writes are merged, each saving a system call, a segment and a wake-up of the
//! client, which on a full handshake plus one request is a measurable share of the server's CPU:
//! - **The TLS 1.3 session ticket rides with the first response.** A TLS 1.3 server sends its
//!   ticket as soon as it has read the client's Finished, and the response moments later. The
//!   client does not need the ticket until it reconnects, so the writes the handshake makes
//!   after the client's second flight are held and the first write after the handshake takes
//!   them along (with one client at a time, sending no ticket at all saved about a tenth of a
//!   full handshake's server CPU; resumption needs the ticket, so it is still made).
//! - **The first response leaves with what follows it in the same poll.** hyper writes a
//!   response, flushes, and for a connection that closes after it (`Connection: close`, what
//!   one-shot clients such as scripts, health checks and load generators send) shuts the TLS
//!   session down in the same poll: the response and the `close_notify` alert are two writes.
//!   [`ReleaseAfterPoll`] wraps the connection task's future; until the first response has gone
//!   out, the stream corks small writes and the wrapper writes them out when the poll that made
//!   them ends, so bytes never wait for anything but the end of that poll. A shutdown writes
//!   them first; writes larger than [`CORK_LIMIT`] go out at once, with anything corked before
//!   them. After that first release the stream writes for itself: a kept-alive connection's
//!   later responses are single writes anyway, and cost no copy.
//!
//! Held bytes never keep anything from the peer: during the handshake they go out before a read
//! would wait (a HelloRetryRequest's flight, a TLS 1.2 Finished); a TLS 1.2 connection releases
//! them when the handshake ends (its client waits for our Finished); a ticket otherwise leaves
//! with the next write, before a shutdown, or, if the connection is dropped first (a failed
//! handshake whose alert was held), in a last non-blocking write. A stream whose task let go of
//! it (an upgraded connection is tunnelled by another task) stops corking, and a flush writes
//! out what is left.
//!
//! The stream (owned by rustls, owned in turn by hyper) and the wrapper share the socket's sending
//! half and the held bytes through an `Arc`: the stream is polled from inside the wrapper's poll
//! (or, once the wrapper has let go, by whichever task holds it), so the lock is uncontended.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Bytes corked at most; a write that would go past it goes out at once. A response of a few
/// kilobytes with its TLS records and alerts fits; bulk transfers are not copied.
pub const CORK_LIMIT: usize = 16 * 1024;

/// Slices per `writev`: the held bytes plus what rustls passes (a few records at most).
const MAX_SLICES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Handshake, before our first flight (`wrote` once it went out).
    Opening { wrote: bool },
    /// Handshake, after the client answered our flight: writes are held.
    Holding,
    /// Handshake over: writes are corked while the connection task is attached.
    Open,
}

/// What the stream and the connection task share: the sending side of the socket.
#[derive(Debug)]
struct Shared {
    out: Mutex<Out>,
    /// Some held bytes are corked and leave when the task's poll ends. Set and cleared with
    /// `out` locked; the wrapper reads it without the lock to skip the lock when idle.
    corked: AtomicBool,
}

#[derive(Debug)]
struct Out {
    tcp: OwnedWriteHalf,
    /// Bytes written to the stream and not yet to the socket, in order.
    held: Vec<u8>,
    /// A [`ReleaseAfterPoll`] writes corked bytes out after each poll.
    attached: bool,
}

impl Out {
    /// Writes all held bytes; Pending (with the waker registered) while the socket is full.
    fn poll_release(&mut self, corked: &AtomicBool, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        self.emptied(corked);
        Poll::Ready(Ok(()))
    }

    /// Writes what is held without waiting. A socket that cannot take it at once keeps the rest
    /// for the next write, flush or shutdown.
    fn release_now(&mut self, corked: &AtomicBool) {
        while !self.held.is_empty() {
            match self.tcp.try_write(&self.held) {
                Ok(0) | Err(_) => return,
                Ok(n) => drop(self.held.drain(..n)),
            }
        }
        self.emptied(corked);
    }

    /// Everything held went out. The buffer goes too: an idle keep-alive connection keeps none.
    fn emptied(&mut self, corked: &AtomicBool) {
        self.held = Vec::new();
        corked.store(false, Ordering::Relaxed);
    }

    /// The held bytes and `bufs` in one `writev`; returns how many bytes of `bufs` went out.
    fn poll_write_with_held(
        &mut self,
        corked: &AtomicBool,
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
            let n = ready!(Pin::new(&mut self.tcp).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n < self.held.len() {
                self.held.drain(..n);
                continue;
            }
            let past_held = n - self.held.len();
            self.emptied(corked);
            if past_held > 0 {
                return Poll::Ready(Ok(past_held));
            }
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }
}

impl Shared {
    fn out(&self) -> MutexGuard<'_, Out> {
        // Nothing panics while the lock is held; a poisoned lock still guards consistent bytes.
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task lets go: later writes pass straight through, and what is corked leaves now if
    /// the socket takes it (otherwise with the stream's next write, flush or shutdown).
    fn detach(&self) {
        let mut out = self.out();
        out.attached = false;
        if self.corked.load(Ordering::Relaxed) {
            out.release_now(&self.corked);
        }
    }
}

/// A client connection under rustls; see the module documentation.
#[derive(Debug)]
pub struct CoalescingStream {
    read: OwnedReadHalf,
    shared: Arc<Shared>,
    phase: Phase,
}

impl CoalescingStream {
    /// Wraps an accepted connection before its handshake.
    pub fn new(tcp: TcpStream) -> Self {
        let (read, write) = tcp.into_split();
        Self {
            read,
            shared: Arc::new(Shared {
                out: Mutex::new(Out {
                    tcp: write,
                    held: Vec::new(),
                    attached: false,
                }),
                corked: AtomicBool::new(false),
            }),
            phase: Phase::Opening { wrote: false },
        }
    }

    /// Called when the handshake is complete. A TLS 1.3 ticket waits for the next write; what a
    /// TLS 1.2 handshake held (its Finished) goes out now, since that client waits for it.
    pub fn handshake_done(&mut self, tls13: bool) {
        if !tls13 {
            self.shared.out().release_now(&self.shared.corked);
        }
        self.phase = Phase::Open;
    }

    /// What the connection's task needs to write out corked bytes: take it before the stream
    /// moves into the task.
    pub fn releaser(&self) -> Releaser {
        Releaser(Arc::clone(&self.shared))
    }
}

/// The connection task's share of a [`CoalescingStream`].
#[derive(Debug)]
pub struct Releaser(Arc<Shared>);

impl Releaser {
    /// Wraps the future of the task that serves the connection: from now on the stream corks
    /// small writes and the wrapper writes them out after every poll of `task`.
    pub fn release_after_poll<F: Future>(self, task: F) -> ReleaseAfterPoll<F> {
        self.0.out().attached = true;
        ReleaseAfterPoll {
            task,
            shared: Some(self.0),
        }
    }
}

impl Drop for CoalescingStream {
    fn drop(&mut self) {
        // A failed handshake's held alert: the client should still learn why.
        self.shared.out().release_now(&self.shared.corked);
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
        match Pin::new(&mut this.read).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == (Phase::Opening { wrote: true }) && buf.filled().len() > before {
                    this.phase = Phase::Holding;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.phase == Phase::Holding => {
                // The handshake waits for the client, which may be waiting for these bytes.
                let shared = &*this.shared;
                ready!(shared.out().poll_release(&shared.corked, cx))?;
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
        let shared = &*this.shared;
        let mut out = shared.out();
        let hold = match this.phase {
            Phase::Opening { .. } => {
                this.phase = Phase::Opening { wrote: true };
                false
            }
            Phase::Holding => true,
            Phase::Open => {
                let len = bufs.iter().map(|b| b.len()).sum::<usize>();
                let cork = out.attached && out.held.len() + len <= CORK_LIMIT;
                if cork {
                    shared.corked.store(true, Ordering::Relaxed);
                }
                cork
            }
        };
        if !hold {
            return out.poll_write_with_held(&shared.corked, cx, bufs);
        }
        let mut n = 0;
        for buf in bufs {
            out.held.extend_from_slice(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shared = &*self.shared;
        // Attached, the end of the poll writes corked bytes; a ticket waits for the next write.
        if shared.corked.load(Ordering::Relaxed) {
            let mut out = shared.out();
            if !out.attached {
                return out.poll_release(&shared.corked, cx);
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shared = &*self.shared;
        let mut out = shared.out();
        ready!(out.poll_release(&shared.corked, cx))?;
        Pin::new(&mut out.tcp).poll_shutdown(cx)
    }
}

pin_project_lite::pin_project! {
    /// The future of a connection's task, writing out what its stream corked after every poll;
    /// see the module documentation.
    pub struct ReleaseAfterPoll<F> {
        #[pin]
        task: F,
        shared: Option<Arc<Shared>>,
    }

    impl<F> PinnedDrop for ReleaseAfterPoll<F> {
        fn drop(this: Pin<&mut Self>) {
            // An upgraded stream lives on in another task: it must not wait for our polls.
            let_go(this.project().shared);
        }
    }
}

/// The wrapper stops releasing: the stream writes for itself from now on.
fn let_go(shared: &mut Option<Arc<Shared>>) {
    if let Some(shared) = shared.take() {
        shared.detach();
    }
}

impl<F> ReleaseAfterPoll<F> {
    /// The wrapped future, to act on it (a graceful shutdown).
    pub fn task(self: Pin<&mut Self>) -> Pin<&mut F> {
        self.project().task
    }
}

impl<F: Future> Future for ReleaseAfterPoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let result = this.task.poll(cx);
        // Let go once the task is done or has handed the stream over (an upgrade), and once the
        // first response went out: a kept-alive connection's later responses are single writes,
        // which the stream makes itself at no copy. On an error the bytes stay with the stream,
        // whose next write, flush or shutdown reports it. Pending: the socket is full, and the
        // waker is registered for when it is not.
        let done = result.is_ready()
            || this.shared.as_ref().is_some_and(|shared| {
                shared.corked.load(Ordering::Relaxed)
                    && shared.out().poll_release(&shared.corked, cx).is_ready()
            });
        if done {
            let_go(this.shared);
        }
        result
    }
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
