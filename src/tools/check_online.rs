//! `certgate check --online`: after the configuration is valid, fetch every CRL Distribution
//! Point and ask every OCSP responder that certgate can know before a client connects, the ones
//! the configured `client_ca` certificates name, and say for each what came back.
//!
//! Everything goes through the proxy's own code: [`crate::revocation::cache::Store::fetch_now`]
//! (same scheme, size, redirect, host allow-list and time limits, the same signature, issuer
//! and expiry checks, and the same persistence in `[revocation] state_dir`, so a proxy started
//! afterwards has the CRLs without the network) and [`crate::revocation::ocsp::status`]. Only
//! URLs named by configured (trusted) CA certificates are contacted, and a CRL is fetched only
//! when the CA that must have signed it is configured too, so every answer can be verified.
//! URLs that only client certificates name are learnt at their first handshake.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::config::Runtime;
use crate::revocation::cache::{CachedCrl, Store, Want};
use crate::revocation::chain::{self, Link, Step, issuer_keys};
use crate::revocation::crl::{Crl, CrlError};
use crate::revocation::{Depth, Revocation, ocsp};

/// One URL and what it answered.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The first site whose configuration names it.
    pub site: String,
    /// `CRL`, `delta CRL` or `OCSP`.
    pub kind: &'static str,
    /// The URL.
    pub url: String,
    /// The configured CA certificate that names it.
    pub named_by: String,
    /// What was obtained (`Ok`) or the exact error.
    pub result: Result<String, String>,
}

/// The whole online check.
#[derive(Debug, Clone, Default)]
pub struct Online {
    /// Every URL contacted, in configuration order.
    pub probes: Vec<Probe>,
    /// Every configured CRL file (`crl = [...]`), checked as the proxy uses it.
    pub files: Vec<Probe>,
    /// What was not contacted, and why.
    pub notes: Vec<String>,
}

impl Online {
    /// URLs that did not give a usable answer.
    pub fn failures(&self) -> usize {
        self.probes
            .iter()
            .chain(&self.files)
            .filter(|p| p.result.is_err())
            .count()
    }
}

impl fmt::Display for Online {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "online: {note}")?;
        }
        for p in &self.files {
            let (status, text) = match &p.result {
                Ok(t) => ("OK", t),
                Err(e) => ("FAILED", e),
            };
            writeln!(
                f,
                "online: site '{}': {} {}: {status}: {text}",
                p.site, p.kind, p.url
            )?;
        }
        for p in &self.probes {
            let (status, text) = match &p.result {
                Ok(t) => ("OK", t),
                Err(e) => ("FAILED", e),
            };
            writeln!(
                f,
                "online: site '{}': {} {} (named by '{}'): {status}: {text}",
                p.site, p.kind, p.url, p.named_by
            )?;
        }
        if !self.files.is_empty() {
            writeln!(
                f,
                "online: {} CRL file(s) checked, {} failed",
                self.files.len(),
                self.files.iter().filter(|p| p.result.is_err()).count()
            )?;
        }
        writeln!(
            f,
            "online: {} URL(s) checked, {} failed",
            self.probes.len(),
            self.probes.iter().filter(|p| p.result.is_err()).count()
        )
    }
}

/// Fetches and verifies every URL the configured CA certificates of `runtime` name.
pub async fn run(runtime: &Runtime) -> Online {
    let mut online = Online::default();
    let mut seen: HashSet<String> = HashSet::new();
    for site in &runtime.sites {
        let Some(revocation) = site.client_auth.revocation() else {
            continue;
        };
        if revocation.policy().depth == Depth::None {
            online.notes.push(format!(
                "site '{}': revocation.check = \"none\": nothing to fetch",
                site.name
            ));
            continue;
        }
        if revocation.policy().cached_only {
            online.notes.push(format!(
                "site '{}': cached_only = true: the proxy never fetches; what is fetched here is \
                 what it will use (persisted when [revocation] state_dir is set)",
                site.name
            ));
        }
        file_probes(&site.name, revocation, &mut seen, &mut online);
        site_probes(&site.name, revocation, &mut seen, &mut online).await;
    }
    online
}

