//! Revocation checking as IIS/http.sys does it: every certificate of a verified client chain that
//! names a CRL Distribution Point or an OCSP responder is checked; one that names neither
//! passes. Configured CRL files are an extra source (offline CAs).
//!
//! Order per certificate: configured CRL files of its issuer, then its CRL Distribution Points
//! (base CRL plus delta CRL when one is named), then its OCSP responders. The first source that
//! gives an answer decides; when none does, the status is unknown and `unknown_status` applies
//! (default deny: 403.13, as IIS).
//!
//! This runs after the handshake and after webpki verified the chain to a configured
//! `client_ca`, so nothing a client names is fetched before its chain is trusted. Fetches are
//! shared and cached in [`cache::Store`]; the whole check of one connection is bounded by
//! `url_retrieval_timeout`.

pub mod cache;
pub mod chain;
pub mod config;
pub mod crl;
pub mod der;
pub mod fetch;
pub mod ldap;
pub mod metrics;
pub mod ocsp;
pub mod sweeper;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use self::cache::{Origin, Store, Want, unix_now};
use self::chain::{Link, Step};
pub use self::config::{Depth, Policy, UnknownStatus};
use self::crl::{Crl, Entry};
use crate::chain_cache::{ChainCache, ChainKey};

/// A CRL file from the configuration.
#[derive(Debug)]
pub struct FileCrl {
    /// The config value (file name), for explanations.
    pub name: String,
    /// The CRL.
    pub crl: Arc<Crl>,
}

/// A site's revocation checker.
#[derive(Debug)]
pub struct Revocation {
    policy: Policy,
    anchors: Vec<Arc<Link>>,
    files: Vec<FileCrl>,
    store: Arc<Store>,
    /// Paths to an anchor already built for a presented chain: they depend only on its bytes
    /// and on `anchors`, which this checker never changes.
    paths: ChainCache<Arc<[Step]>>,
}

/// Chain paths kept per checker (one certificate each besides the shared anchors).
const KEPT_PATHS: usize = 4096;

/// The verdict on a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every certificate checked is not revoked (or names no source).
    Good,
    /// A certificate is revoked (or on hold).
    Revoked,
    /// Some status could not be determined and `unknown_status = "deny"`.
    Unknown,
}

/// What the check found, with one line per certificate saying which source decided.
#[derive(Debug, Clone)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// Per certificate, leaf first: `subject: what decided`.
    pub lines: Vec<String>,
}

impl Report {
    /// One line for logs and pages' detail.
    pub fn summary(&self) -> String {
        self.lines.join("; ")
    }
}

/// What decided one certificate.
enum Status {
    Good(String),
    Revoked(String),
    Unknown(String),
    NoSource,
}

