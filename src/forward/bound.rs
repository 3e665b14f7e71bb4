//! Connection-bound authentication to the backend: what certgate knows about a backend
//! connection's Kerberos logon, and about whether the backend keeps one at all.
//!
//! IIS keeps a connection authenticated after one Kerberos exchange (`authPersistNonNTLM`,
//! true by default) and Apache mod_auth_gssapi does with `GssapiConnectionBound On`: later
//! requests on that connection need no `Authorization` and run as the same user. certgate's pool
//! already gives each such connection one owner (the principal) for its whole life, so a
//! connection whose token was accepted ([`BoundMark::set`]) can carry that owner's further
//! body-less requests without a new token; the proxy's Kerberos step
//! (`crate::proxy::kerberos_forward`) decides when.
//!
//! A backend that does not keep the logon answers such a request with a Negotiate `401`; the
//! proxy then resends it with a token and calls [`Persistence::not_kept`], so the backend's next
//! requests carry tokens straight away for [`PROBE_AGAIN_AFTER`] instead of paying a wasted
//! round trip each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long a backend seen not keeping connection-bound logons is sent a token with every
/// request before certgate tries without one again (its configuration may have changed).
pub const PROBE_AGAIN_AFTER: Duration = Duration::from_secs(600);

/// Whether one backend connection carries its owner's accepted logon. Shared between the pool
/// entry and the request that sent the token, which sets it once the response checked out.
#[derive(Debug, Clone, Default)]
pub struct BoundMark(Arc<AtomicBool>);

impl BoundMark {
    /// The backend accepted the owner's token on this connection.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the connection authenticated for its owner.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// The connection no longer counts as authenticated (a 401, or a failed check).
    pub fn clear(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Per backend: whether requests without a token are worth trying on authenticated
/// connections.
#[derive(Debug)]
pub struct Persistence {
    epoch: Instant,
    /// Milliseconds after `epoch` until which every request carries a token (0: never set).
    tokens_until_ms: AtomicU64,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            tokens_until_ms: AtomicU64::new(0),
        }
    }
}

impl Persistence {
    /// `false` while the backend is remembered not to keep logons ([`Self::not_kept`]).
    pub fn expected(&self) -> bool {
        let until = self.tokens_until_ms.load(Ordering::Relaxed);
        until == 0 || self.now_ms() >= until
    }

    /// The backend asked for a new token on a connection it had accepted one on: send a
    /// token with every request for [`PROBE_AGAIN_AFTER`].
    pub fn not_kept(&self) {
        let wait = u64::try_from(PROBE_AGAIN_AFTER.as_millis()).unwrap_or(u64::MAX);
        let until = self.now_ms().saturating_add(wait);
        self.tokens_until_ms.store(until.max(1), Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_shared_by_its_clones() {
        let mark = BoundMark::default();
        let pooled = mark.clone();
        assert!(!pooled.is_set());
        mark.set();
        assert!(pooled.is_set());
        pooled.clear();
        assert!(!mark.is_set());
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_does_not_keep_logons_gets_tokens_for_a_while() {
        let p = Persistence::default();
        assert!(p.expected());
        p.not_kept();
        assert!(!p.expected());
        tokio::time::advance(PROBE_AGAIN_AFTER - Duration::from_secs(1)).await;
        assert!(!p.expected());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(p.expected());
    }
}
