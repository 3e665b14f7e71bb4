//! The two clocks of a client connection: how long it may sit idle between requests
//! (`idle_timeout`) and how long a request head that has started to arrive may take to complete
//! (`header_read_timeout`, the slowloris guard).
//!
//! hyper 1.x arms its HTTP/1 header read timer as soon as it starts waiting for a request head,
//! which on a keep-alive connection is right after the previous response: with hyper's timer
//! alone an idle keep-alive connection is cut after `header_read_timeout`, not `idle_timeout`.
//! [`HeadTimer`] is the timer certgate gives hyper's HTTP/1 server instead. hyper uses that
//! timer for nothing but the header read deadline (`proto/h1/conn.rs`, `poll_read_head`), and
//! polls the deadline after every read that did not complete a head. While no byte has arrived
//! since hyper armed it, the deadline is the idle one; from the first byte of a head on, it is
//! `header_read_timeout`. Bytes that arrived before hyper armed the timer (a pipelined head, or
//! the bytes the HTTP version detection read on a new connection) count from when it was armed.
//!
//! [`Activity`] wraps the decrypted stream and records when bytes last moved and how many reads
//! returned data, which both the head timer and the connection's idle watchdog (HTTP/2 too) read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What a connection's traffic looked like, shared by the stream wrapper and the timers.
#[derive(Debug)]
pub(super) struct Clock {
    epoch: Instant,
    /// Milliseconds after `epoch` when bytes last moved either way.
    last: AtomicU64,
    /// Reads that returned data (a change means bytes arrived).
    reads: AtomicU64,
    /// Header timers hyper has armed on this connection.
    armed: AtomicU64,
}

impl Clock {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            armed: AtomicU64::new(0),
        })
    }

    /// When bytes last moved either way (the connection's start if none has).
    pub(super) fn last_activity(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// The HTTP/1 server timer: idle deadline until a head starts, then the header read deadline.
#[derive(Debug, Clone)]
pub(super) struct HeadTimer {
    pub(super) clock: Arc<Clock>,
    pub(super) header_read_timeout: Duration,
    pub(super) idle_timeout: Duration,
}

impl HeadTimer {
    fn arm(&self) -> HeadSleep {
        // The first head of a connection started with the bytes the version detection read.
        let first = self.clock.armed.fetch_add(1, Ordering::Relaxed) == 0;
        let seen = if first { 0 } else { self.clock.reads() };
        let mut sleep = HeadSleep {
            clock: Arc::clone(&self.clock),
            seen,
            head_started: false,
            header_read_timeout: self.header_read_timeout,
            sleep: Box::pin(tokio::time::sleep(self.idle_timeout)),
        };
        sleep.notice_head();
        sleep
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, _duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.arm())
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.arm())
    }
}

/// One wait for a request head.
struct HeadSleep {
    clock: Arc<Clock>,
    /// `Clock::reads` when armed: a different value means the head has started.
    seen: u64,
    head_started: bool,
    header_read_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HeadSleep {
    /// Switches from the idle deadline to the header deadline once bytes have arrived.
    fn notice_head(&mut self) {
        if !self.head_started && self.clock.reads() != self.seen {
            self.head_started = true;
            self.sleep
                .as_mut()
                .reset(Instant::now() + self.header_read_timeout);
        }
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.notice_head();
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

pin_project_lite::pin_project! {
    /// Records on the connection's [`Clock`] when bytes move.
    pub(super) struct Activity<T> {
        #[pin]
        inner: T,
        clock: Arc<Clock>,
    }
}

impl<T> Activity<T> {
    pub(super) fn new(inner: T, clock: Arc<Clock>) -> Self {
        Self { inner, clock }
    }
}

impl<T: AsyncRead> AsyncRead for Activity<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.reads.fetch_add(1, Ordering::Relaxed);
            this.clock.touch();
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for Activity<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            this.clock.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            this.clock.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn timer() -> HeadTimer {
        HeadTimer {
            clock: Clock::new(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    fn arrived(clock: &Clock) {
        clock.reads.fetch_add(1, Ordering::Relaxed);
    }

    async fn fires_within(sleep: &mut Pin<Box<HeadSleep>>, limit: Duration) -> bool {
        tokio::time::timeout(limit, sleep.as_mut()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_without_bytes_lasts_idle_timeout() {
        let t = timer();
        arrived(&t.clock); // the first request's bytes
        let _first = t.arm();
        let mut next = Box::pin(t.arm()); // waiting for the second request
        assert!(!fires_within(&mut next, Duration::from_secs(59)).await);
        assert!(fires_within(&mut next, Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_head_has_header_read_timeout_from_its_first_byte() {
        let t = timer();
        arrived(&t.clock);
        let _first = t.arm();
        let mut next = Box::pin(t.arm());
        assert!(!fires_within(&mut next, Duration::from_secs(30)).await);
        arrived(&t.clock); // hyper polls the timer after each read
        assert!(!fires_within(&mut next, Duration::from_secs(9)).await);
        assert!(fires_within(&mut next, Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_counts_the_version_detection_bytes() {
        let t = timer();
        arrived(&t.clock);
        let mut first = Box::pin(t.arm());
        assert!(!fires_within(&mut first, Duration::from_secs(9)).await);
        assert!(fires_within(&mut first, Duration::from_secs(2)).await);
    }
}
