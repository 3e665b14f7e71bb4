//! OCSP (RFC 6960): the request for one certificate, the response checked and read, and the
//! answers cached per responder and certificate until their nextUpdate. Each verified response
//! is also written to the state directory and, after a restart, verified again before use, so
//! a responder that is down at start does not deny certificates it vouched for.
//!
//! A response counts only if it is signed by the issuing CA itself (any of its configured keys)
//! or by a delegated responder whose certificate the CA issued with id-kp-OCSPSigning and which
//! is within its validity; its thisUpdate must not be in the future and its nextUpdate not in
//! the past. A response without nextUpdate is used for [`NO_NEXT_UPDATE_LIFETIME`]. Requests
//! carry no nonce, so that answers can be cached (RFC 5019 style), which is why freshness rests
//! on thisUpdate/nextUpdate.

use std::sync::Arc;
use std::time::Duration;

use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use super::cache::{Origin, Slot, Store, Want, unix_now};
use super::chain::{Link, Step};
use super::der::{self, Tlv};
use super::sweeper::{self, Renewal};
use super::{fetch, metrics};

/// How long a response without nextUpdate is used.
pub const NO_NEXT_UPDATE_LIFETIME: i64 = 300;
/// Allowed clock difference with the responder.
const SKEW: i64 = 300;
/// `id-pkix-ocsp-basic`.
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// AlgorithmIdentifier for SHA-1 (CertID hashes, as every responder supports).
const SHA1_ALGORITHM: &[u8] = &[
    0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
];

/// What a responder said about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// good.
    Good,
    /// revoked.
    Revoked,
    /// unknown: the responder does not know the certificate.
    Unknown,
}

/// A verified OCSP answer in the cache.
#[derive(Debug)]
pub struct CachedOcsp {
    /// The status.
    pub status: CertStatus,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// producedAt, Unix seconds.
    pub produced_at: i64,
    /// Until when it may be used, Unix seconds.
    pub valid_until: i64,
    /// When it was fetched (or read back).
    pub obtained: i64,
    /// Fetched by this process or read back from the state directory.
    pub origin: Origin,
}

/// An answer for the revocation check.
#[derive(Debug)]
pub enum Answer {
    /// good, with how it was learnt.
    Good(String),
    /// revoked.
    Revoked(String),
    /// unknown to the responder.
    Unknown(String),
}

/// Why a response is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Not a well-formed OCSP response.
    #[error("malformed OCSP response")]
    Malformed,
    /// responseStatus other than successful.
    #[error("OCSP responder answered status {0} (not successful)")]
    NotSuccessful(u8),
    /// The signature is not from the CA or a responder it authorised.
    #[error("OCSP response not signed by the CA or a responder it authorised")]
    Unauthorised,
    /// The response does not mention the certificate asked about.
    #[error("OCSP response is about another certificate")]
    OtherCertificate,
    /// thisUpdate in the future or nextUpdate in the past.
    #[error("OCSP response is not current")]
    Stale,
}

/// The DER CertID for `step.cert` (SHA-1 hashes of the issuer's name and key).
pub fn cert_id(step: &Step) -> Vec<u8> {
    let sha1 = |d: &[u8]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, d)
            .as_ref()
            .to_vec()
    };
    let mut body = SHA1_ALGORITHM.to_vec();
    body.extend(der::write(0x04, &sha1(&step.issuer.subject)));
    body.extend(der::write(0x04, &sha1(&step.issuer.public_key)));
    body.extend(der::integer(&step.cert.serial));
    der::write(0x30, &body)
}

/// An OCSPRequest for one CertID, without nonce.
pub fn request(cert_id: &[u8]) -> Vec<u8> {
    let single = der::write(0x30, cert_id);
    let list = der::write(0x30, &single);
    let tbs = der::write(0x30, &list);
    der::write(0x30, &tbs)
}

