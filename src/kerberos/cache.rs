//! Credentials per (mode, user, SPN), kept until shortly before their tickets end.
//!
//! moka's `try_get_with` runs one loader per key and hands its result to every concurrent
//! caller, so a burst of requests for a user whose ticket is missing makes one KDC exchange.
//! Failures are never stored here: definite refusals are remembered briefly by
//! [`super::refusals`], everything else is asked again on the next request. The cache is
//! bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use super::config::KerberosMode;
use super::error::KdcFailure;
use super::gss::Credential;
use crate::directory::Secret;

/// What a credential is for. A password-mode key carries a hash of the password, so a
/// changed mapping password never reuses the old logon and the cache never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    mode: KerberosMode,
    principal: String,
    spn: Arc<str>,
    password: Option<[u8; 32]>,
}

impl Key {
    /// The key for a request.
    pub fn new(
        mode: KerberosMode,
        principal: &str,
        spn: &Arc<str>,
        password: Option<&Secret>,
    ) -> Self {
        let password = password.map(|p| {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, p.expose().as_bytes());
            let mut out = [0u8; 32];
            out.copy_from_slice(d.as_ref());
            out
        });
        Self {
            mode,
            principal: principal.to_lowercase(),
            spn: Arc::clone(spn),
            password,
        }
    }
}

struct UntilRenewal {
    renew_before: Duration,
}

impl Expiry<Key, Credential> for UntilRenewal {
    fn expire_after_create(&self, _: &Key, value: &Credential, _: Instant) -> Option<Duration> {
        Some(value.lifetime().saturating_sub(self.renew_before))
    }
}

/// The bounded credential cache.
pub struct CredentialCache {
    cache: Cache<Key, Credential>,
}

impl CredentialCache {
    /// At most `capacity` credentials, each dropped `renew_before` ahead of its end.
    pub fn new(capacity: u64, renew_before: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .name("certgate-kerberos")
                .max_capacity(capacity)
                .expire_after(UntilRenewal { renew_before })
                .build(),
        }
    }

    /// The cached credential for `key`, or `load`'s (run once for concurrent callers). The
    /// flag says whether this call ran the loader.
    pub async fn get_or_load<F, Fut>(
        &self,
        key: Key,
        load: F,
    ) -> Result<(Credential, bool), KdcFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Credential, KdcFailure>>,
    {
        let ran = AtomicBool::new(false);
        let cred = self
            .cache
            .try_get_with(key, async {
                ran.store(true, Ordering::Relaxed);
                load().await
            })
            .await
            .map_err(|e: Arc<KdcFailure>| (*e).clone())?;
        Ok((cred, ran.load(Ordering::Relaxed)))
    }
}
