//! Client chains that verified, so a client that connects again with the same chain costs no
//! second signature check of its certificates, and no second parse of its leaf.
//!
//! Verifying the CA's signature on a client certificate is a quarter of the instructions of a
//! full mTLS handshake (callgrind: 0.74M of 2.9M), and it always gives the same answer for the
//! same bytes against the same trust anchors. What can change is time: a chain is only valid
//! between the latest notBefore and the earliest notAfter of its certificates, so that window is
//! kept and checked at every use, exactly as webpki checks it. Nothing else is skipped: the
//! client still proves possession of its key (CertificateVerify) in every handshake, and
//! revocation and mapping are applied after it as always. The leaf's [`CertFacts`] are kept with
//! the chain: they are what the bytes say, and parsing them again cost about 4% of a full
//! handshake's CPU time (perf, `openssl s_time` as the client).
//!
//! Only successes are kept, so a chain that failed is verified (and refused) every time. The
//! set belongs to one [`super::client_auth::ClientAuth`], which a reload rebuilds with its trust
//! anchors, so a chain verified against anchors that were since removed is never taken for
//! verified. It is bounded: when full it is emptied, which costs a signature check per chain
//! again, never a wrong answer.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};

use crate::chain_cache::{ChainCache, ChainKey};
use crate::identity::CertFacts;

/// Chains kept; emptied when full (a few megabytes at most).
const CAPACITY: usize = 4096;

/// When a chain's certificates are all in date, in Unix seconds (inclusive, as webpki checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    not_before: i64,
    not_after: i64,
}

/// A chain that verified: when it is in date, and what its leaf says.
#[derive(Debug, Clone)]
struct Verified {
    window: Window,
    facts: Arc<CertFacts>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct VerifiedChains {
    chains: ChainCache<Verified>,
}

impl Default for VerifiedChains {
    fn default() -> Self {
        Self {
            chains: ChainCache::new(CAPACITY),
        }
    }
}

impl VerifiedChains {
    /// The leaf's facts when the chain verified before and all its certificates are in date at
    /// `now`.
    pub fn get(&self, key: &ChainKey, now: UnixTime) -> Option<Arc<CertFacts>> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        self.chains
            .get(key, |v| {
                v.window.not_before <= now && now <= v.window.not_after
            })
            .map(|v| v.facts)
    }

    /// Whether the chain verified before and all its certificates are in date at `now`.
    #[cfg(test)]
    fn contains(&self, key: &ChainKey, now: UnixTime) -> bool {
        self.get(key, now).is_some()
    }

    /// Records a chain the verifier has just accepted, with its leaf's `facts`. A chain whose
    /// intermediates do not all parse, or whose certificates have no common validity period, is
    /// not kept.
    pub fn insert(
        &self,
        key: ChainKey,
        facts: Arc<CertFacts>,
        intermediates: &[CertificateDer<'_>],
    ) {
        let mut window = Window {
            not_before: facts.not_before,
            not_after: facts.not_after,
        };
        for cert in intermediates {
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
        self.chains.insert(key, Verified { window, facts });
    }

    /// Lookups that found a verified chain, and lookups that did not.
    pub fn counts(&self) -> (u64, u64) {
        self.chains.counts()
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
        let facts = Arc::new(CertFacts::parse(&leaf).unwrap());
        assert!(!chains.contains(&key(), at(from)), "nothing before insert");
        chains.insert(key(), Arc::clone(&facts), &chain);
        let kept = chains.get(&key(), at(from)).unwrap();
        assert!(
            Arc::ptr_eq(&kept, &facts),
            "the leaf's facts are kept, not parsed again"
        );
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
        assert_eq!(chains.counts(), (3, 5));
    }

    #[test]
    fn chains_with_unreadable_intermediates_are_not_kept() {
        let ca = Authority::new("Chains CA").unwrap();
        let leaf = ca.client(&ClientSpec::new("bob")).unwrap().der;
        let facts = Arc::new(CertFacts::parse(&leaf).unwrap());
        let now = UnixTime::now();
        let chains = VerifiedChains::default();
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let with_garbage = ChainKey::of(&leaf, std::slice::from_ref(&garbage));
        chains.insert(
            with_garbage,
            Arc::clone(&facts),
            std::slice::from_ref(&garbage),
        );
        assert!(!chains.contains(&with_garbage, now));
        chains.insert(ChainKey::of(&leaf, &[]), facts, &[]);
        assert!(chains.contains(&ChainKey::of(&leaf, &[]), now));
    }
}
