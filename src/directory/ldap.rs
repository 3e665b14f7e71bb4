//! Talking to the domain controllers: connections, failover, the service-account pool, and the
//! few operations certgate needs.
//!
//! Two kinds of connection exist and never mix. Service connections are pooled and bound once as
//! the service account; a password check opens its own connection, binds as the user and is
//! dropped, because LDAP bind state belongs to the connection and a user bind on a shared one
//! would silently change who every later search runs as.
//!
//! Every network step has a limit: connect (TCP + TLS/StartTLS) per URL, each operation via
//! `with_timeout` (which ldap3 applies to the *next* operation only, so it is set on every
//! call), and the wait for a pooled connection or a bind slot.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, Pool, PoolError, RecycleError, RecycleResult};
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, ResultEntry, Scope, SearchOptions,
    SearchResult,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::DenyReason;
use super::account::bind_failure_reason;
use super::config::{DirectorySettings, Endpoint, Transport};
use super::stats::Counters;
use crate::secret::Secret;

/// Why the directory could not answer. Never contains a password: bind requests are not part of
/// any message, and LDAP result texts do not echo them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("LDAP operation timed out after {0:?}")]
    Timeout(Duration),
    #[error("no directory connection free within {0:?}")]
    Busy(Duration),
    #[error("service account bind refused by {url}: {text}")]
    ServiceBind { url: String, text: String },
    #[error("directory answered result code {rc}: {text}")]
    Result { rc: u32, text: String },
    #[error("search base {0} does not exist")]
    MissingBase(String),
    #[error("LDAP protocol error: {0}")]
    Protocol(String),
}

impl Failure {
    /// A bounded label for metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Timeout(_) => "timeout",
            Self::Busy(_) => "busy",
            Self::ServiceBind { .. } => "service_bind",
            Self::Result { .. } => "result",
            Self::MissingBase(_) => "config",
            Self::Protocol(_) => "protocol",
        }
    }

    fn from_ldap(e: LdapError, timeout: Duration) -> Self {
        match e {
            LdapError::Timeout { .. } => Self::Timeout(timeout),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// Opens connections, in preference order, skipping URLs that failed recently.
pub(crate) struct Connector {
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    retry_dead_after: Duration,
    /// Per endpoint: skip it until this instant. A URL that black-holes packets would otherwise
    /// cost the full connect timeout on every new connection while a later URL works fine.
    dead_until: Mutex<Vec<Option<Instant>>>,
    counters: Arc<Counters>,
}

impl Connector {
    pub(crate) fn new(settings: &DirectorySettings, counters: Arc<Counters>) -> Self {
        Self {
            endpoints: settings.endpoints.clone(),
            tls: settings.tls.clone(),
            connect_timeout: settings.connect_timeout,
            retry_dead_after: settings.retry_dead_after,
            dead_until: Mutex::new(vec![None; settings.endpoints.len()]),
            counters,
        }
    }

    /// A connection to the first URL that works: live URLs in configured order, then (only if
    /// all of those failed) the ones marked dead, so an outage of every DC still probes each one
    /// and recovery needs no restart.
    pub(crate) async fn connect(&self) -> Result<(Ldap, usize), Failure> {
        let now = Instant::now();
        let (live, dead): (Vec<usize>, Vec<usize>) = {
            let marks = self
                .dead_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (0..self.endpoints.len())
                .partition(|&i| marks.get(i).copied().flatten().is_none_or(|t| t <= now))
        };
        let mut last = None;
        for i in live.into_iter().chain(dead) {
            let Some(endpoint) = self.endpoints.get(i) else {
                continue;
            };
            match self.open(endpoint).await {
                Ok(ldap) => {
                    self.mark(i, None);
                    return Ok((ldap, i));
                }
                Err(e) => {
                    tracing::warn!(url = %endpoint.url, error = %e, "directory server unreachable; trying the next one");
                    self.counters.failure(&e);
                    self.mark(i, Some(Instant::now() + self.retry_dead_after));
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Failure::Protocol("no directory URL configured".into())))
    }

    pub(crate) fn url(&self, index: usize) -> &str {
        self.endpoints.get(index).map_or("", |e| e.url.as_str())
    }

    fn mark(&self, index: usize, until: Option<Instant>) {
        let mut marks = self
            .dead_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = marks.get_mut(index) {
            *slot = until;
        }
    }

    async fn open(&self, endpoint: &Endpoint) -> Result<Ldap, Failure> {
        self.counters.connect();
        let connect_error = |reason: String| Failure::Connect {
            url: endpoint.url.clone(),
            reason,
        };
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.connect_timeout);
        if endpoint.transport != Transport::Plain {
            // Always our own config: without one ldap3 falls back to native roots, and silently to
            // an empty store if any of them fails to load.
            let tls = self
                .tls
                .clone()
                .ok_or_else(|| connect_error("TLS endpoint without a CA configuration".into()))?;
            settings = settings
                .set_config(tls)
                .set_starttls(endpoint.transport == Transport::StartTls);
        }
        // ldap3 bounds TCP connect, StartTLS and the TLS handshake with conn_timeout; the outer
        // timeout is a second guard in case a future version stops doing so.
        let connecting = LdapConnAsync::with_settings(settings, &endpoint.url);
        let (conn, ldap) = tokio::time::timeout(
            self.connect_timeout + Duration::from_millis(100),
            connecting,
        )
        .await
        .map_err(|_| connect_error(format!("timed out after {:?}", self.connect_timeout)))?
        .map_err(|e| match e {
            LdapError::Timeout { .. } => {
                connect_error(format!("timed out after {:?}", self.connect_timeout))
            }
            other => connect_error(other.to_string()),
        })?;
        let url = endpoint.url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(%url, error = %e, "directory connection closed");
            }
        });
        Ok(ldap)
    }
}

