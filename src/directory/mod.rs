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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use ldap3::Scope;

use crate::identity::CertFacts;

pub use crate::secret::Secret;
use account::{AccountState, LookupName, now_filetime};
use altsec::AltSecForm;
use cache::{Answer, AnswerCache, CertHit, Key, Source};
pub use config::{
    AltSecPolicy, ConfigIssue, DirectorySettings, Endpoint, GroupDn, RawCertificateMapping,
    RawDirectory, RawSiteDirectory, SitePolicy, Transport, Verification, VerifyMode,
};
use ldap::{Entry, Failure, Ops};

/// Metric: LDAP operations sent, by `op` (`search`, `service_bind`, `user_bind`, `connect`).
pub const METRIC_OPERATIONS: &str = "certgate_directory_operations_total";
/// Metric: failures to get an answer, by `kind` (`connect`, `timeout`, `busy`, `service_bind`,
/// `result`, `config`, `protocol`).
pub const METRIC_FAILURES: &str = "certgate_directory_failures_total";
/// Metric: answer-cache lookups, by `result` (`hit`, `miss`, `coalesced`).
pub const METRIC_CACHE: &str = "certgate_directory_cache_total";
/// Metric: verdicts, by `check` (`account`, `credentials`, `certificate`) and `outcome`
/// (`allow`, `unavailable`, or the deny reason's label).
pub const METRIC_VERDICTS: &str = "certgate_directory_verdicts_total";
/// Metric: time a directory answer took to load on a cache miss (all LDAP operations of one
/// lookup), by `result` (`ok`, `failed`).
pub const METRIC_LOOKUP_SECONDS: &str = "certgate_directory_lookup_duration_seconds";

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

/// Why the directory refused an account. The reason goes to logs, never to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// No account has this name (AD code 525).
    NoSuchUser,
    /// A name that cannot be checked against AD: empty, malformed, or a local account
    /// (`.\user`).
    UnsupportedName,
    /// Several accounts match the name or the certificate.
    Ambiguous,
    /// `userAccountControl` ACCOUNTDISABLE (533).
    Disabled,
    /// Locked out after too many bad passwords (775).
    LockedOut,
    /// The password is past its maximum age (532).
    PasswordExpired,
    /// The password must be changed at next logon (773).
    MustChangePassword,
    /// `accountExpires` is in the past (701).
    AccountExpired,
    /// Wrong password (52e).
    BadPassword,
    /// The mapping has no password; refused without a bind because AD treats an empty-password
    /// simple bind as a successful anonymous bind.
    EmptyPassword,
    /// Outside the account's logon hours (530).
    InvalidLogonHours,
    /// Not allowed from this workstation (531).
    InvalidWorkstation,
    /// AD refused the bind with another or no diagnostic code.
    LogonFailed,
    /// The account is in none of the required groups.
    NotInRequiredGroup,
    /// No account's `altSecurityIdentities` names the certificate.
    NoMapping,
}

impl DenyReason {
    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSuchUser => "no_such_user",
            Self::UnsupportedName => "unsupported_name",
            Self::Ambiguous => "ambiguous",
            Self::Disabled => "disabled",
            Self::LockedOut => "locked_out",
            Self::PasswordExpired => "password_expired",
            Self::MustChangePassword => "must_change_password",
            Self::AccountExpired => "account_expired",
            Self::BadPassword => "bad_password",
            Self::EmptyPassword => "empty_password",
            Self::InvalidLogonHours => "invalid_logon_hours",
            Self::InvalidWorkstation => "invalid_workstation",
            Self::LogonFailed => "logon_failed",
            Self::NotInRequiredGroup => "not_in_required_group",
            Self::NoMapping => "no_mapping",
        }
    }

    /// IIS status and sub-status.
    ///
    /// - Everything `LogonUser` itself would fail on (including an ambiguous name) is **401.1**
    ///   "Logon failed", as IIS answers.
    /// - A missing group is **401.3** "Unauthorized due to ACL on resource": IIS's status for an
    ///   authenticated user who lacks rights on what they asked for; the required groups play
    ///   the role of that ACL. It keeps "account unusable" and "account fine but not allowed
    ///   here" apart in logs, and 401.2 stays reserved for "no mapping produced a user".
    /// - No `altSecurityIdentities` match is **401.2**, like a certificate no IIS mapping
    ///   matched.
    pub fn iis_status(self) -> (u16, u16) {
        match self {
            Self::NotInRequiredGroup => (401, 3),
            Self::NoMapping => (401, 2),
            _ => (401, 1),
        }
    }

    /// The Win32 error `LogonUser` would report, for `sc-win32-status`-style log fields.
    pub fn win32_status(self) -> u32 {
        match self {
            Self::NoSuchUser | Self::BadPassword | Self::LogonFailed | Self::EmptyPassword => 1326,
            Self::UnsupportedName => 1317,
            Self::Ambiguous => 1326,
            Self::Disabled => 1331,
            Self::LockedOut => 1909,
            Self::PasswordExpired => 1330,
            Self::MustChangePassword => 1907,
            Self::AccountExpired => 1793,
            Self::InvalidLogonHours => 1328,
            Self::InvalidWorkstation => 1329,
            Self::NotInRequiredGroup => 5,
            Self::NoMapping => 1326,
        }
    }
}

