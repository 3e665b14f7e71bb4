//! Kerberos to the backend: the mapped user reaches a Windows-authenticated backend as
//! themselves (`Authorization: Negotiate`), as IIS's certificate mapping ends in a Windows
//! logon.
//!
//! - `s4u`: certgate's service account (protocol transition + constrained delegation to the
//!   backend SPN) gets a ticket from the user to itself (S4U2Self), then from the user to the
//!   backend (S4U2Proxy).
//! - `password`: the user's own TGT from the mapping's password (IIS's `LogonUser`), then a
//!   service ticket.
//!
//! One credential per (user, SPN, mode) is cached ([`cache`]) until shortly before its ticket
//! ends, so the KDC is asked once, not per request; concurrent misses share one KDC exchange.
//! A request that needs a token gets a fresh AP-REQ made from the cached ticket (about 0.15 ms,
//! no KDC): acceptors keep a replay cache, so a token cannot be sent twice. Body-less requests
//! on a backend connection that already accepted the user's token need none (connection-bound
//! authentication, [`crate::forward::bound`]). All GSS-API calls block, so they run on tokio's
//! blocking pool.

pub mod cache;
pub mod config;
pub mod error;
#[cfg(feature = "kerberos")]
mod gss;
#[cfg(not(feature = "kerberos"))]
#[path = "gss_stub.rs"]
mod gss;
pub mod mutual;
pub mod principal;
pub mod process_env;
pub mod refusals;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode};

pub use config::{
    BackendKerberos, KerberosMode, KerberosSettings, RawBackendKerberos, RawKerberos,
};
pub use error::{KdcFailure, Kind, Step};

use crate::directory::Secret;
use cache::{CredentialCache, Key};
use config::ServiceCredential;
use gss::Credential;
use mutual::{MutualFailure, Negotiation, Verified};
use refusals::RefusalCache;

/// `certgate_kerberos_kdc_requests_total{step, outcome}`.
pub const METRIC_KDC_REQUESTS: &str = "certgate_kerberos_kdc_requests_total";
/// `certgate_kerberos_ticket_cache_total{result="hit|miss|refused"}` (`refused`: answered
/// from a remembered KDC refusal, see [`refusals`]).
pub const METRIC_TICKET_CACHE: &str = "certgate_kerberos_ticket_cache_total";

/// `certgate_kerberos_mutual_auth_total{result}`: backend replies verified, without a token,
/// 401, or failed (see [`mutual`]).
pub const METRIC_MUTUAL_AUTH: &str = "certgate_kerberos_mutual_auth_total";

/// `certgate_kerberos_backend_auth_total{how}`: `token` (a fresh token was made), `connection`
/// (sent without one on a connection that carries the user's logon), `retry` (such a request got
/// a Negotiate 401 and was resent with a token).
pub const METRIC_BACKEND_AUTH: &str = "certgate_kerberos_backend_auth_total";

/// Counters for tests and `explain`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KerberosStats {
    /// KDC exchanges started (service TGT, S4U, password logons), successful or not.
    pub kdc_requests: u64,
    /// Requests served from a cached credential.
    pub cache_hits: u64,
    /// Requests refused from a remembered KDC refusal, without asking the KDC.
    pub refusal_hits: u64,
    /// Backend responses whose Negotiate token completed mutual authentication.
    pub mutual_verified: u64,
    /// Backend responses withheld because mutual authentication failed.
    pub mutual_failed: u64,
    /// Negotiate tokens made (one per request that carried one).
    pub tokens: u64,
    /// Requests sent without a token on a connection that carries the user's logon.
    pub bound_requests: u64,
    /// Of those, the ones the backend answered with a Negotiate 401, resent with a token.
    pub bound_retries: u64,
}

/// How a request authenticated to the backend, for [`Kerberos::count_backend_auth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendAuth {
    /// A fresh token.
    Token = 0,
    /// The connection's logon, no token.
    Connection,
    /// Resent with a token after the backend refused the connection's logon.
    Retry,
}

/// The Kerberos client of one configuration.
pub struct Kerberos {
    settings: KerberosSettings,
    service: tokio::sync::Mutex<Option<Credential>>,
    users: CredentialCache,
    refusals: RefusalCache,
    kdc_requests: AtomicU64,
    cache_hits: AtomicU64,
    refusal_hits: AtomicU64,
    mutual_verified: AtomicU64,
    mutual_failed: AtomicU64,
    /// Indexed by [`BackendAuth`].
    backend_auth: [AtomicU64; 3],
    /// `certgate_kerberos_ticket_cache_total` handles (hit, miss), taken on first use: the
    /// recorder is installed after the first configuration load, and a handle skips the
    /// per-call key hashing of `counter!` on the request path.
    cache_metrics: std::sync::OnceLock<[metrics::Counter; 3]>,
    /// `certgate_kerberos_mutual_auth_total` handles by [`Verified`] (as `usize`).
    mutual_metrics: std::sync::OnceLock<[metrics::Counter; 3]>,
    /// `certgate_kerberos_backend_auth_total` handles by [`BackendAuth`].
    backend_auth_metrics: std::sync::OnceLock<[metrics::Counter; 3]>,
}

