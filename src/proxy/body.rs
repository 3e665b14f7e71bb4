//! The response body type, which also writes the access-log line.
//!
//! The line is written when the body is finished or dropped, so it records the bytes actually
//! sent and the whole duration, including streamed bodies and aborted downloads.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Instant;

/// One request's access-log fields (IIS W3C names in comments).
#[derive(Debug)]
pub struct AccessRecord {
    /// Keeps the request counted as in flight until the record is written.
    pub in_flight: Option<crate::state::InFlight>,
    /// Request start.
    pub start: Instant,
    /// c-ip.
    pub client_ip: std::net::IpAddr,
    /// s-sitename.
    pub site: Arc<str>,
    /// cs-method.
    pub method: http::Method,
    /// cs-uri-stem (the path as the client sent it; the query is never logged).
    pub path: String,
    /// HTTP version.
    pub version: http::Version,
    /// sc-status.
    pub status: u16,
    /// sc-substatus.
    pub substatus: u16,
    /// cs-username.
    pub user: Option<Arc<str>>,
    /// Mapping family that produced the user.
    pub mapping: Option<&'static str>,
    /// SHA-1 thumbprint of the client certificate.
    pub thumbprint: Option<Arc<str>>,
    /// TLS version and resumption.
    pub tls: &'static str,
    /// Whether the TLS session was resumed.
    pub resumed: bool,
    /// The reference id of a refused request (on its page and in both logs).
    pub reference: Option<crate::error_page::Reference>,
    /// The W3C line's request half, for sites that write W3C logs.
    pub w3c: Option<Box<crate::w3c::capture::Pending>>,
}

/// `sc-win32-status` of a response the client did not receive whole, as IIS logs it:
/// `ERROR_NETNAME_DELETED` when the client went away (closed or reset the connection) before
/// the response was sent, `ERROR_CONNECTION_ABORTED` when certgate itself had to abort the
/// connection (the backend failed mid-body).
pub mod win32 {
    /// Complete.
    pub const SUCCESS: u32 = 0;
    /// `ERROR_NETNAME_DELETED`: the specified network name is no longer available.
    pub const NETNAME_DELETED: u32 = 64;
    /// `ERROR_CONNECTION_ABORTED`: the network connection was aborted by the local system.
    pub const CONNECTION_ABORTED: u32 = 1236;
}

impl AccessRecord {
    fn emit(&mut self, bytes: u64, complete: bool, win32_status: u32) {
        let duration = self.start.elapsed();
        let reference = self.reference.as_ref().map(|r| r.as_str());
        tracing::info!(
            target: "certgate::access",
            client_ip = %self.client_ip,
            site = %self.site,
            method = %self.method,
            path = %self.path,
            version = ?self.version,
            status = self.status,
            substatus = self.substatus,
            code = %format_args!("{}.{}", self.status, self.substatus),
            user = self.user.as_deref().unwrap_or("-"),
            mapping = self.mapping.unwrap_or("-"),
            thumbprint = self.thumbprint.as_deref().unwrap_or("-"),
            tls = self.tls,
            resumed = self.resumed,
            bytes,
            duration_ms = %format_args!("{:.3}", duration.as_secs_f64() * 1000.0),
            complete,
            win32_status,
            reference = reference.unwrap_or("-"),
            "access"
        );
        if let Some(w3c) = self.w3c.take() {
            w3c.submit(
                self.client_ip,
                self.method.as_str(),
                &self.path,
                (self.status, self.substatus),
                self.user.as_deref(),
                bytes,
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                reference,
                win32_status,
            );
        }
    }
}

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Stream(Incoming),
}

/// A response body: empty, fixed, or streamed from the backend.
pub struct ProxyBody {
    inner: Inner,
    bytes: u64,
    done: bool,
    /// The backend's body failed, so the response was cut short by certgate.
    failed: bool,
    record: Option<Box<AccessRecord>>,
}

impl ProxyBody {
    /// No body.
    pub fn empty() -> Self {
        Self::new(Inner::Empty)
    }

    /// A fixed body.
    pub fn full(bytes: Bytes) -> Self {
        Self::new(Inner::Full(Some(bytes)))
    }

    /// A body streamed from the backend.
    pub fn stream(body: Incoming) -> Self {
        Self::new(Inner::Stream(body))
    }

    fn new(inner: Inner) -> Self {
        Self {
            inner,
            bytes: 0,
            done: false,
            failed: false,
            record: None,
        }
    }

    /// Attaches the access record, written when the body ends.
    pub fn with_record(mut self, record: AccessRecord) -> Self {
        self.record = Some(Box::new(record));
        self
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        let complete = self.done || self.is_end_stream();
        let win32_status = match (complete, self.failed) {
            (true, _) => win32::SUCCESS,
            (false, true) => win32::CONNECTION_ABORTED,
            (false, false) => win32::NETNAME_DELETED,
        };
        if let Some(mut record) = self.record.take() {
            record.emit(self.bytes, complete, win32_status);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Empty => Poll::Ready(None),
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Stream(body) => Pin::new(body).poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => this.done = true,
            Poll::Ready(Some(Err(_))) => this.failed = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Full(data) => data.is_none(),
            Inner::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Stream(body) => body.size_hint(),
        }
    }
}