/// deadpool manager for service-account connections.
pub(crate) struct ServiceManager {
    connector: Arc<Connector>,
    bind_dn: String,
    bind_password: Secret,
    timeout: Duration,
    counters: Arc<Counters>,
}

impl managed::Manager for ServiceManager {
    type Type = Ldap;
    type Error = Failure;

    async fn create(&self) -> Result<Ldap, Failure> {
        let (mut ldap, index) = self.connector.connect().await?;
        self.counters.service_bind();
        let result = ldap
            .with_timeout(self.timeout)
            .simple_bind(&self.bind_dn, self.bind_password.expose())
            .await
            .map_err(|e| Failure::from_ldap(e, self.timeout))?;
        if result.rc != 0 {
            let e = Failure::ServiceBind {
                url: self.connector.url(index).to_owned(),
                text: format!("rc={} {}", result.rc, result.text.trim_end_matches('\0')),
            };
            tracing::error!(bind_dn = %self.bind_dn, error = %e, "directory service account cannot bind; check bind_dn and its password");
            return Err(e);
        }
        Ok(ldap)
    }

    async fn recycle(&self, ldap: &mut Ldap, _: &Metrics) -> RecycleResult<Failure> {
        if ldap.is_closed() {
            Err(RecycleError::message("connection closed"))
        } else {
            Ok(())
        }
    }
}

/// A parsed search result entry. Values stay bytes: `tokenGroups` and `objectSid` are binary,
/// and guessing per value (as ldap3's `SearchEntry` does) would be wrong for SIDs that happen to
/// be valid UTF-8.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub(crate) dn: String,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// Parses without panicking (ldap3's `SearchEntry::construct` panics on malformed input).
    fn parse(entry: ResultEntry) -> Option<Self> {
        let mut parts = entry.0.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let mut attrs = Vec::new();
        for attr in parts.next()?.expect_constructed()? {
            let mut attr = attr.expect_constructed()?.into_iter();
            let name = String::from_utf8(attr.next()?.expect_primitive()?).ok()?;
            let values = attr
                .next()?
                .expect_constructed()?
                .into_iter()
                .map(|v| v.expect_primitive())
                .collect::<Option<Vec<_>>>()?;
            attrs.push((name, values));
        }
        Some(Self { dn, attrs })
    }

    /// Every value of `name` (case-insensitive, as LDAP attribute names are).
    pub(crate) fn values(&self, name: &str) -> impl Iterator<Item = &[u8]> + Clone {
        self.attrs
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(Vec::as_slice))
    }

    pub(crate) fn str_values(&self, name: &str) -> impl Iterator<Item = &str> + Clone {
        self.values(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
    }

    pub(crate) fn first_str(&self, name: &str) -> Option<&str> {
        self.str_values(name).next()
    }

    pub(crate) fn first_i64(&self, name: &str) -> Option<i64> {
        self.first_str(name)?.trim().parse().ok()
    }
}

/// Entries of one search. Continuation references (AD returns one for `CN=Configuration` on
/// every subtree search from the domain root) are dropped: everything certgate reads lives in
/// the domain partition being searched.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) entries: Vec<Entry>,
    /// The server stopped at the size limit: more entries exist than were returned.
    pub(crate) truncated: bool,
}

/// The operations, over the service pool and the connector.
pub(crate) struct Ops {
    pool: Pool<ServiceManager>,
    connector: Arc<Connector>,
    timeout: Duration,
    user_binds: Semaphore,
    counters: Arc<Counters>,
}