/// Reads and verifies a response for `step` at `now`. `issuer_keys` are the CA's SPKIs.
pub fn verify_response(
    body: &[u8],
    step: &Step,
    issuer_keys: &[Vec<u8>],
    now: i64,
) -> Result<CachedOcsp, OcspError> {
    let (outer, _) = need(der::read(body))?;
    let parts = need(der::children(outer.content))?;
    let status = need(parts.first().filter(|t| t.tag == 0x0a))?;
    let code = status.content.first().copied().unwrap_or(0xff);
    if code != 0 {
        return Err(OcspError::NotSuccessful(code));
    }
    let bytes = need(parts.get(1).filter(|t| t.tag == 0xa0))?;
    let (rb, _) = need(der::read(bytes.content))?;
    let rb = need(der::children(rb.content))?;
    let (kind, octets) = (need(rb.first())?, need(rb.get(1))?);
    if kind.content != OID_OCSP_BASIC || octets.tag != 0x04 {
        return Err(OcspError::Malformed);
    }
    let (basic, _) = need(der::read(octets.content))?;
    let basic = need(der::children(basic.content))?;
    let tbs = *need(basic.first())?;
    let alg = need(basic.get(1))?;
    let signature = need(basic.get(2))?;
    let certs: Vec<Link> = match basic.get(3).filter(|t| t.tag == 0xa0) {
        Some(wrapper) => {
            let (seq, _) = need(der::read(wrapper.content))?;
            need(der::children(seq.content))?
                .iter()
                .filter_map(|c| Link::parse(c.raw))
                .collect()
        }
        None => Vec::new(),
    };
    check_signature(tbs, alg, signature, step, issuer_keys, &certs, now)?;
    read_single(tbs, step, now)
}

fn check_signature(
    tbs: Tlv<'_>,
    alg: &Tlv<'_>,
    signature: &Tlv<'_>,
    step: &Step,
    issuer_keys: &[Vec<u8>],
    certs: &[Link],
    now: i64,
) -> Result<(), OcspError> {
    let (_, alg) = AlgorithmIdentifier::from_der(alg.raw).map_err(|_| OcspError::Malformed)?;
    let (_, sig) = x509_parser::der_parser::asn1_rs::BitString::from_der(signature.raw)
        .map_err(|_| OcspError::Malformed)?;
    let verifies = |spki: &[u8]| {
        SubjectPublicKeyInfo::from_der(spki).is_ok_and(|(_, key)| {
            x509_parser::verify::verify_signature(&key, &alg, &sig, tbs.raw).is_ok()
        })
    };
    if issuer_keys.iter().any(|k| verifies(k)) {
        return Ok(());
    }
    // A delegated responder: issued by the CA (same name, signed by one of its keys), with
    // id-kp-OCSPSigning, currently valid.
    for responder in certs {
        if !responder.ocsp_signing || responder.issuer != step.cert.issuer {
            continue;
        }
        let issued_by_ca = issuer_keys.iter().any(|k| {
            let ca = Link {
                spki: k.clone(),
                ..(*step.issuer).clone()
            };
            responder.signed_by(&ca)
        });
        if issued_by_ca && currently_valid(&responder.der, now) && verifies(&responder.spki) {
            return Ok(());
        }
    }
    Err(OcspError::Unauthorised)
}

/// `Malformed` for anything missing.
fn need<T>(o: Option<T>) -> Result<T, OcspError> {
    o.ok_or(OcspError::Malformed)
}

fn currently_valid(der: &[u8], now: i64) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
        let v = c.validity();
        v.not_before.timestamp() <= now + SKEW && now <= v.not_after.timestamp() + SKEW
    })
}

