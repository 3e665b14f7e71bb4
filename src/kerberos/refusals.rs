//! Refusals per (mode, user, SPN), remembered for `[kerberos].negative_cache_ttl`.
//!
//! A disabled account or a refused delegation stays refused until someone changes the
//! directory, so a burst of requests from such a user would otherwise cost a KDC exchange each
//! (the credential cache stores only successes). A refusal is remembered for a short time
//! (default 30 s, so a fixed account works again within that) in a cache bounded like the
//! credential cache. Only the KDC's definite answers about the user or the SPN are remembered:
//! clock skew, an unreachable KDC, a realm without a KDC and unclassified GSS-API failures may
//! pass by themselves and are asked again on the next request; so is anything about the service
//! account's own logon, which is not a per-user answer.

use std::time::Duration;

use moka::future::Cache;

use super::cache::Key;
use super::error::{KdcFailure, Kind, Step};

/// Default time a refusal is remembered.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// Whether `failure` is a definite, per-user refusal worth remembering.
pub fn is_refusal(failure: &KdcFailure) -> bool {
    let per_user = matches!(
        failure.step,
        Step::S4u2Self | Step::Password | Step::ServiceTicket
    );
    let definite = matches!(
        failure.kind,
        Kind::PrincipalUnknown
            | Kind::AccountRefused
            | Kind::BadPassword
            | Kind::DelegationRefused
            | Kind::UnknownSpn
    );
    per_user && definite
}

/// The bounded refusal cache; disabled when the TTL is zero.
pub struct RefusalCache {
    cache: Option<Cache<Key, KdcFailure>>,
    ttl: Duration,
}

impl RefusalCache {
    /// At most `capacity` refusals, each for `ttl` (zero: none are remembered).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .name("certgate-kerberos-refusals")
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        Self { cache, ttl }
    }

    /// The remembered refusal for `key`, marked as such for the log line.
    pub async fn get(&self, key: &Key) -> Option<KdcFailure> {
        let mut failure = self.cache.as_ref()?.get(key).await?;
        failure.detail = format!(
            "remembered refusal (negative_cache_ttl {}): {}",
            humantime::format_duration(self.ttl),
            failure.detail
        );
        Some(failure)
    }

    /// Remembers `failure` for `key` when it is a definite refusal.
    pub async fn remember(&self, key: Key, failure: &KdcFailure) {
        if let Some(cache) = &self.cache
            && is_refusal(failure)
        {
            cache.insert(key, failure.clone()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::kerberos::KerberosMode;

    fn failure(step: Step, kind: Kind) -> KdcFailure {
        KdcFailure {
            step,
            kind,
            detail: "KDC said no".into(),
        }
    }

    #[test]
    fn only_definite_per_user_answers_are_refusals() {
        for kind in [
            Kind::PrincipalUnknown,
            Kind::AccountRefused,
            Kind::BadPassword,
            Kind::DelegationRefused,
            Kind::UnknownSpn,
        ] {
            assert!(is_refusal(&failure(Step::S4u2Self, kind)), "{kind:?}");
            assert!(!is_refusal(&failure(Step::Service, kind)), "{kind:?}");
        }
        for kind in [
            Kind::ClockSkew,
            Kind::Unreachable,
            Kind::NoKdcForRealm,
            Kind::Other,
        ] {
            assert!(!is_refusal(&failure(Step::Password, kind)), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn refusals_are_remembered_for_their_ttl_and_transient_failures_never() {
        let spn: Arc<str> = Arc::from("HTTP/app@EXAMPLE.TEST");
        let key = |user: &str| Key::new(KerberosMode::S4u, user, &spn, None);
        let cache = RefusalCache::new(10, Duration::from_millis(300));
        cache
            .remember(key("dora"), &failure(Step::S4u2Self, Kind::AccountRefused))
            .await;
        cache
            .remember(key("eve"), &failure(Step::S4u2Self, Kind::ClockSkew))
            .await;
        let got = cache.get(&key("DORA")).await.unwrap();
        assert_eq!(got.kind, Kind::AccountRefused);
        assert!(
            got.detail
                .starts_with("remembered refusal (negative_cache_ttl 300ms)")
        );
        assert!(cache.get(&key("eve")).await.is_none());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(cache.get(&key("dora")).await.is_none());
        let off = RefusalCache::new(10, Duration::ZERO);
        off.remember(key("dora"), &failure(Step::S4u2Self, Kind::AccountRefused))
            .await;
        assert!(off.get(&key("dora")).await.is_none());
    }
}