impl Ops {
    pub(crate) fn new(
        settings: &DirectorySettings,
        counters: Arc<Counters>,
    ) -> Result<Self, String> {
        let connector = Arc::new(Connector::new(settings, counters.clone()));
        let manager = ServiceManager {
            connector: connector.clone(),
            bind_dn: settings.bind_dn.clone(),
            bind_password: settings.bind_password.clone(),
            timeout: settings.timeout,
            counters: counters.clone(),
        };
        // Creation is bounded by the connector's own per-URL limits; the wait for a free
        // connection by the operation timeout.
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            pool,
            connector,
            timeout: settings.timeout,
            user_binds: Semaphore::new(settings.max_concurrent_binds),
            counters,
        })
    }

    /// A search as the service account. `size_limit` 0 means the server's limit; with a limit,
    /// reaching it is reported as `truncated`, not as an error. A missing `base` is
    /// [`Failure::MissingBase`] for subtree searches and an empty result for base reads (the
    /// object was deleted).
    pub(crate) async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        size_limit: i32,
    ) -> Result<Found, Failure> {
        // A pooled connection may have died while idle (DC restarted); one retry on a fresh
        // connection hides that. A fresh connection failing is a real outage: no retry.
        for attempt in 0..2 {
            let conn = self.pooled().await?;
            let reused = Object::metrics(&conn).recycle_count > 0;
            let mut ldap = Ldap::clone(&conn);
            self.counters.search();
            let result = ldap
                .with_search_options(SearchOptions::new().sizelimit(size_limit))
                .with_timeout(self.timeout)
                .search(base, scope, filter, attrs)
                .await;
            let SearchResult(raw, result) = match result {
                Ok(r) => r,
                Err(e) => {
                    // The connection's state is unknown (timed out mid-answer, reset): drop it.
                    drop(Object::take(conn));
                    let retry = reused && attempt == 0 && !matches!(e, LdapError::Timeout { .. });
                    let failure = Failure::from_ldap(e, self.timeout);
                    if retry {
                        tracing::debug!(error = %failure, "pooled directory connection failed; retrying on a new one");
                        continue;
                    }
                    return Err(failure);
                }
            };
            return match result.rc {
                0 | 4 => {
                    let mut entries = Vec::with_capacity(raw.len());
                    for entry in raw {
                        if entry.is_ref() || entry.is_intermediate() {
                            continue;
                        }
                        entries.push(
                            Entry::parse(entry).ok_or_else(|| {
                                Failure::Protocol("malformed search entry".into())
                            })?,
                        );
                    }
                    Ok(Found {
                        entries,
                        truncated: result.rc == 4,
                    })
                }
                32 if scope == Scope::Base => Ok(Found::default()),
                32 => Err(Failure::MissingBase(base.to_owned())),
                rc => {
                    drop(Object::take(conn));
                    Err(Failure::Result {
                        rc,
                        text: result.text.trim_end_matches('\0').to_owned(),
                    })
                }
            };
        }
        Err(Failure::Protocol(
            "directory connection failed twice".into(),
        ))
    }

    /// A simple bind as `dn` with `password`, on a connection of its own that is closed
    /// afterwards. `Ok(Err(reason))` is AD's verdict on the credentials; `Err` means no verdict.
    pub(crate) async fn user_bind(
        &self,
        dn: &str,
        password: &Secret,
    ) -> Result<Result<(), DenyReason>, Failure> {
        let _permit = tokio::time::timeout(self.timeout, self.user_binds.acquire())
            .await
            .map_err(|_| Failure::Busy(self.timeout))?
            .map_err(|_| Failure::Protocol("bind limiter closed".into()))?;
        let (mut ldap, _) = self.connector.connect().await?;
        self.counters.user_bind();
        let result = ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password.expose())
            .await
            .map_err(|e| Failure::from_ldap(e, self.timeout));
        // Best effort; dropping the last handle closes the connection anyway.
        let _ = ldap.with_timeout(Duration::from_secs(1)).unbind().await;
        let result = result?;
        match result.rc {
            0 => Ok(Ok(())),
            49 => Ok(Err(bind_failure_reason(&result.text))),
            rc => Err(Failure::Result {
                rc,
                text: result.text.trim_end_matches('\0').to_owned(),
            }),
        }
    }

    async fn pooled(&self) -> Result<Object<ServiceManager>, Failure> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(failure) => failure,
            PoolError::Timeout(_) => Failure::Busy(self.timeout),
            other => Failure::Protocol(other.to_string()),
        })
    }
}