async fn site_probes(
    site: &str,
    revocation: &Revocation,
    seen: &mut HashSet<String>,
    online: &mut Online,
) {
    let anchors = revocation.anchors();
    let store = revocation.store();
    for cert in anchors {
        let urls: Vec<&String> = cert
            .cdps
            .iter()
            .chain(&cert.ocsp)
            .filter(|u| !seen.contains(*u))
            .collect();
        if urls.is_empty() {
            continue;
        }
        let who = common_name(cert);
        let issuers: Vec<&Arc<Link>> = anchors
            .iter()
            .filter(|a| a.subject == cert.issuer)
            .collect();
        let Some(issuer) = issuers
            .iter()
            .find(|a| cert.signed_by(a))
            .or(issuers.first())
        else {
            let list: Vec<&str> = urls.iter().map(|u| u.as_str()).collect();
            online.notes.push(format!(
                "site '{site}': '{who}' names {}, but its issuer is not among the configured \
                 client_ca certificates, so an answer could not be verified: not fetched",
                list.join(", ")
            ));
            continue;
        };
        let step = Step {
            cert: Arc::clone(cert),
            issuer: Arc::clone(issuer),
        };
        let policy = revocation.policy();
        let want = Want {
            issuer: cert.issuer.clone(),
            keys: Arc::new(issuer_keys(&step, anchors)),
            freshness: policy.freshness,
            timeout: policy.timeout,
            cached_only: false,
            label: common_name(issuer).into(),
        };
        let probe = |kind, url: &str, result| Probe {
            site: site.to_owned(),
            kind,
            url: url.to_owned(),
            named_by: who.clone(),
            result,
        };
        for url in &cert.cdps {
            if !seen.insert(url.clone()) {
                continue;
            }
            let base = store.fetch_now(url, &want).await.and_then(|c| {
                if c.crl.is_delta() {
                    Err("a delta CRL is served where a base CRL is expected".into())
                } else if !c.crl.covers(cert.is_ca, &cert.cdps) {
                    Err(format!(
                        "its Issuing Distribution Point does not cover '{who}'"
                    ))
                } else {
                    Ok(c)
                }
            });
            let deltas = match &base {
                Ok(c) if !c.crl.freshest.is_empty() => c.crl.freshest.clone(),
                Ok(_) => cert.freshest.clone(),
                Err(_) => Vec::new(),
            };
            online.probes.push(probe(
                "CRL",
                url,
                base.as_ref()
                    .map(|c| describe(c, anchors, store))
                    .map_err(Clone::clone),
            ));
            for durl in deltas {
                if !seen.insert(durl.clone()) {
                    continue;
                }
                let result = store
                    .fetch_now(&durl, &want)
                    .await
                    .and_then(|d| match &base {
                        Ok(b) if d.crl.is_delta() && b.crl.accepts_delta(&d.crl) => {
                            Ok(describe(&d, anchors, store))
                        }
                        _ => Err(format!("not a delta CRL of {url}'s CRL")),
                    });
                online.probes.push(probe("delta CRL", &durl, result));
            }
        }
        for url in &cert.ocsp {
            if !seen.insert(url.clone()) {
                continue;
            }
            let result = match ocsp::status(store, &step, url, &want).await {
                Ok(ocsp::Answer::Good(how)) => Ok(format!("'{who}' is good ({how})")),
                Ok(ocsp::Answer::Revoked(how)) => Err(format!("'{who}' is REVOKED ({how})")),
                Ok(ocsp::Answer::Unknown(how)) => Err(format!("'{who}' is unknown ({how})")),
                Err(e) => Err(e),
            };
            online.probes.push(probe("OCSP", url, result));
        }
    }
}

/// Each configured CRL file of a site, as the proxy reads it: issued by a configured CA and
/// verified with one of its keys, and within its nextUpdate (unless `allow_expired_crl`).
fn file_probes(
    site: &str,
    revocation: &Revocation,
    seen: &mut HashSet<String>,
    online: &mut Online,
) {
    let anchors = revocation.anchors();
    let now = crate::revocation::cache::unix_now();
    for file in revocation.files() {
        if !seen.insert(format!("file:{}", file.name)) {
            continue;
        }
        let crl = &file.crl;
        let named = anchors.iter().find(|a| a.subject == crl.issuer);
        let result = match (named, crl_signer(crl, anchors)) {
            (None, _) => Err(
                "its issuer is not among the configured client_ca certificates, so its \
                 signature cannot be checked here; it can only apply to certificates whose \
                 clients present that issuer in their chain"
                    .to_owned(),
            ),
            (Some(ca), Err(CrlError::Signature)) => Err(format!(
                "signature does not verify with the key of any configured '{}'",
                common_name(ca)
            )),
            (Some(_), Err(e)) => Err(e.to_string()),
            (Some(_), Ok(signer)) => {
                let summary = summary(crl, &common_name(signer));
                match crl.next_update {
                    Some(next) if now > next && !revocation.policy().allow_expired_files => {
                        Err(format!("EXPIRED: past its nextUpdate; {summary}"))
                    }
                    Some(next) if now > next => Ok(format!(
                        "past its nextUpdate, still used (allow_expired_crl = true); {summary}"
                    )),
                    _ => Ok(summary),
                }
            }
        };
        online.files.push(Probe {
            site: site.to_owned(),
            kind: if crl.is_delta() {
                "delta CRL file"
            } else {
                "CRL file"
            },
            url: file.name.clone(),
            named_by: "crl".to_owned(),
            result,
        });
    }
}

/// The configured CA whose key the CRL's signature verifies with, by the proxy's rule
/// ([`chain::crl_signers`]: only a key whose certificate allows cRLSign).
fn crl_signer<'a>(crl: &Crl, anchors: &'a [Arc<Link>]) -> Result<&'a Arc<Link>, CrlError> {
    let signers = chain::crl_signers(&crl.issuer, anchors);
    let keys: Vec<&[u8]> = signers.iter().map(|s| s.spki.as_slice()).collect();
    let at = crl.signed_by(&keys)?;
    signers.get(at).copied().ok_or(CrlError::Signature)
}

/// Size, entries, signer, validity and number of a verified CRL.
fn summary(crl: &Crl, signer: &str) -> String {
    format!(
        "{} bytes, {} entr{}, signature verified with '{signer}', thisUpdate {}, nextUpdate {}, \
         CRL number {}",
        crl.der().len(),
        crl.len(),
        if crl.len() == 1 { "y" } else { "ies" },
        time(crl.this_update),
        crl.next_update.map_or_else(|| "none".to_owned(), time),
        crl.number
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string),
    )
}

/// Size, signer, validity and number of a verified CRL, and where it was kept.
fn describe(c: &CachedCrl, anchors: &[Arc<Link>], store: &Arc<Store>) -> String {
    let crl = &c.crl;
    // A CRL signed by an intermediate the client presented has no configured signer to name.
    let signer = crl_signer(crl, anchors).map_or_else(|_| "?".to_owned(), |a| common_name(a));
    let mut out = summary(crl, &signer);
    if let Some(dir) = store.state_dir() {
        out.push_str(&format!(", saved in {}", dir.display()));
    }
    out
}

fn time(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A certificate's common name (its whole subject when it has none).
fn common_name(link: &Link) -> String {
    link.common_name.clone()
}
