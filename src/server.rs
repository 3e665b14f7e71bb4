//! Listeners, the accept loop, configuration swaps and graceful shutdown.
//!
//! Each connection takes the configuration current at accept time and keeps it until it closes,
//! so a reload never changes the rules under a request in flight. Shutdown stops accepting,
//! asks every connection to finish its in-flight requests, and waits up to a deadline.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ConfigErrors, Runtime};
use crate::metrics as m;
use crate::proxy::{self, Connection};
use crate::tls::accept::accept;
use crate::tls::client_auth::ClientCert;
use crate::tls::server::ResumptionKeys;

mod timers;

use timers::{Activity, Clock, HeadTimer};

/// The shared state, at its historical path.
pub use crate::state::{InFlight, Shared};

/// A started proxy.
pub struct Server {
    shared: Arc<Shared>,
    tasks: TaskTracker,
    /// Bound HTTPS addresses (useful when the config asked for port 0).
    pub https_addrs: Vec<SocketAddr>,
    /// Bound admin address.
    pub admin_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds every listener of `runtime` and starts serving.
    pub async fn start(runtime: Runtime, resumption: Arc<ResumptionKeys>) -> io::Result<Self> {
        // Install the metrics recorder before anything records.
        let _ = m::handle();
        let mut listeners = Vec::new();
        for addr in &runtime.server.listen {
            let listener = https_listener(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            listeners.push(listener);
        }
        let admin = match runtime.server.admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {addr} (admin): {e}"))
            })?),
            None => None,
        };
        let shared = Arc::new(Shared {
            connections: Arc::new(Semaphore::new(runtime.server.max_connections)),
            runtime: ArcSwap::from_pointee(runtime),
            resumption,
            shutdown: CancellationToken::new(),
            ready: AtomicBool::new(false),
            denials: Arc::default(),
            reloads: crate::reload_history::ReloadHistory::default(),
            listening: listeners
                .iter()
                .filter_map(|l| l.local_addr().ok())
                .collect(),
            reloading: std::sync::Mutex::new(()),
        });
        shared.reloads.record("initial", 0);
        let tasks = TaskTracker::new();
        let mut https_addrs = Vec::new();
        for listener in listeners {
            https_addrs.push(listener.local_addr()?);
            tasks.spawn(accept_loop(listener, Arc::clone(&shared), tasks.clone()));
        }
        let admin_addr = match admin {
            Some(listener) => {
                let addr = listener.local_addr()?;
                tasks.spawn(crate::admin::serve(
                    listener,
                    Arc::clone(&shared),
                    shared.shutdown.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        for addr in &https_addrs {
            tracing::info!(%addr, "listening (https)");
        }
        if let Some(addr) = admin_addr {
            tracing::info!(%addr, "listening (admin)");
        }
        shared.ready.store(true, Ordering::Relaxed);
        Ok(Self {
            shared,
            tasks,
            https_addrs,
            admin_addr,
        })
    }

    /// Shared state (current configuration).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Makes `runtime` the configuration for new connections. Listener addresses and
    /// `max_connections` are fixed at start; changing them takes a restart.
    pub fn swap(&self, runtime: Runtime) {
        self.shared.runtime.store(Arc::new(runtime));
    }

    /// Loads `path` and, only if it is valid as a whole, makes it current (see
    /// [`Shared::reload`]).
    pub fn reload(&self, path: &Path) -> Result<(), ConfigErrors> {
        self.shared.reload(path)
    }

    /// Reloads `path` whenever it or a file it names changes, checking every `interval` of the
    /// current configuration. Editors and Kubernetes replace files by rename, so files are
    /// compared by modification time, size and inode rather than watched by handle.
    pub async fn watch(&self, path: PathBuf) {
        let mut seen = fingerprint(&self.shared.runtime().files);
        loop {
            let Some(interval) = self.shared.runtime().server.watch_interval else {
                // Watching was switched off by a reload; check again later in case it returns.
                tokio::select! {
                    () = self.shared.shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            };
            tokio::select! {
                () = self.shared.shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let files = self.shared.runtime().files.clone();
            let now = fingerprint(&files);
            if now == seen {
                continue;
            }
            // Let a writer finish (several files are often replaced together).
            tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
            tracing::info!("a watched file changed; reloading");
            let _ = self.reload(&path);
            seen = fingerprint(&self.shared.runtime().files);
        }
    }

    /// Stops accepting, lets in-flight requests finish for up to `deadline`, then returns.
    pub async fn shutdown(self, deadline: Duration) {
        self.shared.ready.store(false, Ordering::Relaxed);
        self.shared.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?deadline,
                "connections still open after the shutdown deadline; closing them"
            );
        }
        // Every connection has ended, so every access record is queued: write them out.
        crate::w3c::flush().await;
    }
}

type Fingerprint = Vec<Option<(SystemTime, u64, u64)>>;

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f).ok().map(|md| {
                (
                    md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    md.len(),
                    md.ino(),
                )
            })
        })
        .collect()
}

/// Pending connections the kernel keeps per listener (it caps this at `net.core.somaxconn`);
/// the standard library's 128 is small for a burst of reconnecting clients.
const LISTEN_BACKLOG: u32 = 1024;

