//! `certgate bench`: an mTLS load generator for any HTTPS endpoint that wants a client
//! certificate, ours or anyone else's.
//!
//! General-purpose HTTP load tools either cannot present a client certificate (wrk, h2load, hey)
//! or cannot separate the three costs an mTLS front end has: full handshakes (public-key work on
//! both sides plus chain verification), resumed handshakes (cheaper, but TLS 1.3 still does an
//! ECDHE), and requests on an established connection (symmetric crypto and HTTP only). Each
//! [`Mode`] isolates one of them, so capacity planning can use the right number.
//!
//! The run is bounded by time and optionally by a request count, and stops by itself. Each
//! worker keeps its own log-linear latency histogram and counters and hands them back at the end;
//! the only shared state on the hot path is two relaxed atomic counters for the progress line.

mod histogram;
mod tls;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::{CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Uri};
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// What each request costs the server, i.e. what the run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum Mode {
    /// New TCP connection and full TLS handshake (resumption off) for every request.
    Handshake,
    /// New TCP connection per request, resuming a TLS session from a store shared by all
    /// workers; the summary reports how many handshakes actually resumed.
    Resume,
    /// `-c` persistent connections, requests back to back; reconnects when the server closes.
    Keepalive,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Resume => "resume",
            Self::Keepalive => "keepalive",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Restricts the offered TLS versions (default: both 1.3 and 1.2, server's choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 only; its ticket resumption skips the key exchange and is much cheaper.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// Command-line arguments of `certgate bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Target URL; must be https://. Its host is the SNI and Host header unless overridden.
    pub url: String,
    /// Client certificate chain (PEM, leaf first).
    #[arg(long)]
    pub cert: PathBuf,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long)]
    pub key: PathBuf,
    /// CA certificates (PEM) that the server certificate must chain to. There is deliberately
    /// no fallback to system roots: a benchmark should fail loudly when pointed at the wrong
    /// server.
    #[arg(long, required_unless_present = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server certificate chain or name (the handshake signature is still
    /// checked, so the client's work per handshake stays realistic). For measuring only: it
    /// would happily benchmark an impostor.
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// What each request costs: a full handshake, a resumed handshake, or nothing (keep-alive).
    #[arg(long, value_enum, default_value_t = Mode::Handshake)]
    pub mode: Mode,
    /// Number of concurrent workers (connections in keepalive mode).
    #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// How long to run, in seconds ("10", "0.5") or humantime ("2m"). In-flight requests are
    /// abandoned when it ends.
    #[arg(short = 'd', long, default_value = "10", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests (whichever of -n and -d comes first).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Per-request deadline covering connect, handshake and the full response.
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    pub timeout: Duration,
    /// SNI to send instead of the URL host (also used to verify the server certificate).
    #[arg(long)]
    pub servername: Option<String>,
    /// Connect to this address instead of resolving the URL host (like curl --connect-to).
    #[arg(long, value_name = "ADDR")]
    pub connect_to: Option<SocketAddr>,
    /// HTTP method; the request never has a body.
    #[arg(long, default_value = "GET", value_parser = parse_method)]
    pub method: Method,
    /// Extra request header, "Name: value"; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Offer only this TLS version.
    #[arg(long, value_enum)]
    pub tls_version: Option<TlsVersion>,
    /// Key-exchange groups to offer, in preference order, comma-separated (x25519, p256, p384,
    /// x25519mlkem768). Default: rustls' list, which starts with the post-quantum hybrid
    /// X25519MLKEM768. Pin one group when comparing servers that differ in PQ support, or the
    /// comparison measures the key exchange rather than the server.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    pub kx_groups: Vec<String>,
    /// Print the summary as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// No live progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_bytes(s.as_bytes()).map_err(|e| e.to_string())
}

