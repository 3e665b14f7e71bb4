//! Active Directory checks over LDAP: what IIS gets from `LogonUser` and the DS mapper.
//!
//! IIS logs every mapped account on with `LogonUser`, so a disabled account, a lockout or a
//! changed password shuts the user out; with the AD mapper it finds the account through
//! `altSecurityIdentities`. [`Directory`] does the same against AD over LDAP(S):
//!
//! - [`Directory::check_account`]: the account exists, is enabled, not locked out, not expired,
//!   its password neither expired nor to be changed; read by a service account.
//! - [`Directory::check_credentials`]: the above plus a simple bind as the user with the
//!   mapping's password (the `LogonUser` equivalent), on a dedicated TLS connection.
//! - [`Directory::find_by_certificate`]: the account whose `altSecurityIdentities` names the
//!   client certificate (strong forms; weak ones only when configured);
//!   [`Directory::authenticate_certificate`] composes it with the account check.
//!
//! Group membership comes from `tokenGroups`: the transitive set of security groups, primary
//! group included, that a `LogonUser` token would carry. The alternative, the in-chain matching
//! rule on `member`, returns DNs directly but misses the primary group and includes
//! distribution groups, which Windows never uses for access checks. The SIDs are turned into DNs
//! with one search.
//!
//! Answers are cached (positive and negative lifetimes differ) with single-flight loading, so a
//! burst for one user costs one round of LDAP operations. When the directory cannot be reached
//! the result is [`Verdict::Unavailable`] (fail closed), except for answers still fresh in the
//! cache; the next request tries again, so recovery needs nothing.

pub mod altsec;
pub mod config;

mod account;
mod cache;
mod filter;
mod ldap;
mod stats;
mod verdict;

use std::sync::Arc;

use aws_lc_rs::hmac;
use ldap3::Scope;

use crate::identity::CertFacts;

pub use crate::secret::Secret;
use account::{AccountState, LookupName, now_filetime};
use altsec::AltSecForm;
use cache::{Answer, AnswerCache, CertHit, Key};
pub use config::{
    AltSecPolicy, ConfigIssue, DirectorySettings, Endpoint, GroupDn, RawCertificateMapping,
    RawDirectory, RawSiteDirectory, SitePolicy, Transport, Verification, VerifyMode,
};
use ldap::{Entry, Failure, Ops};
use stats::Counters;
pub use stats::{
    DirectoryStats, METRIC_CACHE, METRIC_FAILURES, METRIC_LOOKUP_SECONDS, METRIC_OPERATIONS,
    METRIC_VERDICTS,
};
pub use verdict::{Account, AccountRef, CertMatch, DenyReason, Verdict};

/// Attributes read for the account-state check. The constructed attribute and `tokenGroups`
/// are only returned by a base-scope read of the user's own entry.
const ACCOUNT_ATTRS: &[&str] = &[
    "sAMAccountName",
    "userPrincipalName",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "accountExpires",
    "pwdLastSet",
    "tokenGroups",
];
/// SIDs per group-resolution filter; keeps filters well below AD's request size limits.
const SIDS_PER_SEARCH: usize = 100;

/// The handle could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The connection pool or the password-hash key could not be set up.
    #[error("directory setup failed: {0}")]
    Setup(String),
    /// [`Directory::probe`] could not reach the directory.
    #[error("directory unreachable: {0}")]
    Unreachable(String),
}

/// Why a check produced no account (internal; becomes a [`Verdict`]).
enum Stop {
    Deny(DenyReason),
    Unavailable,
}

