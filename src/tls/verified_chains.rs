//! Client chains that verified, so a client that connects again with the same chain costs no
//! second signature check of its certificates.
//!
//! Verifying the CA's signature on a client certificate is a quarter of the instructions of a
//! full mTLS handshake (callgrind: 0.74M of 2.9M), and it always gives the same answer for the
//! same bytes against the same trust anchors. What can change is time: a chain is only valid
//! between the latest notBefore and the earliest notAfter of its certificates, so that window is
//! kept and checked at every use, exactly as webpki checks it. Nothing else is skipped: the
//! client still proves possession of its key (CertificateVerify) in every handshake, and
//! revocation and mapping are applied after it as always.
//!
//! Only successes are kept, so a chain that failed is verified (and refused) every time. The
//! set belongs to one [`super::client_auth::ClientAuth`], which a reload rebuilds with its trust
//! anchors, so a chain verified against anchors that were since removed is never taken for
//! verified. It is bounded: when full it is emptied, which costs a signature check per chain
//! again, never a wrong answer.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rustls::pki_types::{CertificateDer, UnixTime};

/// Chains kept; emptied when full (a few hundred kilobytes at most).
const CAPACITY: usize = 4096;

/// When a chain's certificates are all in date, in Unix seconds (inclusive, as webpki checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    not_before: i64,
    not_after: i64,
}

/// See the module documentation.
#[derive(Default)]
pub struct VerifiedChains {
    chains: Mutex<HashMap<[u8; 32], Window>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for VerifiedChains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (hits, misses) = self.counts();
        f.debug_struct("VerifiedChains")
            .field("hits", &hits)
            .field("misses", &misses)
            .finish_non_exhaustive()
    }
}

/// The key of a presented chain: SHA-256 over each certificate, length first.
pub struct ChainKey([u8; 32]);

impl ChainKey {
    pub fn of(leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Self {
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for cert in std::iter::once(leaf).chain(intermediates) {
            hash.update(&(cert.len() as u64).to_be_bytes());
            hash.update(cert.as_ref());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.finish().as_ref());
        Self(key)
    }
}

impl VerifiedChains {
    /// Whether the chain verified before and all its certificates are in date at `now`.
    pub fn contains(&self, key: &ChainKey, now: UnixTime) -> bool {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let found = self
            .chains
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key.0)
            .is_some_and(|w| w.not_before <= now && now <= w.not_after);
        let counter = if found { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Records a chain the verifier has just accepted. A chain whose certificates do not all
    /// parse, or have no common validity period, is not kept.
    pub fn insert(
        &self,
        key: ChainKey,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) {
        let mut window = Window {
            not_before: i64::MIN,
            not_after: i64::MAX,
        };
        for cert in std::iter::once(leaf).chain(intermediates) {
            let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
                return;
            };
            let validity = parsed.validity();
            window.not_before = window.not_before.max(validity.not_before.timestamp());
            window.not_after = window.not_after.min(validity.not_after.timestamp());
        }
        if window.not_before > window.not_after {
            return;
        }
        let mut chains = self.chains.lock().unwrap_or_else(PoisonError::into_inner);
        if chains.len() >= CAPACITY {
            chains.clear();
        }
        chains.insert(key.0, window);
    }

    /// Lookups that found a verified chain, and lookups that did not.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::pki::{Authority, ClientSpec};

    fn at(secs: i64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap()))
    }

    #[test]
    fn a_chain_is_verified_only_within_the_validity_of_all_its_certificates() {
        let root = Authority::new("Chains root").unwrap();
        let intermediate = root.intermediate("Chains issuing CA", &[], &[]).unwrap();
        let leaf = intermediate.client(&ClientSpec::new("alice")).unwrap().der;
        let chain = [intermediate.der.clone()];
        let validity = |der: &CertificateDer<'_>| {
            let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
            (
                c.validity().not_before.timestamp(),
                c.validity().not_after.timestamp(),
            )
        };
        let (leaf_from, leaf_to) = validity(&leaf);
        let (ca_from, ca_to) = validity(&intermediate.der);
        let (from, to) = (leaf_from.max(ca_from), leaf_to.min(ca_to));

        let chains = VerifiedChains::default();
        let key = || ChainKey::of(&leaf, &chain);
        assert!(!chains.contains(&key(), at(from)), "nothing before insert");
        chains.insert(key(), &leaf, &chain);
        assert!(chains.contains(&key(), at(from)));
        assert!(chains.contains(&key(), at(to)));
        assert!(!chains.contains(&key(), at(from - 1)), "not yet valid");
        assert!(!chains.contains(&key(), at(to + 1)), "expired");
        // The leaf alone, or with another intermediate, is another chain.
        assert!(!chains.contains(&ChainKey::of(&leaf, &[]), at(from)));
        assert!(!chains.contains(
            &ChainKey::of(&leaf, std::slice::from_ref(&root.der)),
            at(from)
        ));
        assert_eq!(chains.counts(), (2, 5));
    }

    #[test]
    fn unreadable_chains_are_not_kept_and_a_full_set_starts_again() {
        let ca = Authority::new("Chains CA").unwrap();
        let leaf = ca.client(&ClientSpec::new("bob")).unwrap().der;
        let now = UnixTime::now();
        let chains = VerifiedChains::default();
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        chains.insert(ChainKey::of(&garbage, &[]), &garbage, &[]);
        assert!(!chains.contains(&ChainKey::of(&garbage, &[]), now));

        for i in 0..CAPACITY {
            let other = CertificateDer::from(u32::try_from(i).unwrap().to_be_bytes().to_vec());
            chains.insert(ChainKey::of(&leaf, &[other]), &leaf, &[]);
        }
        assert_eq!(chains.chains.lock().unwrap().len(), CAPACITY);
        chains.insert(ChainKey::of(&leaf, &[]), &leaf, &[]);
        assert_eq!(
            chains.chains.lock().unwrap().len(),
            1,
            "emptied, then the new one"
        );
        assert!(chains.contains(&ChainKey::of(&leaf, &[]), now));
    }
}