impl std::fmt::Debug for Kerberos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kerberos")
            .field("realm", &self.settings.realm)
            .field("principal", &self.settings.principal)
            .finish_non_exhaustive()
    }
}

impl Kerberos {
    /// A client for validated settings; nothing is contacted until the first request.
    pub fn new(settings: KerberosSettings) -> Self {
        Self {
            users: CredentialCache::new(settings.cache_capacity, settings.renew_before),
            refusals: RefusalCache::new(settings.cache_capacity, settings.negative_cache_ttl),
            settings,
            service: tokio::sync::Mutex::new(None),
            kdc_requests: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            refusal_hits: AtomicU64::new(0),
            mutual_verified: AtomicU64::new(0),
            mutual_failed: AtomicU64::new(0),
            backend_auth: Default::default(),
            cache_metrics: std::sync::OnceLock::new(),
            mutual_metrics: std::sync::OnceLock::new(),
            backend_auth_metrics: std::sync::OnceLock::new(),
        }
    }

    /// The validated `[kerberos]`.
    pub fn settings(&self) -> &KerberosSettings {
        &self.settings
    }

    /// Counters so far.
    pub fn stats(&self) -> KerberosStats {
        KerberosStats {
            kdc_requests: self.kdc_requests.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            refusal_hits: self.refusal_hits.load(Ordering::Relaxed),
            mutual_verified: self.mutual_verified.load(Ordering::Relaxed),
            mutual_failed: self.mutual_failed.load(Ordering::Relaxed),
            tokens: self.backend_auth[BackendAuth::Token as usize].load(Ordering::Relaxed),
            bound_requests: self.backend_auth[BackendAuth::Connection as usize]
                .load(Ordering::Relaxed),
            bound_retries: self.backend_auth[BackendAuth::Retry as usize].load(Ordering::Relaxed),
        }
    }

    /// Counts one request's way of authenticating to the backend.
    pub fn count_backend_auth(&self, how: BackendAuth) {
        self.backend_auth[how as usize].fetch_add(1, Ordering::Relaxed);
        let counters = self.backend_auth_metrics.get_or_init(|| {
            ["token", "connection", "retry"]
                .map(|h| metrics::counter!(METRIC_BACKEND_AUTH, "how" => h))
        });
        counters[how as usize].increment(1);
    }

    /// The `Authorization` value for one request of `principal` to `target`: a fresh SPNEGO
    /// token from the cached credential, fetching the credential first on a miss, with the
    /// context that verifies the backend's reply ([`Self::verify_reply`]). `password` is the
    /// mapping's, needed for mode `password`.
    pub async fn authorization(
        &self,
        principal: &str,
        target: &BackendKerberos,
        password: Option<&Secret>,
    ) -> Result<Negotiation, KdcFailure> {
        let password = match (target.mode, password) {
            (KerberosMode::Password, Some(p)) if !p.is_empty() => Some(p.clone()),
            (KerberosMode::Password, _) => {
                return Err(KdcFailure::other(
                    Step::Password,
                    "mode = \"password\" needs the mapping's password_env or password_file",
                ));
            }
            (KerberosMode::S4u, _) => None,
        };
        let key = Key::new(target.mode, principal, &target.spn, password.as_ref());
        let [hit, miss, refused] = self.cache_metrics.get_or_init(|| {
            ["hit", "miss", "refused"]
                .map(|r| metrics::counter!(METRIC_TICKET_CACHE, "result" => r))
        });
        if let Some(refusal) = self.refusals.get(&key).await {
            self.refusal_hits.fetch_add(1, Ordering::Relaxed);
            refused.increment(1);
            return Err(refusal);
        }
        let loaded = self
            .users
            .get_or_load(key.clone(), || self.load(principal, target, password))
            .await;
        let (cred, loaded) = match loaded {
            Ok(found) => found,
            Err(failure) => {
                self.refusals.remember(key, &failure).await;
                return Err(failure);
            }
        };
        if !loaded {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        if loaded { miss } else { hit }.increment(1);
        let spn = Arc::clone(&target.spn);
        let (token, pending) =
            blocking(Step::ServiceTicket, move || gss::start(&cred, &spn)).await?;
        let value = format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(token)
        );
        let header = HeaderValue::from_str(&value)
            .map_err(|_| KdcFailure::other(Step::ServiceTicket, "token is not a header value"))?;
        self.count_backend_auth(BackendAuth::Token);
        Ok(Negotiation { header, pending })
    }

