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

mod args;
mod histogram;
mod summary;
mod tls;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::{CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Uri};
use rustls::pki_types::ServerName;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

pub use args::{BenchArgs, Mode, TlsVersion};
pub use summary::{ErrorKind, Latency, Summary};

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