/// The directory client: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    ops: Ops,
    cache: AnswerCache,
    counters: Arc<Counters>,
    base_dn: String,
    domains: Vec<String>,
    /// Per-process key for hashing passwords into cache keys.
    password_key: hmac::Key,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("base_dn", &self.inner.base_dn)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Builds the handle. Nothing connects yet: the first check opens the first connection, so
    /// a directory that is down at startup does not stop the proxy from serving other sites.
    pub fn new(settings: &DirectorySettings) -> Result<Self, DirectoryError> {
        let counters = Arc::new(Counters::default());
        let ops = Ops::new(settings, counters.clone()).map_err(DirectoryError::Setup)?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let password_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| DirectoryError::Setup("cannot generate a random key".into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                ops,
                cache: AnswerCache::new(
                    settings.cache_capacity,
                    settings.cache_ttl,
                    settings.negative_cache_ttl,
                ),
                counters,
                base_dn: settings.base_dn.clone(),
                domains: settings.domains.clone(),
                password_key,
            }),
        })
    }

    /// The first value of one of `attrs` on the object `dn`, read as the service account: the
    /// CRLs AD Certificate Services publishes under `CN=CDP,CN=Public Key Services,...`
    /// (`ldap:///` distribution points, see [`crate::revocation::ldap`]). `Ok(None)`: the
    /// object or the attribute does not exist.
    pub async fn read_attribute(
        &self,
        dn: &str,
        attrs: &[&str],
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        let found = self
            .inner
            .ops
            .search(dn, ldap3::Scope::Base, "(objectClass=*)", attrs, 1)
            .await
            .map_err(|e| DirectoryError::Unreachable(e.to_string()))?;
        Ok(found.entries.first().and_then(|entry| {
            attrs.iter().find_map(|name| {
                let bare = name.split(';').next().unwrap_or(name);
                entry
                    .values(name)
                    .chain(entry.values(bare))
                    .next()
                    .map(<[u8]>::to_vec)
            })
        }))
    }

    /// Runs the checks `verification` asks for. `password` is the mapping's password; it is
    /// only used (and required) for [`VerifyMode::Credentials`].
    pub async fn verify(
        &self,
        account: AccountRef<'_>,
        password: Option<&Secret>,
        verification: &Verification,
    ) -> Verdict {
        match verification.mode {
            VerifyMode::Account => {
                self.check_account(account, &verification.require_groups)
                    .await
            }
            VerifyMode::Credentials => {
                let empty = Secret::new("");
                self.check_credentials(
                    account,
                    password.unwrap_or(&empty),
                    &verification.require_groups,
                )
                .await
            }
        }
    }

    /// The account exists, is usable (see [`DenyReason`]) and is in one of `require_groups`
    /// (none required when empty). Read with the service account; no user password involved.
    pub async fn check_account(
        &self,
        account: AccountRef<'_>,
        require_groups: &[GroupDn],
    ) -> Verdict {
        let verdict = match self.account(account).await {
            Ok(found) => gate(found, require_groups),
            Err(stop) => stop.into(),
        };
        self.record("account", account, &verdict);
        verdict
    }

    /// [`Self::check_account`] plus a simple bind as the account with `password`: the
    /// `LogonUser` equivalent. An empty password is refused before anything is sent.
    pub async fn check_credentials(
        &self,
        account: AccountRef<'_>,
        password: &Secret,
        require_groups: &[GroupDn],
    ) -> Verdict {
        let verdict = self.credentials(account, password, require_groups).await;
        self.record("credentials", account, &verdict);
        verdict
    }

    /// The single account whose `altSecurityIdentities` names `cert` in a form `policy`
    /// allows. All candidate values go into one filter; see [`altsec`].
    pub async fn find_by_certificate(&self, cert: &CertFacts, policy: &AltSecPolicy) -> CertMatch {
        let key = Key::Cert(cert.sha256, policy.bits());
        let load = async {
            let candidates = altsec::candidates(cert, policy);
            let filter = altsec::search_filter(&candidates);
            let found = self
                .inner
                .ops
                .search(
                    &self.inner.base_dn,
                    Scope::Subtree,
                    &filter,
                    &["altSecurityIdentities", "userPrincipalName"],
                    2,
                )
                .await?;
            Ok(Answer::Cert(match found.entries.as_slice() {
                [] if !found.truncated => Err(DenyReason::NoMapping),
                [entry] if !found.truncated => Ok(CertHit {
                    dn: entry.dn.clone(),
                    form: altsec::matched_form(
                        &candidates,
                        entry.str_values("altSecurityIdentities"),
                        entry.first_str("userPrincipalName"),
                    ),
                }),
                _ => Err(DenyReason::Ambiguous),
            }))
        };
        match self.load(key, Box::pin(load)).await {
            Ok(Answer::Cert(Ok(hit))) => CertMatch::Found {
                dn: hit.dn,
                form: hit.form,
            },
            Ok(Answer::Cert(Err(DenyReason::Ambiguous))) => CertMatch::Ambiguous,
            Ok(Answer::Cert(Err(_))) => CertMatch::NotFound,
            Ok(_) | Err(_) => CertMatch::Unavailable,
        }
    }

    /// The IIS AD mapper: find the account for `cert`, then check it as `policy` says. A found
    /// account is always checked at least as [`VerifyMode::Account`] (Windows would not log a
    /// disabled account on either); there is no password, so `credentials` acts as `account`.
    pub async fn authenticate_certificate(&self, cert: &CertFacts, policy: &SitePolicy) -> Verdict {
        let Some(mapping) = &policy.certificate_mapping else {
            return Verdict::Deny(DenyReason::NoMapping);
        };
        let verdict = match self.find_by_certificate(cert, mapping).await {
            CertMatch::Found { dn, form } => {
                tracing::debug!(%dn, form = form.map(AltSecForm::as_str), "certificate mapped by altSecurityIdentities");
                let groups = policy
                    .verification
                    .as_ref()
                    .map_or(&[][..], |v| v.require_groups.as_slice());
                return self.check_account(AccountRef::Dn(&dn), groups).await;
            }
            CertMatch::NotFound => Verdict::Deny(DenyReason::NoMapping),
            CertMatch::Ambiguous => Verdict::Deny(DenyReason::Ambiguous),
            CertMatch::Unavailable => Verdict::Unavailable,
        };
        let subject = cert.subject.to_display_string();
        metrics::counter!(METRIC_VERDICTS, "check" => "certificate", "outcome" => verdict.label())
            .increment(1);
        tracing::info!(%subject, outcome = verdict.label(), "directory certificate mapping did not produce an account");
        verdict
    }

    /// Reads the root DSE over a pooled connection: for readiness checks.
    pub async fn probe(&self) -> Result<(), DirectoryError> {
        let search = self.inner.ops.search(
            "",
            Scope::Base,
            "(objectClass=*)",
            &["defaultNamingContext"],
            0,
        );
        Box::pin(search).await.map(|_| ()).map_err(|e| {
            self.inner.counters.failure(&e);
            DirectoryError::Unreachable(e.to_string())
        })
    }

    /// Counters since creation.
    pub fn stats(&self) -> DirectoryStats {
        self.inner.counters.snapshot()
    }

    async fn credentials(
        &self,
        account: AccountRef<'_>,
        password: &Secret,
        require_groups: &[GroupDn],
    ) -> Verdict {
        if password.is_empty() {
            return Verdict::Deny(DenyReason::EmptyPassword);
        }
        let found = match self.account(account).await {
            Ok(found) => found,
            Err(stop) => return stop.into(),
        };
        let tag = hmac::sign(&self.inner.password_key, password.expose().as_bytes());
        let mut hash = [0u8; 32];
        hash.copy_from_slice(tag.as_ref());
        let key = Key::Bind(found.dn.to_lowercase(), hash);
        let load = async {
            Ok(Answer::Bind(
                self.inner.ops.user_bind(&found.dn, password).await?,
            ))
        };
        match self.load(key, Box::pin(load)).await {
            Ok(Answer::Bind(Ok(()))) => gate(found, require_groups),
            Ok(Answer::Bind(Err(reason))) => Verdict::Deny(reason),
            Ok(_) | Err(_) => Verdict::Unavailable,
        }
    }

    /// The usable account behind `account`, from the cache or the directory.
    async fn account(&self, account: AccountRef<'_>) -> Result<Arc<Account>, Stop> {
        let answer = match account {
            AccountRef::Name {
                name,
                default_logon_domain,
            } => {
                let lookup = LookupName::parse(name, default_logon_domain, &self.inner.domains)
                    .map_err(Stop::Deny)?;
                let key = Key::Name(lookup.cache_key());
                self.load(key, Box::pin(self.load_by_name(&lookup))).await
            }
            AccountRef::Dn(dn) => {
                let key = Key::Dn(dn.to_lowercase());
                self.load(key, Box::pin(self.load_by_dn(dn))).await
            }
        };
        match answer {
            Ok(Answer::Account(Ok(found))) => Ok(found),
            Ok(Answer::Account(Err(reason))) => Err(Stop::Deny(reason)),
            Ok(_) | Err(_) => Err(Stop::Unavailable),
        }
    }

    async fn load_by_name(&self, lookup: &LookupName) -> Result<Answer, Failure> {
        let found = self
            .inner
            .ops
            .search(
                &self.inner.base_dn,
                Scope::Subtree,
                &lookup.filter(),
                &["1.1"],
                2,
            )
            .await?;
        match found.entries.as_slice() {
            [] if !found.truncated => Ok(Answer::Account(Err(DenyReason::NoSuchUser))),
            [entry] if !found.truncated => self.load_by_dn(&entry.dn).await,
            _ => Ok(Answer::Account(Err(DenyReason::Ambiguous))),
        }
    }

    async fn load_by_dn(&self, dn: &str) -> Result<Answer, Failure> {
        let found = self
            .inner
            .ops
            .search(dn, Scope::Base, "(objectClass=user)", ACCOUNT_ATTRS, 0)
            .await?;
        let [entry] = found.entries.as_slice() else {
            return Ok(Answer::Account(Err(DenyReason::NoSuchUser)));
        };
        let state = account_state(entry)?;
        if let Err(reason) = state.check(now_filetime()) {
            return Ok(Answer::Account(Err(reason)));
        }
        let groups = self.resolve_groups(entry).await?;
        let normalized_groups = groups
            .iter()
            .filter_map(|g| filter::normalize_dn(g))
            .collect();
        Ok(Answer::Account(Ok(Arc::new(Account {
            dn: entry.dn.clone(),
            sam_account_name: entry.first_str("sAMAccountName").map(str::to_owned),
            user_principal_name: entry.first_str("userPrincipalName").map(str::to_owned),
            groups,
            normalized_groups,
        }))))
    }

    /// Group DNs for the entry's `tokenGroups` SIDs.
    async fn resolve_groups(&self, entry: &Entry) -> Result<Vec<String>, Failure> {
        let sids: Vec<&[u8]> = entry.values("tokenGroups").collect();
        if sids.is_empty() {
            // Every account's token holds at least its primary group, so an empty list means
            // the attribute was withheld. AD grants it to members of "Windows Authorization
            // Access Group"; without that, group requirements deny everyone.
            tracing::warn!(dn = %entry.dn, "tokenGroups not readable by the directory service account; \
                groups are empty (add it to Windows Authorization Access Group)");
        }
        let mut groups = Vec::with_capacity(sids.len());
        for chunk in sids.chunks(SIDS_PER_SEARCH) {
            let clauses: Vec<String> = chunk
                .iter()
                .map(|sid| filter::eq_binary("objectSid", sid))
                .collect();
            let filter = format!("(&(objectClass=group){})", filter::any_of(&clauses));
            let found = self
                .inner
                .ops
                .search(&self.inner.base_dn, Scope::Subtree, &filter, &["1.1"], 0)
                .await?;
            groups.extend(found.entries.into_iter().map(|e| e.dn));
        }
        groups.sort_by_key(|g| g.to_lowercase());
        groups.dedup();
        if groups.len() < sids.len() {
            let unresolved: Vec<String> = sids
                .iter()
                .filter_map(|s| account::sid_to_string(s))
                .collect();
            tracing::debug!(dn = %entry.dn, resolved = groups.len(), sids = ?unresolved, "some token groups are outside base_dn");
        }
        Ok(groups)
    }

    /// Cache lookup with single-flight loading, counted; failures are logged here once per
    /// load (waiters that shared it do not log again). Callers box `load`: loaders nest several
    /// ldap3 state machines (170 KB per check in debug builds), which would otherwise sit
    /// inline in every request's future and overflow a 2 MB worker stack.
    async fn load<F>(&self, key: Key, load: F) -> Result<Answer, ()>
    where
        F: Future<Output = Result<Answer, Failure>>,
    {
        let counters = &self.inner.counters;
        let load = async {
            let started = tokio::time::Instant::now();
            let result = load.await;
            metrics::histogram!(METRIC_LOOKUP_SECONDS, "result" => if result.is_ok() { "ok" } else { "failed" })
                .record(started.elapsed().as_secs_f64());
            result.inspect_err(|e| {
                counters.failure(e);
                match e {
                    Failure::MissingBase(_) | Failure::ServiceBind { .. } => {
                        tracing::error!(error = %e, "directory misconfigured; failing closed");
                    }
                    _ => tracing::warn!(error = %e, "directory unavailable; failing closed"),
                }
            })
        };
        let (result, source) = self.inner.cache.get_or_load(key, load).await;
        counters.cache(source);
        result.map_err(|_| ())
    }

    fn record(&self, check: &'static str, account: AccountRef<'_>, verdict: &Verdict) {
        metrics::counter!(METRIC_VERDICTS, "check" => check, "outcome" => verdict.label())
            .increment(1);
        let user = match account {
            AccountRef::Name { name, .. } => name,
            AccountRef::Dn(dn) => dn,
        };
        match verdict {
            Verdict::Allow(_) => tracing::debug!(check, %user, "directory allowed"),
            Verdict::Deny(reason) => {
                tracing::info!(check, %user, reason = reason.as_str(), "directory denied")
            }
            Verdict::Unavailable => tracing::warn!(check, %user, "directory unavailable"),
        }
    }
}

impl From<Stop> for Verdict {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Deny(reason) => Self::Deny(reason),
            Stop::Unavailable => Self::Unavailable,
        }
    }
}

fn gate(account: Arc<Account>, require_groups: &[GroupDn]) -> Verdict {
    if account.in_any_group(require_groups) {
        Verdict::Allow(account)
    } else {
        Verdict::Deny(DenyReason::NotInRequiredGroup)
    }
}

/// The state attributes; a missing `userAccountControl` or computed flags means the service
/// account cannot read them, and guessing "enabled" would fail open.
fn account_state(entry: &Entry) -> Result<AccountState, Failure> {
    let unreadable = |attr: &str| {
        Failure::Protocol(format!(
            "{attr} of {} is not readable by the service account",
            entry.dn
        ))
    };
    let flags = |attr: &str| {
        entry
            .first_i64(attr)
            .map(|v| u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0))
            .ok_or_else(|| unreadable(attr))
    };
    Ok(AccountState {
        uac: flags("userAccountControl")?,
        computed: flags("msDS-User-Account-Control-Computed")?,
        account_expires: entry.first_i64("accountExpires").unwrap_or(0),
        pwd_last_set: entry.first_i64("pwdLastSet"),
    })
}