impl Revocation {
    /// A checker for one site.
    pub fn new(policy: Policy, anchors: Vec<Link>, files: Vec<FileCrl>, store: Arc<Store>) -> Self {
        Self {
            policy,
            anchors: anchors.into_iter().map(Arc::new).collect(),
            files,
            store,
            paths: ChainCache::new(KEPT_PATHS),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The shared cache.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The configured CA certificates.
    pub fn anchors(&self) -> &[Arc<Link>] {
        &self.anchors
    }

    /// The path from a presented chain (leaf first) to a configured anchor, leaf first; `None`
    /// when a certificate does not parse or no path exists. Built once per distinct chain.
    pub fn path_of(&self, chain: &[CertificateDer<'_>]) -> Option<Arc<[Step]>> {
        let key = ChainKey::of_chain(chain);
        if let Some(path) = self.paths.get(&key, |_| true) {
            return Some(path);
        }
        let presented: Option<Vec<Arc<Link>>> =
            chain.iter().map(|c| Link::parse(c).map(Arc::new)).collect();
        let path: Arc<[Step]> = chain::path(&presented?, &self.anchors)?.into();
        self.paths.insert(key, Arc::clone(&path));
        Some(path)
    }

    /// Path lookups answered from the kept paths, and those that built one.
    pub fn path_counts(&self) -> (u64, u64) {
        self.paths.counts()
    }

    /// The configured CRL files (`crl = [...]`).
    pub fn files(&self) -> &[FileCrl] {
        &self.files
    }

    /// What [`Self::check`] would consult for `chain`, without fetching anything: per
    /// certificate, the configured CRL files of its issuer, its CDPs and OCSP responders.
    pub fn describe(&self, chain: &[CertificateDer<'_>]) -> String {
        if self.policy.depth == Depth::None {
            return "revocation.check = \"none\"".into();
        }
        let Some(steps) = self.path_of(chain) else {
            return "the chain could not be rebuilt".into();
        };
        let count = match self.policy.depth {
            Depth::EndEntity => 1,
            _ => steps.len(),
        };
        let mut parts = Vec::new();
        for step in steps.iter().take(count) {
            let cert = &step.cert;
            let mut sources: Vec<String> = self
                .files
                .iter()
                .filter(|f| !f.crl.is_delta() && f.crl.issuer == cert.issuer)
                .map(|f| format!("CRL file {}", f.name))
                .collect();
            sources.extend(cert.cdps.iter().map(|u| format!("CRL {u}")));
            sources.extend(cert.ocsp.iter().map(|u| format!("OCSP {u}")));
            let who = short_subject(cert);
            if sources.is_empty() {
                parts.push(format!("{who}: no source (passes, as in http.sys)"));
            } else {
                parts.push(format!("{who}: {}", sources.join(", ")));
            }
        }
        parts.join("; ")
    }

    /// Checks a chain (leaf first) that webpki verified to a configured CA.
    pub async fn check(&self, chain: &[CertificateDer<'_>]) -> Report {
        let report = match self.policy.depth {
            Depth::None => Report {
                verdict: Verdict::Good,
                lines: vec!["revocation not checked (revocation.check = \"none\")".into()],
            },
            _ => {
                let bound = self.policy.timeout + Duration::from_millis(250);
                match tokio::time::timeout(bound, self.check_chain(chain)).await {
                    Ok(report) => report,
                    Err(_) => self.unknown(vec![format!(
                        "revocation status not obtained within {:?}",
                        self.policy.timeout
                    )]),
                }
            }
        };
        metrics::check(match report.verdict {
            Verdict::Good => "good",
            Verdict::Revoked => "revoked",
            Verdict::Unknown => "unknown",
        });
        report
    }

    fn unknown(&self, mut lines: Vec<String>) -> Report {
        match self.policy.unknown {
            UnknownStatus::Deny => Report {
                verdict: Verdict::Unknown,
                lines,
            },
            UnknownStatus::Allow => {
                lines.push("allowed by revocation.unknown_status = \"allow\"".into());
                Report {
                    verdict: Verdict::Good,
                    lines,
                }
            }
        }
    }

    async fn check_chain(&self, chain: &[CertificateDer<'_>]) -> Report {
        let Some(steps) = self.path_of(chain) else {
            return self.unknown(vec!["the verified chain could not be rebuilt".into()]);
        };
        let label: Arc<str> = steps
            .last()
            .map(|s| ca_label(&s.issuer))
            .unwrap_or_else(|| "-".into())
            .into();
        let count = match self.policy.depth {
            Depth::EndEntity => 1,
            _ => steps.len(),
        };
        let mut lines = Vec::new();
        let mut unknown = false;
        for step in steps.iter().take(count) {
            let who = short_subject(&step.cert);
            match self.status(step, &label).await {
                Status::Revoked(how) => {
                    lines.push(format!("{who}: revoked ({how})"));
                    return Report {
                        verdict: Verdict::Revoked,
                        lines,
                    };
                }
                Status::Good(how) => lines.push(format!("{who}: not revoked ({how})")),
                Status::NoSource => lines.push(format!(
                    "{who}: names no CRL distribution point or OCSP responder and no configured \
                     CRL covers it: passes, as in http.sys"
                )),
                Status::Unknown(why) => {
                    unknown = true;
                    lines.push(format!("{who}: revocation status unknown ({why})"));
                }
            }
        }
        if unknown {
            self.unknown(lines)
        } else {
            Report {
                verdict: Verdict::Good,
                lines,
            }
        }
    }

    async fn status(&self, step: &Step, label: &Arc<str>) -> Status {
        let crl_keys = Arc::new(chain::crl_keys(step, &self.anchors));
        let now = unix_now();
        let mut problems: Vec<String> = Vec::new();
        let cert = &step.cert;

        // 1. Configured CRL files of this issuer.
        let file_applied = match self.file_status(cert, &crl_keys, now, &mut problems) {
            Some(decided) => return decided,
            None => !problems.is_empty(),
        };

        // 2. CRL Distribution Points.
        let want = Want {
            issuer: cert.issuer.clone(),
            keys: crl_keys,
            freshness: self.policy.freshness,
            timeout: self.policy.timeout,
            cached_only: self.policy.cached_only,
            label: Arc::clone(label),
        };
        for url in &cert.cdps {
            if let Err(e) = fetch::permitted(url, self.store.limits()) {
                problems.push(e.to_string());
                continue;
            }
            let base = match self.store.crl(url, &want).await {
                Ok(base) => base,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if base.crl.is_delta() || !base.crl.covers(cert.is_ca, &cert.cdps) {
                problems.push(format!("CRL from {url} does not cover this certificate"));
                continue;
            }
            let mut how = format!("CRL {url}, {}", origin(&base, now));
            let delta_urls = if base.crl.freshest.is_empty() {
                &cert.freshest
            } else {
                &base.crl.freshest
            };
            let mut delta = None;
            let mut delta_problem = None;
            for durl in delta_urls {
                match self.store.crl(durl, &want).await {
                    Ok(d) if d.crl.is_delta() && base.crl.accepts_delta(&d.crl) => {
                        let _ = write!(how, " + delta {durl}, {}", origin(&d, now));
                        delta = Some(d);
                        break;
                    }
                    Ok(_) => {
                        delta_problem = Some(format!("{durl} is not a delta of {url}'s CRL"));
                    }
                    Err(e) => delta_problem = Some(e),
                }
            }
            if delta.is_none()
                && let Some(p) = delta_problem
            {
                problems.push(format!("delta CRL unavailable: {p}"));
                continue;
            }
            return match crl::lookup(&base.crl, delta.as_ref().map(|d| &*d.crl), &cert.serial) {
                Some(entry) => Status::Revoked(format!("{how}: {}", describe(entry))),
                None => Status::Good(how),
            };
        }

        // 3. OCSP: the CA itself may sign responses whatever its keyUsage says of CRLs.
        let want = Want {
            keys: Arc::new(chain::issuer_keys(step, &self.anchors)),
            ..want
        };
        for url in &cert.ocsp {
            match ocsp::status(&self.store, step, url, &want).await {
                Ok(ocsp::Answer::Good(how)) => return Status::Good(how),
                Ok(ocsp::Answer::Revoked(how)) => return Status::Revoked(how),
                Ok(ocsp::Answer::Unknown(how)) | Err(how) => problems.push(how),
            }
        }

        if problems.is_empty() && !file_applied && !cert.names_a_source() {
            Status::NoSource
        } else if problems.is_empty() {
            Status::Unknown("no source answered".into())
        } else {
            Status::Unknown(problems.join("; "))
        }
    }
}

impl Revocation {
    /// The configured CRL files' answer for `cert`: `Some` when one decides, `None` otherwise
    /// (problems with applicable files are pushed to `problems`).
    fn file_status(
        &self,
        cert: &Link,
        keys: &[Vec<u8>],
        now: i64,
        problems: &mut Vec<String>,
    ) -> Option<Status> {
        for file in self.files.iter().filter(|f| {
            !f.crl.is_delta() && f.crl.issuer == cert.issuer && f.crl.covers(cert.is_ca, &cert.cdps)
        }) {
            if let Err(e) = file.crl.verify_any(keys) {
                problems.push(format!("CRL file {}: {e}", file.name));
                continue;
            }
            if file.crl.expired(now) && !self.policy.allow_expired_files {
                problems.push(format!("CRL file {} is past its nextUpdate", file.name));
                continue;
            }
            let delta = self.files.iter().find(|d| {
                d.crl.is_delta()
                    && file.crl.accepts_delta(&d.crl)
                    && d.crl.verify_any(keys).is_ok()
                    && (!d.crl.expired(now) || self.policy.allow_expired_files)
            });
            let how = format!("CRL file {}{}", file.name, validity(&file.crl, now));
            return Some(
                match crl::lookup(&file.crl, delta.map(|d| &*d.crl), &cert.serial) {
                    Some(entry) => Status::Revoked(format!("{how}: {}", describe(entry))),
                    None => Status::Good(how),
                },
            );
        }
        None
    }

    /// [`Self::check`] from local sources only (configured CRL files; nothing is fetched or
    /// read from the cache): `None` when a certificate needs a distribution point or responder,
    /// so the answer would depend on the network (`certgate explain` without it says so).
    pub fn check_local(&self, chain: &[CertificateDer<'_>]) -> Option<Report> {
        if self.policy.depth == Depth::None {
            return Some(Report {
                verdict: Verdict::Good,
                lines: vec!["revocation not checked (revocation.check = \"none\")".into()],
            });
        }
        let steps = self.path_of(chain)?;
        let count = match self.policy.depth {
            Depth::EndEntity => 1,
            _ => steps.len(),
        };
        let now = unix_now();
        let mut lines = Vec::new();
        let mut unknown = false;
        for step in steps.iter().take(count) {
            let keys = chain::crl_keys(step, &self.anchors);
            let who = short_subject(&step.cert);
            let mut problems = Vec::new();
            match self.file_status(&step.cert, &keys, now, &mut problems) {
                Some(Status::Revoked(how)) => {
                    lines.push(format!("{who}: revoked ({how})"));
                    return Some(Report {
                        verdict: Verdict::Revoked,
                        lines,
                    });
                }
                Some(Status::Good(how)) => lines.push(format!("{who}: not revoked ({how})")),
                _ if step.cert.names_a_source() => return None,
                _ if problems.is_empty() => lines.push(format!(
                    "{who}: names no CRL distribution point or OCSP responder and no configured \
                     CRL covers it: passes, as in http.sys"
                )),
                _ => {
                    unknown = true;
                    lines.push(format!(
                        "{who}: revocation status unknown ({})",
                        problems.join("; ")
                    ));
                }
            }
        }
        Some(if unknown {
            self.unknown(lines)
        } else {
            Report {
                verdict: Verdict::Good,
                lines,
            }
        })
    }
}

fn describe(entry: Entry) -> &'static str {
    match entry {
        Entry::Hold => "certificateHold",
        Entry::Revoked(1) => "keyCompromise",
        Entry::Revoked(2) => "cACompromise",
        Entry::Revoked(3) => "affiliationChanged",
        Entry::Revoked(4) => "superseded",
        Entry::Revoked(5) => "cessationOfOperation",
        Entry::Revoked(9) => "privilegeWithdrawn",
        Entry::Revoked(_) | Entry::Remove => "listed",
    }
}

fn origin(cached: &cache::CachedCrl, now: i64) -> String {
    let how = match cached.origin {
        Origin::Fetched => "fetched",
        Origin::Persisted => "read from the state directory",
    };
    format!(
        "{how} {}s ago{}",
        now.saturating_sub(cached.obtained),
        validity(&cached.crl, now)
    )
}

fn validity(crl: &Crl, now: i64) -> String {
    let age = now.saturating_sub(crl.this_update);
    match crl.next_update {
        Some(next) => format!(", issued {age}s ago, next update in {}s", next - now),
        None => format!(", issued {age}s ago"),
    }
}

/// A bounded metrics label for a configured CA: its common name.
fn ca_label(anchor: &Link) -> String {
    short_subject(anchor)
}

fn short_subject(link: &Link) -> String {
    link.common_name.clone()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pki::{Authority, ClientSpec};

    #[tokio::test]
    async fn a_kept_path_is_still_checked_against_the_crls_every_time() {
        let ca = Authority::new("Kept paths CA").unwrap();
        let chain = |name: &str, serial: u64| {
            let spec = ClientSpec {
                serial: Some(serial),
                ..ClientSpec::new(name)
            };
            vec![ca.client(&spec).unwrap().der]
        };
        let (revoked, good) = (chain("alice", 7), chain("bob", 8));
        let crl = FileCrl {
            name: "ca.crl".into(),
            crl: Arc::new(Crl::parse(ca.crl(&[7], 7).unwrap().as_bytes()).unwrap()),
        };
        let store = Arc::new(Store::new(Default::default(), None, None));
        let anchors = vec![Link::parse(&ca.der).unwrap()];
        let revocation = Revocation::new(Policy::default(), anchors, vec![crl], store);

        for round in 0..3 {
            assert_eq!(
                revocation.check(&revoked).await.verdict,
                Verdict::Revoked,
                "{round}"
            );
            assert_eq!(
                revocation.check(&good).await.verdict,
                Verdict::Good,
                "{round}"
            );
        }
        // Each chain's path was built once; the CRL decided all six checks.
        assert_eq!(revocation.path_counts(), (4, 2));

        // The same leaf presented with its CA along is another chain, with the same path.
        let with_ca = vec![good[0].clone(), ca.der.clone()];
        assert_eq!(revocation.check(&with_ca).await.verdict, Verdict::Good);
        assert_eq!(revocation.path_counts(), (4, 3));
        let (kept, built) = (
            revocation.path_of(&good).unwrap(),
            revocation.path_of(&with_ca).unwrap(),
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].cert.der, built[0].cert.der);
        assert!(
            Arc::ptr_eq(&kept[0].issuer, &revocation.anchors()[0]),
            "the issuer is the configured anchor itself, not a copy"
        );

        // A chain that leads to no configured anchor is not kept, and stays unknown.
        let stranger = Authority::new("Another CA").unwrap();
        let foreign = vec![stranger.client(&ClientSpec::new("mallory")).unwrap().der];
        for _ in 0..2 {
            assert_eq!(revocation.check(&foreign).await.verdict, Verdict::Unknown);
        }
        assert_eq!(revocation.path_counts(), (6, 5));
    }
}
