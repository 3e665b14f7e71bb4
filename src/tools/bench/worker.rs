//! One load-generating worker: its request loop, and how failures are classified.
//!
//! A worker records into its own [`Report`] and only touches shared atomics to feed the
//! progress line, so adding workers does not add contention. Failures are classified by walking
//! the error's source chain for a `rustls::Error` first: the same TLS alert can surface from the
//! handshake, from hyper's read, or wrapped in an `io::Error`, and the alert is what tells an
//! operator whether the server disliked the client certificate.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::header::CONNECTION;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::{AlertDescription, HandshakeKind};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::histogram::Histogram;
use super::{ErrorKind, Mode, Plan, Shared};

/// What one worker saw; merged into the [`super::Summary`].
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) ok: u64,
    pub(super) errors: BTreeMap<ErrorKind, u64>,
    pub(super) examples: BTreeMap<ErrorKind, String>,
    pub(super) connections: u64,
    pub(super) resumed: u64,
    pub(super) hello_retries: u64,
    pub(super) negotiated: Option<String>,
    pub(super) latency: Histogram,
}

impl Report {
    pub(super) fn merge(&mut self, other: Self) {
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, text) in other.examples {
            self.examples.entry(kind).or_insert(text);
        }
        self.connections += other.connections;
        self.resumed += other.resumed;
        self.hello_retries += other.hello_retries;
        if self.negotiated.is_none() {
            self.negotiated = other.negotiated;
        }
        self.latency.merge(&other.latency);
    }

    fn fail(&mut self, shared: &Shared, failure: Failure) {
        shared.failed.fetch_add(1, Ordering::Relaxed);
        *self.errors.entry(failure.kind).or_default() += 1;
        self.examples.entry(failure.kind).or_insert(failure.detail);
    }

    fn succeed(&mut self, shared: &Shared, latency: Duration) {
        shared.ok.fetch_add(1, Ordering::Relaxed);
        self.ok += 1;
        self.latency.record(latency);
    }

    /// Counts a finished request by its outcome.
    fn outcome(&mut self, shared: &Shared, result: Result<u16, Failure>, latency: Duration) {
        match result {
            Ok(status) if (200..300).contains(&status) => self.succeed(shared, latency),
            Ok(status) => self.fail(
                shared,
                Failure {
                    kind: ErrorKind::Status(status),
                    detail: String::new(),
                },
            ),
            Err(failure) => self.fail(shared, failure),
        }
    }
}

/// One failed request: its kind and the first line an operator needs.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
    detail: String,
}

impl Failure {
    fn timeout(limit: Duration) -> Self {
        Self {
            kind: ErrorKind::Timeout,
            detail: format!("no complete response within {limit:?}"),
        }
    }
}

/// Runs requests until `deadline` or until the shared -n budget is spent. Requests still in
/// flight at the deadline are dropped uncounted, so `elapsed` and the counts agree.
pub(super) async fn run(plan: Arc<Plan>, shared: Arc<Shared>, deadline: Instant) -> Report {
    let mut report = Report::default();
    let work = async {
        match plan.mode {
            Mode::Handshake | Mode::Resume => one_shot_loop(&plan, &shared, &mut report).await,
            Mode::Keepalive => keepalive_loop(&plan, &shared, &mut report).await,
        }
    };
    // Err only means the deadline passed; the report holds everything finished before it.
    let _ = tokio::time::timeout_at(deadline, work).await;
    report
}

async fn one_shot_loop(plan: &Plan, shared: &Shared, report: &mut Report) {
    while shared.claim() {
        let started = Instant::now();
        let result = match tokio::time::timeout(plan.timeout, one_shot(plan, report)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::timeout(plan.timeout)),
        };
        report.outcome(shared, result, started.elapsed());
    }
}

/// Connect, handshake, one request with `Connection: close`, read the whole response.
async fn one_shot(plan: &Plan, report: &mut Report) -> Result<u16, Failure> {
    let tls = connect(plan, report).await?;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
        .await
        .map_err(|e| classify(&e, Phase::Http))?;
    let exchange = async move {
        let response = sender.send_request(request(plan)).await?;
        drain(response).await
        // `sender` drops here, which lets `conn` finish (close_notify, FIN).
    };
    let (result, _closed) = tokio::join!(exchange, conn);
    result.map_err(|e| classify(&e, Phase::Http))
}