/// An account the directory accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's DN.
    pub dn: String,
    /// `sAMAccountName`, for `DOMAIN\name` renderings.
    pub sam_account_name: Option<String>,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// DNs of every security group in the account's token (nested and primary included), as
    /// the directory spells them, sorted. Groups outside `base_dn` are not listed.
    pub groups: Vec<String>,
    normalized_groups: Vec<String>,
}

impl Account {
    /// The name the proxy forwards for an account found by certificate: its
    /// `userPrincipalName`, else its `sAMAccountName`, else its DN.
    pub fn display_name(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .or(self.sam_account_name.as_deref())
            .unwrap_or(&self.dn)
    }

    /// True when the account is in at least one of `required` (or `required` is empty).
    pub fn in_any_group(&self, required: &[GroupDn]) -> bool {
        required.is_empty()
            || required
                .iter()
                .any(|g| self.normalized_groups.contains(&g.normalized))
    }
}

/// The outcome of a directory check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The account may proceed.
    Allow(Arc<Account>),
    /// The directory refused; the reason is for logs only.
    Deny(DenyReason),
    /// No answer could be had and none was cached: fail closed.
    Unavailable,
}

impl Verdict {
    /// IIS status and sub-status for this verdict; `(200, 0)` for [`Verdict::Allow`].
    ///
    /// [`Verdict::Unavailable`] is **503.0**, not the 401.1 IIS shows when no logon server is
    /// reachable (Win32 1311): a 401 tells clients and monitors "your credentials are wrong",
    /// while an outage is ours and retryable. The response is fail-closed either way.
    pub fn iis_status(&self) -> (u16, u16) {
        match self {
            Self::Allow(_) => (200, 0),
            Self::Deny(reason) => reason.iis_status(),
            Self::Unavailable => (503, 0),
        }
    }

    /// A bounded label for logs and metrics: `allow`, `unavailable`, or the deny reason.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Allow(_) => "allow",
            Self::Deny(reason) => reason.as_str(),
            Self::Unavailable => "unavailable",
        }
    }
}

/// Which account to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRef<'a> {
    /// A user name as an IIS mapping stores it: `DOMAIN\name`, `name@realm`, or a bare `name`
    /// to which IIS applies the section's `defaultLogonDomain`.
    Name {
        /// The mapping's `userName`.
        name: &'a str,
        /// IIS `defaultLogonDomain` of the mapping's section.
        default_logon_domain: Option<&'a str>,
    },
    /// A DN the directory returned, e.g. from [`Directory::find_by_certificate`].
    Dn(&'a str),
}

/// The result of [`Directory::find_by_certificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertMatch {
    /// Exactly one account maps the certificate.
    Found {
        /// The account's DN; check it with [`AccountRef::Dn`].
        dn: String,
        /// The form that matched, when it can be told from the stored values.
        form: Option<AltSecForm>,
    },
    /// No account maps the certificate with an allowed form.
    NotFound,
    /// More than one account does: refused, as Windows does without a user-name hint.
    Ambiguous,
    /// The directory could not be asked.
    Unavailable,
}

/// Counters since the handle was created, for tests and diagnostics. The same events also go to
/// the `metrics` facade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryStats {
    /// Cache loads, i.e. answers fetched from the directory (each is one or more operations).
    pub loads: u64,
    /// Searches sent.
    pub searches: u64,
    /// Service-account binds (one per new pooled connection).
    pub service_binds: u64,
    /// Binds as a user (password checks).
    pub user_binds: u64,
    /// Connection attempts, successful or not.
    pub connects: u64,
    /// Answers served from the cache.
    pub cache_hits: u64,
    /// Answers shared from another caller's load.
    pub coalesced: u64,
    /// Operations or connections that failed.
    pub failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    loads: AtomicU64,
    searches: AtomicU64,
    service_binds: AtomicU64,
    user_binds: AtomicU64,
    connects: AtomicU64,
    cache_hits: AtomicU64,
    coalesced: AtomicU64,
    failures: AtomicU64,
}

impl Counters {
    fn op(&self, counter: &AtomicU64, op: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(METRIC_OPERATIONS, "op" => op).increment(1);
    }

    fn search(&self) {
        self.op(&self.searches, "search");
    }

    fn service_bind(&self) {
        self.op(&self.service_binds, "service_bind");
    }

    fn user_bind(&self) {
        self.op(&self.user_binds, "user_bind");
    }

    fn connect(&self) {
        self.op(&self.connects, "connect");
    }

    fn failure(&self, failure: &Failure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(METRIC_FAILURES, "kind" => failure.kind()).increment(1);
    }

    fn cache(&self, source: Source) {
        match source {
            Source::Hit => self.cache_hits.fetch_add(1, Ordering::Relaxed),
            Source::Miss => self.loads.fetch_add(1, Ordering::Relaxed),
            Source::Coalesced => self.coalesced.fetch_add(1, Ordering::Relaxed),
        };
        metrics::counter!(METRIC_CACHE, "result" => source.as_str()).increment(1);
    }

    fn snapshot(&self) -> DirectoryStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectoryStats {
            loads: get(&self.loads),
            searches: get(&self.searches),
            service_binds: get(&self.service_binds),
            user_binds: get(&self.user_binds),
            connects: get(&self.connects),
            cache_hits: get(&self.cache_hits),
            coalesced: get(&self.coalesced),
            failures: get(&self.failures),
        }
    }
}

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
