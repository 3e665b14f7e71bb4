//! Listeners, the accept loop, configuration swaps and graceful shutdown.
//!
//! Each connection takes the configuration current at accept time and keeps it until it closes,
//! so a reload never changes the rules under a request in flight. Shutdown stops accepting,
//! asks every connection to finish its in-flight requests, and waits up to a deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Runtime;
use crate::proxy::{self, Connection};
use crate::tls::accept::accept;
use crate::tls::server::ResumptionKeys;

/// State shared by the accept loops and the admin endpoints.
pub struct Shared {
    runtime: ArcSwap<Runtime>,
    /// Resumption keys kept across reloads.
    pub resumption: Arc<ResumptionKeys>,
    shutdown: CancellationToken,
}

impl Shared {
    /// The configuration new connections use.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }
}

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
        let mut listeners = Vec::new();
        for addr in &runtime.server.listen {
            let listener = TcpListener::bind(addr)
                .await
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
            runtime: ArcSwap::from_pointee(runtime),
            resumption,
            shutdown: CancellationToken::new(),
        });
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

    /// Makes `runtime` the configuration for new connections. Listener addresses are fixed at
    /// start; a change to them takes a restart.
    pub fn swap(&self, runtime: Runtime) {
        self.shared.runtime.store(Arc::new(runtime));
    }

    /// Stops accepting, lets in-flight requests finish for up to `deadline`, then returns.
    pub async fn shutdown(self, deadline: Duration) {
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
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tasks: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                tasks.spawn(serve_connection(tcp, peer, Arc::clone(&shared)));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let runtime = shared.runtime();
    let handshake = tokio::time::timeout(runtime.server.handshake_timeout, accept(tcp, &runtime));
    let accepted = tokio::select! {
        () = shared.shutdown.cancelled() => return,
        result = handshake => match result {
            Err(_) => {
                tracing::debug!(%peer, failure = "timeout", "TLS handshake timed out");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, failure = e.label(), error = %e, "TLS handshake failed");
                return;
            }
            Ok(Ok(accepted)) => accepted,
        },
    };
    tracing::debug!(
        %peer,
        site = %accepted.site.name,
        sni = accepted.info.sni.as_deref().unwrap_or("-"),
        tls = accepted.info.version,
        resumed = accepted.info.resumed,
        h2 = accepted.info.h2,
        "TLS connection accepted"
    );
    let header_read_timeout = runtime.server.header_read_timeout;
    let conn = Arc::new(Connection::new(
        Arc::clone(&runtime),
        accepted.site,
        peer,
        accepted.info,
        accepted.client_cert,
    ));
    let service = service_fn(move |req| proxy::handle(Arc::clone(&conn), req));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(accepted.stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = shared.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error during shutdown");
            }
        }
    }
}