fn read_single(tbs: Tlv<'_>, step: &Step, now: i64) -> Result<CachedOcsp, OcspError> {
    let fields = need(der::children(tbs.content))?;
    // version [0] is optional; responderID is [1] or [2]; then producedAt, responses.
    let mut rest = fields.iter().skip_while(|t| t.tag == 0xa0);
    let _responder_id = need(rest.next())?;
    let produced_at = need(rest.next())?;
    let produced_at = ASN1Time::from_der(produced_at.raw)
        .map(|(_, t)| t.timestamp())
        .map_err(|_| OcspError::Malformed)?;
    let responses = need(rest.next().filter(|t| t.tag == 0x30))?;
    let want_id = cert_id(step);
    let (want, _) = need(der::read(&want_id))?;
    let want = need(der::children(want.content))?;
    for single in need(der::children(responses.content))? {
        let parts = need(der::children(single.content))?;
        let id = need(parts.first())?;
        let id = need(der::children(id.content))?;
        let same = id.len() == 4
            && want.len() == 4
            && id.get(1).map(|t| t.content) == want.get(1).map(|t| t.content)
            && id.get(2).map(|t| t.content) == want.get(2).map(|t| t.content)
            && id.get(3).map(|t| super::crl::normalize_serial(t.content))
                == want.get(3).map(|t| super::crl::normalize_serial(t.content));
        if !same {
            continue;
        }
        let status = match need(parts.get(1))?.tag {
            0x80 => CertStatus::Good,
            0xa1 => CertStatus::Revoked,
            0x82 => CertStatus::Unknown,
            _ => return Err(OcspError::Malformed),
        };
        let time = |t: &Tlv<'_>| {
            ASN1Time::from_der(t.raw)
                .map(|(_, t)| t.timestamp())
                .map_err(|_| OcspError::Malformed)
        };
        let this_update = time(need(parts.get(2))?)?;
        let next_update = match parts.get(3).filter(|t| t.tag == 0xa0) {
            Some(wrapper) => Some(time(&need(der::read(wrapper.content))?.0)?),
            None => None,
        };
        if this_update > now + SKEW {
            return Err(OcspError::Stale);
        }
        let valid_until = next_update.unwrap_or(this_update + NO_NEXT_UPDATE_LIFETIME);
        if now > valid_until {
            return Err(OcspError::Stale);
        }
        return Ok(CachedOcsp {
            status,
            this_update,
            produced_at,
            valid_until,
            obtained: now,
            origin: Origin::Fetched,
        });
    }
    Err(OcspError::OtherCertificate)
}

/// Asks `url` (or the cache) about `step.cert`.
pub async fn status(
    store: &Arc<Store>,
    step: &Step,
    url: &str,
    want: &Want,
) -> Result<Answer, String> {
    fetch::permitted(url, store.limits()).map_err(|e| e.to_string())?;
    if !url.to_ascii_lowercase().starts_with("http://") {
        return Err(format!("OCSP {url}: only http responders are asked"));
    }
    let id = cert_id(step);
    let slot = {
        let Ok(mut map) = store.ocsp.lock() else {
            return Err("OCSP cache unavailable".into());
        };
        let key = (url.to_owned(), id.clone());
        if !map.contains_key(&key) {
            sweeper::make_room(&mut *map, sweeper::MAX_OCSP_ANSWERS, "ocsp");
        }
        Arc::clone(map.entry(key).or_insert_with(|| Arc::new(Slot::new())))
    };
    store.ensure_sweeper();
    let renewed = slot.touch(want, || {
        let (step, url, want, id) = (step.clone(), url.to_owned(), want.clone(), id.clone());
        Renewal {
            want: want.clone(),
            job: Box::new(move |store: &Arc<Store>| {
                Box::pin(job(store, &step, &url, &want, id.clone()))
            }),
        }
    });
    if renewed {
        store.wake_sweeper();
    }
    let usable = |c: &CachedOcsp| unix_now() <= c.valid_until;
    let current = match slot.current() {
        Some(c) => Some(c),
        None => persisted(store, step, url, &id, want)
            .await
            .inspect(|c| slot.store(Arc::clone(c))),
    };
    let answer = match current.filter(|c| usable(c)) {
        Some(c) => {
            let now = unix_now();
            let due = now >= c.valid_until - (c.valid_until - c.this_update) / 10;
            if !want.cached_only && (due || c.origin == Origin::Persisted) {
                slot.refresh(None, || job(store, step, url, want, id)).await;
            }
            c
        }
        None if want.cached_only => {
            return Err(format!(
                "no cached OCSP answer from {url} (cached_only = true)"
            ));
        }
        None => {
            slot.refresh(Some(want.timeout), || job(store, step, url, want, id))
                .await;
            match slot.current().filter(|c| usable(c)) {
                Some(c) => c,
                None => {
                    return Err(slot.last_error().unwrap_or_else(|| {
                        format!("OCSP {url}: no answer within {:?}", want.timeout)
                    }));
                }
            }
        }
    };
    let now = unix_now();
    let how = format!(
        "OCSP {url}, answer {} {}s ago, issued {}s ago, valid {}s more",
        match answer.origin {
            Origin::Fetched => "fetched",
            Origin::Persisted => "read from the state directory",
        },
        now.saturating_sub(answer.obtained),
        now.saturating_sub(answer.this_update),
        answer.valid_until.saturating_sub(now)
    );
    Ok(match answer.status {
        CertStatus::Good => Answer::Good(how),
        CertStatus::Revoked => Answer::Revoked(how),
        CertStatus::Unknown => Answer::Unknown(format!("{how}: the responder does not know it")),
    })
}

