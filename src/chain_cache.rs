//! Results kept per presented client chain, so a client that connects again with the same
//! certificates costs its chain's signature checks, parse and path building once.
//!
//! A browser or service reconnects many times with one certificate: every new TCP connection
//! whose session is not resumed is a full handshake, and the work that depends only on the
//! bytes of the chain (webpki's signature check, the parse into [`crate::identity::CertFacts`],
//! the revocation path to an anchor) gives the same answer each time. What depends on time or
//! on the network (validity, CRLs, OCSP) is never kept here; each user of a cache checks it at
//! every use.
//!
//! The key is SHA-256 over the chain's certificates, each length first, so two chains share an
//! entry only when they are the same certificates in the same order. Each cache belongs to one
//! configuration load (a reload builds new ones with the new trust anchors), is bounded, and is
//! emptied when full: that costs the work again for every chain, never a wrong answer.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rustls::pki_types::CertificateDer;

/// The key of a presented chain: SHA-256 over each certificate, length first.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainKey([u8; 32]);

impl ChainKey {
    /// The key of `leaf` followed by `intermediates`, as a client presented them.
    pub fn of(leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Self {
        Self::of_chain(std::iter::once(leaf).chain(intermediates))
    }

    /// The key of a whole chain, leaf first.
    pub fn of_chain<'a>(chain: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> Self {
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for cert in chain {
            hash.update(&(cert.len() as u64).to_be_bytes());
            hash.update(cert.as_ref());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.finish().as_ref());
        Self(key)
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChainKey({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A bounded map from [`ChainKey`] to a kept result, with hit and miss counts.
pub struct ChainCache<V> {
    entries: Mutex<HashMap<ChainKey, V>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<V> fmt::Debug for ChainCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (hits, misses) = self.counts();
        f.debug_struct("ChainCache")
            .field("len", &self.len())
            .field("hits", &hits)
            .field("misses", &misses)
            .finish_non_exhaustive()
    }
}

impl<V: Clone> ChainCache<V> {
    /// An empty cache that keeps at most `capacity` chains.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The value kept for `key` if `usable` accepts it; counted as a hit or a miss.
    pub fn get(&self, key: &ChainKey, usable: impl FnOnce(&V) -> bool) -> Option<V> {
        let found = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|v| usable(v))
            .cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `value` for `key`, emptying the cache first when it is full.
    pub fn insert(&self, key: ChainKey, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

impl<V> ChainCache<V> {
    /// Chains kept now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups that found a usable entry, and lookups that did not.
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
    use super::*;

    fn der(bytes: &[u8]) -> CertificateDer<'static> {
        CertificateDer::from(bytes.to_vec())
    }

    #[test]
    fn a_key_is_the_same_certificates_in_the_same_order() {
        let (a, b) = (der(b"first"), der(b"second"));
        assert_eq!(
            ChainKey::of(&a, std::slice::from_ref(&b)),
            ChainKey::of_chain([&a, &b])
        );
        assert_ne!(
            ChainKey::of(&a, &[]),
            ChainKey::of(&a, std::slice::from_ref(&b))
        );
        assert_ne!(
            ChainKey::of(&a, std::slice::from_ref(&b)),
            ChainKey::of(&b, std::slice::from_ref(&a))
        );
        // Lengths are part of the key: moving a byte between certificates is another chain.
        assert_ne!(
            ChainKey::of(&der(b"ab"), &[der(b"c")]),
            ChainKey::of(&der(b"a"), &[der(b"bc")])
        );
    }

    #[test]
    fn only_usable_entries_are_hits_and_a_full_cache_starts_again() {
        let cache = ChainCache::new(3);
        let key = |i: u8| ChainKey::of(&der(&[i]), &[]);
        assert_eq!(cache.get(&key(0), |_| true), None);
        cache.insert(key(0), 10);
        assert_eq!(cache.get(&key(0), |v| *v == 10), Some(10));
        assert_eq!(
            cache.get(&key(0), |v| *v == 11),
            None,
            "refused by the caller"
        );
        assert_eq!(cache.counts(), (1, 2));

        cache.insert(key(1), 11);
        cache.insert(key(2), 12);
        cache.insert(key(2), 13);
        assert_eq!(
            cache.len(),
            3,
            "replacing a kept chain does not empty the cache"
        );
        cache.insert(key(3), 14);
        assert_eq!(cache.len(), 1, "emptied, then the new one");
        assert_eq!(cache.get(&key(3), |_| true), Some(14));
        assert_eq!(cache.get(&key(0), |_| true), None);
    }
}