async fn keepalive_loop(plan: &Plan, shared: &Shared, report: &mut Report) {
    let mut live: Option<http1::SendRequest<Empty<Bytes>>> = None;
    while shared.claim() {
        let mut started = Instant::now();
        let attempt = async {
            // A server may close idle or exhausted keep-alive connections (nginx does after
            // keepalive_requests); that is not a failed request, so reconnect quietly.
            if let Some(sender) = live.as_mut()
                && sender.ready().await.is_err()
            {
                live = None;
            }
            let sender = match live.as_mut() {
                Some(sender) => sender,
                None => {
                    let sender = open(plan, report).await?;
                    started = Instant::now();
                    live.insert(sender)
                }
            };
            let response = sender
                .send_request(request(plan))
                .await
                .map_err(|e| classify(&e, Phase::Http))?;
            let closing = response
                .headers()
                .get(CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let status = drain(response)
                .await
                .map_err(|e| classify(&e, Phase::Http))?;
            Ok::<_, Failure>((status, closing))
        };
        let result = match tokio::time::timeout(plan.timeout, attempt).await {
            Ok(Ok((status, closing))) => {
                if closing {
                    live = None;
                }
                Ok(status)
            }
            Ok(Err(failure)) => {
                live = None;
                Err(failure)
            }
            Err(_) => {
                live = None;
                Err(Failure::timeout(plan.timeout))
            }
        };
        report.outcome(shared, result, started.elapsed());
    }
}

/// A fresh keep-alive connection whose hyper driver runs as its own task.
async fn open(
    plan: &Plan,
    report: &mut Report,
) -> Result<http1::SendRequest<Empty<Bytes>>, Failure> {
    let tls = connect(plan, report).await?;
    let (sender, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| classify(&e, Phase::Http))?;
    // Ends by itself once `sender` is dropped or the server closes.
    tokio::spawn(conn);
    Ok(sender)
}

async fn connect(plan: &Plan, report: &mut Report) -> Result<TlsStream<TcpStream>, Failure> {
    let tcp = TcpStream::connect(plan.addr).await.map_err(|e| Failure {
        kind: ErrorKind::Connect,
        detail: e.to_string(),
    })?;
    // Small requests and responses: don't let Nagle add latency.
    let _ = tcp.set_nodelay(true);
    let tls = plan
        .connector
        .connect(plan.server_name.clone(), tcp)
        .await
        .map_err(|e| classify(&e, Phase::Handshake))?;
    report.connections += 1;
    let session = tls.get_ref().1;
    if report.negotiated.is_none() {
        report.negotiated = Some(describe(session));
    }
    match session.handshake_kind() {
        Some(HandshakeKind::Resumed) => report.resumed += 1,
        Some(HandshakeKind::FullWithHelloRetryRequest) => report.hello_retries += 1,
        _ => {}
    }
    Ok(tls)
}

fn describe(session: &rustls::ClientConnection) -> String {
    let version = session
        .protocol_version()
        .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
    let suite = session
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()));
    let group = session
        .negotiated_key_exchange_group()
        .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name()));
    format!("{version} {suite} {group}")
}

fn request(plan: &Plan) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.method_mut() = plan.method.clone();
    *request.uri_mut() = plan.path.clone();
    *request.headers_mut() = plan.headers.clone();
    request
}

/// Reads the body to the end without keeping it; the status is only final once it has arrived.
async fn drain(response: hyper::Response<Incoming>) -> Result<u16, hyper::Error> {
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(status)
}

/// Where in a request an error surfaced; decides the kind when no TLS alert explains it.
#[derive(Clone, Copy)]
enum Phase {
    Handshake,
    Http,
}

fn classify(err: &(dyn StdError + 'static), phase: Phase) -> Failure {
    let detail = error_chain(err);
    let mut saw_io = false;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Failure {
                kind: classify_tls(tls),
                detail,
            };
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return Failure {
                    kind: ErrorKind::Timeout,
                    detail,
                };
            }
            saw_io = true;
            // `io::Error::source` skips the wrapped error itself; descend into it explicitly.
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = e.source();
    }
    let kind = match phase {
        Phase::Handshake => ErrorKind::TlsHandshake,
        Phase::Http if saw_io => ErrorKind::Io,
        Phase::Http => ErrorKind::Http,
    };
    Failure { kind, detail }
}

fn classify_tls(err: &rustls::Error) -> ErrorKind {
    match err {
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::NoCertificate,
        ) => ErrorKind::TlsCertificateRejected,
        rustls::Error::InvalidCertificate(_) => ErrorKind::TlsServerCertificate,
        _ => ErrorKind::TlsHandshake,
    }
}

/// "outer: inner: innermost", skipping repeats (hyper and io::Error often repeat the cause).
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    parts.join(": ")
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (Linux); `None`
/// elsewhere. The kernel reports it in USER_HZ ticks, which is 100 on every Linux ABI.
pub(super) fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after it are plain numbers.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 14 is utime
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn certificate_alerts_mean_rejected_client_cert() {
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, alert);
        let failure = classify(&wrapped, Phase::Http);
        assert_eq!(failure.kind, ErrorKind::TlsCertificateRejected);
        assert!(
            failure.detail.contains("CertificateRequired"),
            "{}",
            failure.detail
        );
    }

    #[test]
    fn server_cert_errors_and_other_alerts() {
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, bad);
        assert_eq!(
            classify(&wrapped, Phase::Handshake).kind,
            ErrorKind::TlsServerCertificate
        );
        let other = rustls::Error::AlertReceived(AlertDescription::HandshakeFailure);
        assert_eq!(
            classify(&other, Phase::Handshake).kind,
            ErrorKind::TlsHandshake
        );
    }

    #[test]
    fn plain_io_depends_on_phase() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            classify(&reset, Phase::Handshake).kind,
            ErrorKind::TlsHandshake
        );
        assert_eq!(classify(&reset, Phase::Http).kind, ErrorKind::Io);
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify(&timed_out, Phase::Http).kind, ErrorKind::Timeout);
    }

    #[test]
    fn reads_own_cpu_time() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_time().is_some());
        }
    }
}