/// Whether `answer` is older than the answer cached for the same responder and certificate (an
/// earlier thisUpdate, or the same thisUpdate produced earlier): a replayed answer, e.g. a
/// "good" from before the revocation, which must not replace a newer one (as a CRL with a
/// lower number does not, see [`super::crl::Crl::older_than`]).
fn rolled_back(store: &Store, url: &str, id: &[u8], answer: &CachedOcsp) -> bool {
    let cached = store.ocsp.lock().ok().and_then(|map| {
        map.get(&(url.to_owned(), id.to_vec()))
            .and_then(|slot| slot.current())
    });
    cached
        .is_some_and(|c| (answer.this_update, answer.produced_at) < (c.this_update, c.produced_at))
}

/// The state directory file of the answer from `url` about CertID `id`.
pub(crate) fn state_file(store: &Store, url: &str, id: &[u8]) -> Option<std::path::PathBuf> {
    let mut key = url.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(id);
    store.state_file("ocsp", &key)
}

/// The answer persisted for `url` and this certificate, verified again as if just fetched (the
/// signature, the responder's authorisation, thisUpdate and nextUpdate), so a restart with the
/// responder down serves a valid answer and never a stale or tampered one.
async fn persisted(
    store: &Store,
    step: &Step,
    url: &str,
    id: &[u8],
    want: &Want,
) -> Option<Arc<CachedOcsp>> {
    let path = state_file(store, url, id)?;
    let step = step.clone();
    let keys = Arc::clone(&want.keys);
    let answer = tokio::task::spawn_blocking(move || {
        let body = std::fs::read(&path).ok()?;
        verify_response(&body, &step, &keys, unix_now()).ok()
    })
    .await
    .ok()??;
    Some(Arc::new(CachedOcsp {
        origin: Origin::Persisted,
        ..answer
    }))
}