    /// Checks the backend's response to `negotiation`'s request (see [`mutual`]): `Ok` when it
    /// may be passed on. `required` is the scope's `require_mutual_auth`.
    pub async fn verify_reply(
        &self,
        negotiation: Negotiation,
        status: StatusCode,
        headers: &HeaderMap,
        required: bool,
    ) -> Result<Verified, MutualFailure> {
        let result = match mutual::reply_token(status, headers, required) {
            Err(e) => Err(e),
            Ok(None) if status == StatusCode::UNAUTHORIZED => Ok(Verified::Refused),
            Ok(None) => Ok(Verified::NoToken),
            Ok(Some(token)) => {
                let pending = negotiation.pending;
                tokio::task::spawn_blocking(move || gss::finish(pending, &token))
                    .await
                    .map_err(|e| MutualFailure::Rejected(format!("GSS-API worker failed: {e}")))
                    .and_then(|r| r.map_err(MutualFailure::Rejected))
                    .map(|()| Verified::Mutual)
            }
        };
        let counters = self.mutual_metrics.get_or_init(|| {
            [Verified::Mutual, Verified::NoToken, Verified::Refused]
                .map(|v| v.as_str())
                .map(|r| metrics::counter!(METRIC_MUTUAL_AUTH, "result" => r))
        });
        match &result {
            Ok(verified) => {
                if *verified == Verified::Mutual {
                    self.mutual_verified.fetch_add(1, Ordering::Relaxed);
                }
                counters[*verified as usize].increment(1);
            }
            Err(_) => {
                self.mutual_failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(METRIC_MUTUAL_AUTH, "result" => "failed").increment(1);
            }
        }
        result
    }

    /// One KDC exchange for a user: S4U2Self (or the password logon), then the service ticket,
    /// so a refused delegation fails here and is never cached.
    async fn load(
        &self,
        principal: &str,
        target: &BackendKerberos,
        password: Option<Secret>,
    ) -> Result<Credential, KdcFailure> {
        let service = match target.mode {
            KerberosMode::S4u => Some(self.service_credential().await?),
            KerberosMode::Password => None,
        };
        let (principal, spn) = (principal.to_owned(), Arc::clone(&target.spn));
        let step = match target.mode {
            KerberosMode::S4u => Step::S4u2Self,
            KerberosMode::Password => Step::Password,
        };
        self.kdc_requests.fetch_add(1, Ordering::Relaxed);
        let result = blocking(step, move || {
            let cred = match (&service, &password) {
                (Some(service), _) => gss::impersonate(service, &principal)?,
                (None, Some(pw)) => gss::from_password(&principal, pw.expose(), Step::Password)?,
                (None, None) => return Err(KdcFailure::other(Step::Password, "no password")),
            };
            gss::token(&cred, &spn)?;
            Ok(cred)
        })
        .await;
        count(step, &result);
        result
    }

    /// The service account's TGT, acquired on first use and again shortly before it ends.
    async fn service_credential(&self) -> Result<Credential, KdcFailure> {
        let mut held = self.service.lock().await;
        if let Some(cred) = held.as_ref()
            && cred.lifetime() > self.settings.renew_before
        {
            return Ok(cred.clone());
        }
        let principal = self.settings.principal.clone();
        let credential = self.settings.credential.clone();
        self.kdc_requests.fetch_add(1, Ordering::Relaxed);
        let result = blocking(Step::Service, move || match &credential {
            ServiceCredential::Keytab(path) => {
                let expected = process_env::client_ktname(path);
                if std::env::var("KRB5_CLIENT_KTNAME").ok().as_deref() != Some(expected.as_str()) {
                    return Err(KdcFailure::other(
                        Step::Service,
                        format!(
                            "the keytab is read through KRB5_CLIENT_KTNAME, which is not \
                             {expected} (certgate run sets it at start; a changed keytab path \
                             takes a restart)"
                        ),
                    ));
                }
                gss::service_from_keytab(&principal)
            }
            ServiceCredential::Password(pw) => {
                gss::from_password(&principal, pw.expose(), Step::Service)
            }
        })
        .await;
        count(Step::Service, &result);
        let cred = result?;
        *held = Some(cred.clone());
        Ok(cred)
    }
}

fn count<T>(step: Step, result: &Result<T, KdcFailure>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.kind.as_str(),
    };
    metrics::counter!(METRIC_KDC_REQUESTS, "step" => step.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Runs a blocking GSS-API call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    step: Step,
    f: impl FnOnce() -> Result<T, KdcFailure> + Send + 'static,
) -> Result<T, KdcFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KdcFailure::other(step, format!("GSS-API worker failed: {e}")))?
}