/// A client-facing listener. Its sockets get `TCP_NODELAY` (every record and response is
/// written whole, so Nagle would only delay the last segment) from the listening socket, which
/// Linux copies to each accepted one: a system call fewer per connection.
fn https_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart can bind while old connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tasks: TaskTracker) {
    // The address connections arrive on, unless the listener takes any local address.
    let bound = listener
        .local_addr()
        .ok()
        .filter(|a| !a.ip().is_unspecified());
    loop {
        // Waiting for a slot before accepting leaves extra clients in the kernel backlog
        // instead of accepting connections certgate cannot serve.
        let permit = if let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() {
            permit
        } else {
            metrics::gauge!(m::CONNECTIONS_WAITING).set(1.0);
            let permit = tokio::select! {
                () = shared.shutdown.cancelled() => return,
                permit = Arc::clone(&shared.connections).acquire_owned() => permit,
            };
            metrics::gauge!(m::CONNECTIONS_WAITING).set(0.0);
            match permit {
                Ok(p) => p,
                Err(_) => return,
            }
        };
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let shared = Arc::clone(&shared);
                tasks.spawn(async move {
                    serve_connection(tcp, peer, bound, shared).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Keeps the active-connections gauge right on every exit path.
struct ActiveConnection;

impl ActiveConnection {
    fn open() -> Self {
        m::active_connections().increment(1.0);
        Self
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        m::active_connections().decrement(1.0);
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    bound: Option<SocketAddr>,
    shared: Arc<Shared>,
) {
    // Elsewhere the accepted socket may not inherit the listener's TCP_NODELAY.
    #[cfg(not(target_os = "linux"))]
    let _ = tcp.set_nodelay(true);
    let local = bound.or_else(|| tcp.local_addr().ok());
    let runtime = shared.runtime();
    let handshake = tokio::time::timeout(
        runtime.server.handshake_timeout,
        accept(tcp, |sni| runtime.site_for_sni(sni).cloned()),
    );
    let accepted = tokio::select! {
        () = shared.shutdown.cancelled() => return,
        result = handshake => match result {
            Err(_) => {
                metrics::counter!(m::TLS_HANDSHAKES, "site" => "-", "outcome" => "timeout",
                    "version" => "-", "kind" => "-").increment(1);
                tracing::debug!(%peer, failure = "timeout", "TLS handshake timed out");
                return;
            }
            Ok(Err(e)) => {
                metrics::counter!(m::TLS_HANDSHAKES, "site" => "-", "outcome" => e.label(),
                    "version" => "-", "kind" => "-").increment(1);
                tracing::debug!(%peer, failure = e.label(), error = %e, "TLS handshake failed");
                return;
            }
            Ok(Ok(accepted)) => accepted,
        },
    };
    // Revocation after the handshake deadline: it may wait for a CRL or OCSP fetch, bounded by
    // the site's url_retrieval_timeout rather than the handshake timeout.
    let mut accepted = accepted;
    let verdict = std::mem::replace(&mut accepted.client_cert, ClientCert::Absent);
    let chain = accepted.stream.get_ref().1.peer_certificates();
    accepted.client_cert = accepted
        .site
        .client_auth
        .check_revocation(chain, verdict)
        .await;
    let _active = ActiveConnection::open();
    let site_metrics = &accepted.site.metrics;
    site_metrics.handshake(accepted.info.version, accepted.info.resumed);
    match &accepted.client_cert {
        ClientCert::Absent => site_metrics.client_certificate("absent"),
        ClientCert::Valid(_) => site_metrics.client_certificate("valid"),
        ClientCert::Rejected { status, .. } => site_metrics.client_certificate(&status.code()),
    }
    tracing::debug!(
        %peer,
        site = %accepted.site.name,
        sni = accepted.info.sni.as_deref().unwrap_or("-"),
        tls = accepted.info.version,
        resumed = accepted.info.resumed,
        h2 = accepted.info.h2,
        "TLS connection accepted"
    );
    let settings = &runtime.server;
    let (header_read_timeout, idle_timeout, max_header_bytes) = (
        settings.header_read_timeout,
        settings.idle_timeout,
        settings.max_header_bytes,
    );
    let conn = Arc::new(
        Connection::new(
            Arc::clone(&runtime),
            accepted.site,
            peer,
            accepted.info,
            accepted.client_cert,
        )
        .attach(local, Some(Arc::clone(&shared.denials))),
    );
    let in_flight = conn.in_flight();
    let service = service_fn(move |req| proxy::handle(Arc::clone(&conn), req));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let clock = Clock::new();
    builder
        .http1()
        .timer(HeadTimer {
            clock: Arc::clone(&clock),
            header_read_timeout,
            idle_timeout,
        })
        .header_read_timeout(header_read_timeout)
        .max_buf_size(max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256);
    let releaser = accepted.stream.get_ref().0.releaser();
    let activity = Activity::new(accepted.stream, Arc::clone(&clock));
    // The first response leaves with what the same poll writes after it (closing: close_notify).
    let connection = releaser.release_after_poll(
        builder.serve_connection_with_upgrades(TokioIo::new(activity), service),
    );
    tokio::pin!(connection);
    // HTTP/1 waiting for a head is also closed by the head timer; this covers HTTP/2 and a
    // connection whose version was never detected.
    let idle = async {
        loop {
            let deadline = clock.last_activity() + idle_timeout;
            if Instant::now() >= deadline && in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline.max(Instant::now() + Duration::from_millis(100)))
                .await;
        }
    };
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        () = shared.shutdown.cancelled() => {}
        () = idle => tracing::debug!(%peer, "closing idle connection"),
    }
    connection.as_mut().task().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error while closing");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_connections_start_without_nagle() {
        for any in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = https_listener(any.parse().unwrap()) else {
                continue; // no IPv6 loopback here
            };
            let addr = listener.local_addr().unwrap();
            let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
            let (accepted, _) = accepted.unwrap();
            assert!(
                accepted.nodelay().unwrap(),
                "{any}: inherited from the listener"
            );
            assert!(
                !client.unwrap().nodelay().unwrap(),
                "{any}: a plain socket has Nagle on"
            );
        }
    }
}