fn job(
    store: &Arc<Store>,
    step: &Step,
    url: &str,
    want: &Want,
    id: Vec<u8>,
) -> impl std::future::Future<Output = Result<Arc<CachedOcsp>, String>> + Send + 'static {
    let store = Arc::clone(store);
    let step = step.clone();
    let url = url.to_owned();
    let want = want.clone();
    async move {
        let body = fetch::http(
            &url,
            Some(("application/ocsp-request", request(&id))),
            store.limits(),
            want.timeout.max(Duration::from_millis(1)),
        )
        .await
        .map_err(|e| {
            metrics::fetch_failed(&want.label, "ocsp");
            e.to_string()
        })?;
        match verify_response(&body, &step, &want.keys, unix_now()) {
            Ok(answer) if rolled_back(&store, &url, &id, &answer) => {
                metrics::ocsp_rollback(&want.label);
                metrics::fetch_failed(&want.label, "ocsp");
                tracing::warn!(url = %url, "OCSP response older than the cached one refused");
                Err(format!(
                    "OCSP {url}: the answer (thisUpdate {}, producedAt {}) is older than the \
                     cached one: refused as a rollback, the cached one keeps serving",
                    answer.this_update, answer.produced_at
                ))
            }
            Ok(answer) => {
                if let Some(path) = state_file(&store, &url, &id) {
                    let _ =
                        tokio::task::spawn_blocking(move || super::cache::persist(&path, &body))
                            .await;
                }
                metrics::ocsp_outcome(
                    &want.label,
                    match answer.status {
                        CertStatus::Good => "good",
                        CertStatus::Revoked => "revoked",
                        CertStatus::Unknown => "unknown",
                    },
                );
                store.wake_sweeper();
                Ok(Arc::new(answer))
            }
            Err(e) => {
                metrics::ocsp_outcome(&want.label, "invalid");
                tracing::warn!(url = %url, error = %e, "OCSP response refused");
                Err(format!("OCSP {url}: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The fixed PKI and the real `openssl ocsp` responses of the `ocsp` fuzz target
    /// (fuzz/make-revocation-seeds.sh): each seed reaches the check it is meant to exercise.
    #[test]
    fn fuzz_seed_responses_reach_every_check() {
        let link = |der: &[u8]| Link::parse(der).unwrap();
        let ca = link(include_bytes!("../../fuzz/data/ocsp/ca.der"));
        let stranger = link(include_bytes!("../../fuzz/data/ocsp/stranger.der"));
        let step = Step {
            cert: Arc::new(link(include_bytes!("../../fuzz/data/ocsp/leaf.der"))),
            issuer: Arc::new(ca.clone()),
        };
        let now: i64 = include_str!("../../fuzz/data/ocsp/now")
            .trim()
            .parse()
            .unwrap();
        macro_rules! response {
            ($name:literal) => {
                include_bytes!(concat!("../../fuzz/data/ocsp/responses/", $name)).as_slice()
            };
        }
        let keys = [ca.spki.clone()];
        let check = |body: &[u8]| verify_response(body, &step, &keys, now).map(|c| c.status);
        assert_eq!(check(response!("ca-good.der")), Ok(CertStatus::Good));
        assert_eq!(check(response!("ca-revoked.der")), Ok(CertStatus::Revoked));
        assert_eq!(
            check(response!("ca-two-answers.der")),
            Ok(CertStatus::Revoked)
        );
        assert_eq!(check(response!("delegated-good.der")), Ok(CertStatus::Good));
        assert_eq!(
            check(response!("delegated-revoked-by-key-id.der")),
            Ok(CertStatus::Revoked)
        );
        let no_next = verify_response(response!("ca-no-next-update.der"), &step, &keys, now);
        let no_next = no_next.unwrap();
        assert_eq!(
            no_next.valid_until,
            no_next.this_update + NO_NEXT_UPDATE_LIFETIME
        );
        assert_eq!(check(response!("ca-unknown.der")), Ok(CertStatus::Unknown));
        assert_eq!(
            check(response!("ca-other-certificate.der")),
            Err(OcspError::OtherCertificate)
        );
        assert_eq!(
            check(response!("impostor-good.der")),
            Err(OcspError::Unauthorised)
        );
        assert_eq!(
            check(response!("try-later.der")),
            Err(OcspError::NotSuccessful(3))
        );
        // Without the CA's key (a same-named CA) even the genuine answers do not count.
        let stranger_keys = [stranger.spki];
        for body in [response!("ca-good.der"), response!("delegated-good.der")] {
            assert_eq!(
                verify_response(body, &step, &stranger_keys, now).map(|c| c.status),
                Err(OcspError::Unauthorised)
            );
        }
        // Ten years on they are stale.
        assert_eq!(
            verify_response(response!("ca-good.der"), &step, &keys, now + 3651 * 86_400)
                .map(|c| c.status),
            Err(OcspError::Stale)
        );
    }
}
