//! State that outlives one connection and is shared across layers: the current configuration
//! and lifecycle flags (read by the accept loops, the admin endpoints and the reloader), and the
//! per-connection in-flight request count (kept by the proxy, read by graceful shutdown).
//!
//! It lives here, below `server`, `admin` and `proxy`, so that none of them depends on another
//! for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::Runtime;
use crate::tls::server::ResumptionKeys;

/// State shared by the accept loops, the admin endpoints and the reloader.
pub struct Shared {
    pub(crate) runtime: ArcSwap<Runtime>,
    /// Resumption keys kept across reloads.
    pub resumption: Arc<ResumptionKeys>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) ready: AtomicBool,
    pub(crate) connections: Arc<Semaphore>,
}

impl Shared {
    /// The configuration new connections use.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Listeners are bound, a configuration is loaded, and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Counts a connection's requests from arrival until their response body is done.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Starts counting one request.
    pub fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