/// Why a run could not start. Failures of individual requests are not errors: they are
/// counted in [`Summary::errors`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header given with -H is not "Name: value".
    #[error("invalid header {0:?}: expected \"Name: value\"")]
    Header(String),
    /// The SNI is neither a DNS name nor an IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// Neither --ca nor --insecure was given.
    #[error("no server trust: pass --ca FILE, or --insecure to skip server verification")]
    NoTrust,
    /// Resolving the URL host failed.
    #[error("cannot resolve {host}")]
    Resolve {
        /// Host and port looked up.
        host: String,
        /// Resolver error.
        #[source]
        source: std::io::Error,
    },
    /// The URL host resolved to no address.
    #[error("{0} resolved to no address")]
    NoAddress(String),
    /// A PEM file could not be read.
    #[error("cannot read {path}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Reader error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{0}: no certificate found")]
    NoCertificates(PathBuf),
    /// The CA file is unusable as a trust store.
    #[error("{path}: {added} usable and {ignored} unparsable CA certificates")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Certificates accepted as trust anchors.
        added: usize,
        /// Certificates that could not be parsed.
        ignored: usize,
    },
    /// --kx-groups names a group the provider does not have.
    #[error("unknown key-exchange group {name:?}; available: {available}")]
    KxGroup {
        /// The name as given.
        name: String,
        /// What the provider offers.
        available: String,
    },
    /// rustls rejected the client configuration (for example a key that does not match).
    #[error("TLS client configuration")]
    Tls(#[source] rustls::Error),
    /// A worker task died (a bug; the run's numbers would be incomplete).
    #[error("load generator worker failed")]
    Worker(#[source] tokio::task::JoinError),
}

/// Why one request failed. `Ord` so summaries list kinds in a stable order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable, out of ports).
    Connect,
    /// The TLS handshake failed for a reason other than certificates (protocol, version,
    /// cipher mismatch, or the connection dropping mid-handshake).
    TlsHandshake,
    /// The server refused our client certificate (a certificate-related alert). With TLS 1.3
    /// this arrives after the client considers the handshake done, while reading the response.
    /// Servers that answer an HTTP error instead (nginx: 400) show up as [`Self::Status`].
    TlsCertificateRejected,
    /// We refused the server's certificate (chain or name did not verify against --ca).
    TlsServerCertificate,
    /// A complete response with a non-2xx status.
    Status(u16),
    /// The request did not finish within --timeout.
    Timeout,
    /// The connection failed after the handshake (reset, unexpected EOF).
    Io,
    /// The response was not valid HTTP/1.1.
    Http,
}

impl ErrorKind {
    /// Stable machine-readable name, used as the JSON key.
    pub fn key(self) -> String {
        match self {
            Self::Connect => "connect".into(),
            Self::TlsHandshake => "tls_handshake".into(),
            Self::TlsCertificateRejected => "tls_certificate_rejected".into(),
            Self::TlsServerCertificate => "tls_server_certificate".into(),
            Self::Status(code) => format!("status_{code}"),
            Self::Timeout => "timeout".into(),
            Self::Io => "io".into(),
            Self::Http => "http".into(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::TlsHandshake => f.write_str("tls handshake"),
            Self::TlsCertificateRejected => f.write_str("tls certificate rejected"),
            Self::TlsServerCertificate => f.write_str("tls server certificate"),
            Self::Status(code) => write!(f, "http status {code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Io => f.write_str("io"),
            Self::Http => f.write_str("http protocol"),
        }
    }
}

/// Latency of successful (2xx) requests. In handshake and resume modes it spans connect,
/// handshake, request and the full response; in keepalive mode only the request and response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Fastest request.
    pub min: Duration,
    /// Mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
}

/// Result of one run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Target URL.
    pub url: String,
    /// Mode the run used.
    pub mode: Mode,
    /// Workers (connections in keepalive mode).
    pub concurrency: u32,
    /// Wall time from the first request to the end of the run.
    pub elapsed: Duration,
    /// Requests that finished, successfully or not (abandoned in-flight requests excluded).
    pub requests: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first error message seen for each kind, to tell an expired CA from a typo.
    pub error_examples: BTreeMap<ErrorKind, String>,
    /// TLS handshakes completed.
    pub connections: u64,
    /// Of those, how many resumed a session.
    pub resumed: u64,
    /// Of those, how many needed a HelloRetryRequest: the server accepted none of our key
    /// shares (for example an OpenSSL without X25519MLKEM768 and no X25519 share), which costs a
    /// round trip and a second key generation per handshake.
    pub hello_retries: u64,
    /// Protocol version, cipher suite and key-exchange group of the first handshake, e.g.
    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
    pub negotiated: Option<String>,
    /// Latency of the 2xx requests.
    pub latency: Latency,
    /// CPU time (user + system) the generator itself used during the run, if the platform
    /// tells (Linux). Close to `elapsed` × usable cores means the generator, not the server,
    /// was the limit.
    pub client_cpu: Option<Duration>,
}

impl Summary {
    /// Successful (2xx) requests per second.
    pub fn rate(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }

    /// Failed requests, all kinds.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Fraction of handshakes that resumed, 0.0..=1.0.
    pub fn resumed_fraction(&self) -> f64 {
        if self.connections == 0 {
            0.0
        } else {
            self.resumed as f64 / self.connections as f64
        }
    }

    /// The summary as a JSON object; durations are in microseconds (`*_us`). Print it with
    /// `{:#}` for the indented form.
    pub fn to_json(&self) -> serde_json::Value {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let errors: serde_json::Map<String, serde_json::Value> = self
            .errors
            .iter()
            .map(|(kind, count)| (kind.key(), json!(count)))
            .collect();
        let examples: serde_json::Map<String, serde_json::Value> = self
            .error_examples
            .iter()
            .map(|(kind, text)| (kind.key(), json!(text)))
            .collect();
        json!({
            "url": self.url,
            "mode": self.mode.as_str(),
            "concurrency": self.concurrency,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": self.requests,
            "ok": self.ok,
            "rate_per_s": self.rate(),
            "errors_total": self.error_count(),
            "errors": errors,
            "error_examples": examples,
            "connections": self.connections,
            "resumed": self.resumed,
            "resumed_fraction": self.resumed_fraction(),
            "hello_retries": self.hello_retries,
            "negotiated": self.negotiated,
            "latency": {
                "min_us": us(self.latency.min),
                "mean_us": us(self.latency.mean),
                "p50_us": us(self.latency.p50),
                "p90_us": us(self.latency.p90),
                "p99_us": us(self.latency.p99),
                "max_us": us(self.latency.max),
            },
            "client_cpu_s": self.client_cpu.map(|d| d.as_secs_f64()),
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} — mode {}, concurrency {}, {:.2} s",
            self.url,
            self.mode,
            self.concurrency,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  requests     {} ({} ok, {} failed)",
            self.requests,
            self.ok,
            self.error_count()
        )?;
        writeln!(f, "  rate         {:.1} req/s (2xx only)", self.rate())?;
        write!(
            f,
            "  handshakes   {} ({} resumed, {:.1} %",
            self.connections,
            self.resumed,
            self.resumed_fraction() * 100.0
        )?;
        if self.hello_retries > 0 {
            write!(f, "; {} needed a HelloRetryRequest", self.hello_retries)?;
        }
        writeln!(f, ")")?;
        if let Some(negotiated) = &self.negotiated {
            writeln!(f, "  tls          {negotiated}")?;
        }
        let l = &self.latency;
        if self.ok == 0 {
            writeln!(f, "  latency      n/a (no successful request)")?;
        } else {
            writeln!(
                f,
                "  latency      p50 {}  p90 {}  p99 {}  max {}  (min {}, mean {})",
                Ms(l.p50),
                Ms(l.p90),
                Ms(l.p99),
                Ms(l.max),
                Ms(l.min),
                Ms(l.mean)
            )?;
        }
        if self.errors.is_empty() {
            writeln!(f, "  errors       none")?;
        } else {
            let mut label = "  errors      ";
            for (kind, count) in &self.errors {
                write!(f, "{label} {kind}: {count}")?;
                if let Some(example) = self.error_examples.get(kind).filter(|e| !e.is_empty()) {
                    write!(f, " (first: {example})")?;
                }
                writeln!(f)?;
                label = "             ";
            }
        }
        if let Some(cpu) = self.client_cpu {
            let share = cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9) * 100.0;
            writeln!(
                f,
                "  client cpu   {:.2} s ({share:.0} % of one core)",
                cpu.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

/// Duration shown in ms with enough digits for sub-millisecond loopback latencies.
struct Ms(Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1e3;
        if ms < 10.0 {
            write!(f, "{ms:.3} ms")
        } else {
            write!(f, "{ms:.1} ms")
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Everything a worker needs, resolved once before the clock starts.
struct Plan {
    mode: Mode,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    method: Method,
    path: Uri,
    headers: HeaderMap,
    timeout: Duration,
}

/// Counters shared by all workers: what the progress line shows and the -n budget.
#[derive(Default)]
struct Shared {
    ok: AtomicU64,
    failed: AtomicU64,
    issued: AtomicU64,
    limit: Option<u64>,
}

impl Shared {
    /// Takes one request from the -n budget; false once it is spent.
    fn claim(&self) -> bool {
        match self.limit {
            None => true,
            Some(limit) => self.issued.fetch_add(1, Ordering::Relaxed) < limit,
        }
    }
}

/// Runs the load described by `args` and returns the merged results. Progress goes to stderr
/// once per second unless `args.quiet`; printing the summary is the caller's job.
pub async fn run(args: &BenchArgs) -> Result<Summary, BenchError> {
    let plan = Arc::new(plan(args).await?);
    let shared = Arc::new(Shared {
        limit: args.requests,
        ..Shared::default()
    });
    let cpu_before = worker::process_cpu_time();
    let start = Instant::now();
    let deadline = start + args.duration;

    let progress = (!args.quiet).then(|| tokio::spawn(progress(shared.clone(), start)));
    let mut workers = JoinSet::new();
    for _ in 0..args.concurrency {
        workers.spawn(worker::run(plan.clone(), shared.clone(), deadline));
    }
    let mut total = worker::Report::default();
    let mut failure = None;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(report) => total.merge(report),
            Err(e) => failure = Some(BenchError::Worker(e)),
        }
    }
    let elapsed = Instant::now().min(deadline) - start;
    if let Some(progress) = progress {
        progress.abort();
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    let client_cpu = cpu_before
        .zip(worker::process_cpu_time())
        .map(|(before, after)| after.saturating_sub(before));

    let h = &total.latency;
    Ok(Summary {
        url: args.url.clone(),
        mode: args.mode,
        concurrency: args.concurrency,
        elapsed,
        requests: total.ok + total.errors.values().sum::<u64>(),
        ok: total.ok,
        errors: total.errors,
        error_examples: total.examples,
        connections: total.connections,
        resumed: total.resumed,
        hello_retries: total.hello_retries,
        negotiated: total.negotiated,
        latency: Latency {
            min: h.min(),
            mean: h.mean(),
            p50: h.quantile(0.50),
            p90: h.quantile(0.90),
            p99: h.quantile(0.99),
            max: h.max(),
        },
        client_cpu,
    })
}

async fn plan(args: &BenchArgs) -> Result<Plan, BenchError> {
    let url_error = |reason: &str| BenchError::Url {
        url: args.url.clone(),
        reason: reason.to_owned(),
    };
    let uri: Uri = args
        .url
        .parse()
        .map_err(|e: http::uri::InvalidUri| url_error(&e.to_string()))?;
    if uri.scheme_str() != Some("https") {
        return Err(url_error("scheme must be https"));
    }
    let authority = uri.authority().ok_or_else(|| url_error("no host"))?.clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(443);
    let path: Uri = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .parse()
        .map_err(|e: http::uri::InvalidUri| url_error(&e.to_string()))?;

    let sni = args.servername.as_deref().unwrap_or(host);
    let server_name =
        ServerName::try_from(sni.to_owned()).map_err(|_| BenchError::ServerName(sni.to_owned()))?;

    let addr = match args.connect_to {
        Some(addr) => addr,
        None => {
            let target = format!("{host}:{port}");
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| BenchError::Resolve {
                    host: target.clone(),
                    source,
                })?
                .next()
                .ok_or(BenchError::NoAddress(target))?
        }
    };

    let mut headers = HeaderMap::new();
    let host_value = HeaderValue::from_str(authority.as_str())
        .map_err(|_| url_error("host is not a valid header value"))?;
    headers.insert(HOST, host_value);
    headers.insert(USER_AGENT, HeaderValue::from_static("certgate-bench"));
    if args.mode != Mode::Keepalive {
        // One request per connection: say so, so the server closes without waiting for us.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    for raw in &args.headers {
        let (name, value) = raw
            .split_once(':')
            .ok_or_else(|| BenchError::Header(raw.clone()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| BenchError::Header(raw.clone()))?;
        let value =
            HeaderValue::from_str(value.trim()).map_err(|_| BenchError::Header(raw.clone()))?;
        headers.insert(name, value);
    }

    let trust = match (&args.ca, args.insecure) {
        (Some(ca), _) => tls::Trust::Roots(ca),
        (None, true) => tls::Trust::Insecure,
        (None, false) => return Err(BenchError::NoTrust),
    };
    let config = tls::client_config(
        trust,
        &args.cert,
        &args.key,
        args.mode,
        args.tls_version,
        &args.kx_groups,
        256,
    )?;

    Ok(Plan {
        mode: args.mode,
        addr,
        server_name,
        connector: TlsConnector::from(Arc::new(config)),
        method: args.method.clone(),
        path,
        headers,
        timeout: args.timeout,
    })
}

/// Prints one line per second: the rate over the last second and the running totals.
async fn progress(shared: Arc<Shared>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last_ok = 0;
    loop {
        let now = tick.tick().await;
        let ok = shared.ok.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        eprintln!(
            "[{:>4.0}s] {:>9} req/s   ok {:>10}   errors {:>8}",
            (now - start).as_secs_f64(),
            ok - last_ok,
            ok,
            failed
        );
        last_ok = ok;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn parses_defaults_and_requires_trust() {
        let cli = Cli::try_parse_from([
            "bench",
            "https://localhost:8443/x?y",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--ca",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(cli.bench.mode, Mode::Handshake);
        assert_eq!(cli.bench.concurrency, 8);
        assert_eq!(cli.bench.duration, Duration::from_secs(10));
        assert_eq!(cli.bench.method, Method::GET);

        let missing = Cli::try_parse_from(["bench", "https://h/", "--cert", "c", "--key", "k"]);
        assert!(missing.is_err());
        let both = Cli::try_parse_from([
            "bench",
            "https://h/",
            "--cert",
            "c",
            "--key",
            "k",
            "--ca",
            "a",
            "--insecure",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn parses_modes_and_durations() {
        let cli = Cli::try_parse_from([
            "bench",
            "https://h/",
            "--cert",
            "c",
            "--key",
            "k",
            "--insecure",
            "--mode",
            "keepalive",
            "-c",
            "3",
            "-d",
            "0.5",
            "--timeout",
            "250ms",
            "--tls-version",
            "1.3",
            "-H",
            "X-A: b",
            "--kx-groups",
            "x25519,p256",
        ])
        .unwrap();
        assert_eq!(cli.bench.mode, Mode::Keepalive);
        assert_eq!(cli.bench.concurrency, 3);
        assert_eq!(cli.bench.duration, Duration::from_millis(500));
        assert_eq!(cli.bench.timeout, Duration::from_millis(250));
        assert_eq!(cli.bench.tls_version, Some(TlsVersion::Tls13));
        assert_eq!(cli.bench.kx_groups, ["x25519", "p256"]);
        assert!(
            Cli::try_parse_from([
                "bench",
                "https://h/",
                "--cert",
                "c",
                "--key",
                "k",
                "--insecure",
                "-c",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn error_kinds_have_stable_keys() {
        assert_eq!(ErrorKind::Status(503).key(), "status_503");
        assert_eq!(
            ErrorKind::TlsCertificateRejected.key(),
            "tls_certificate_rejected"
        );
        assert_eq!(ErrorKind::Status(503).to_string(), "http status 503");
        assert!(ErrorKind::Connect < ErrorKind::Status(200));
    }

    #[test]
    fn summary_renders_text_and_json() {
        let summary = Summary {
            url: "https://localhost/".into(),
            mode: Mode::Resume,
            concurrency: 2,
            elapsed: Duration::from_secs(2),
            requests: 12,
            ok: 10,
            errors: BTreeMap::from([(ErrorKind::Status(500), 2)]),
            error_examples: BTreeMap::new(),
            connections: 12,
            resumed: 9,
            hello_retries: 0,
            negotiated: None,
            latency: Latency {
                p50: Duration::from_micros(1500),
                ..Latency::default()
            },
            client_cpu: Some(Duration::from_millis(500)),
        };
        let text = summary.to_string();
        assert!(text.contains("5.0 req/s"), "{text}");
        assert!(text.contains("http status 500: 2"), "{text}");
        assert!(text.contains("75.0 %"), "{text}");
        let json = summary.to_json();
        assert_eq!(json["errors"]["status_500"], 2);
        assert_eq!(json["rate_per_s"], 5.0);
        assert_eq!(json["latency"]["p50_us"], 1500.0);
        assert_eq!(json["mode"], "resume");
    }

    #[tokio::test]
    async fn rejects_non_https_and_missing_trust() {
        let mut args = Cli::try_parse_from([
            "bench",
            "http://h/",
            "--cert",
            "c",
            "--key",
            "k",
            "--insecure",
        ])
        .unwrap()
        .bench;
        assert!(matches!(run(&args).await, Err(BenchError::Url { .. })));
        args.url = "https://127.0.0.1:1/".into();
        args.insecure = false;
        assert!(matches!(run(&args).await, Err(BenchError::NoTrust)));
        args.insecure = true;
        assert!(matches!(run(&args).await, Err(BenchError::Pem { .. })));
    }
}
