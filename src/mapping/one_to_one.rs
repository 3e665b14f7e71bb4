//! IIS one-to-one mappings: one exact certificate, one user.
//!
//! IIS stores the whole certificate as one-line base64 DER and requires the presented certificate
//! to be byte-identical. Comparing base64 text would make formatting (line breaks, PEM armour)
//! matter and would cost a string scan per connection, so entries are decoded at config load and
//! indexed by the SHA-256 of their DER: one hash lookup per connection, however many entries.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::MappedUser;

/// Why a mapping's certificate text could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateTextError {
    /// Nothing left after removing PEM armour and white space.
    #[error("the certificate is empty")]
    Empty,
    /// Not base64 (IIS would fail the same entry with 401.1, CRYPT_E_ASN1_EOD).
    #[error("not valid base64 ({0}); paste the certificate's base64 DER or PEM as is")]
    Base64(String),
}

/// Decodes the forms people paste: IIS one-line base64, base64 wrapped at 64 columns, or a
/// whole PEM block with its `-----BEGIN CERTIFICATE-----` armour.
pub fn decode_certificate_text(text: &str) -> Result<Vec<u8>, CertificateTextError> {
    let mut der = Vec::new();
    decode_certificate_text_into(text, &mut der)?;
    Ok(der)
}

/// [`decode_certificate_text`] into a reused buffer (cleared first).
///
/// The decoder is `base64-simd`'s strict standard alphabet (padding required, unused trailing
/// bits zero, as the `base64` crate's `STANDARD` decides; a test holds the two to the same
/// answers): decoding was an eighth of loading a million-row mapping table. The `base64` crate
/// only words the error.
pub fn decode_certificate_text_into(
    text: &str,
    der: &mut Vec<u8>,
) -> Result<(), CertificateTextError> {
    der.clear();
    // The IIS one-line form decodes as is. Text that decodes is only base64 characters, so
    // removing armour and white space would not have changed it; anything else (including a
    // decoding error) takes the general path below, which owns the error message.
    if !text.is_empty() && base64_simd::STANDARD.decode_append(text, der).is_ok() {
        return Ok(());
    }
    der.clear();
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.is_empty() {
        return Err(CertificateTextError::Empty);
    }
    if base64_simd::STANDARD.decode_append(&body, der).is_ok() {
        return Ok(());
    }
    der.clear();
    Err(CertificateTextError::Base64(
        match STANDARD.decode(body.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(_) => "not canonical".to_owned(),
        },
    ))
}

/// Why a mapping's certificate cannot be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// The text does not decode.
    Text(CertificateTextError),
    /// The bytes are not an X.509 certificate; the parser's reason.
    NotX509(String),
}

/// The SHA-256 index key of DER bytes that must be an X.509 certificate.
pub fn certificate_digest(der: &[u8]) -> Result<[u8; 32], CertificateProblem> {
    crate::identity::check_certificate_der(der).map_err(CertificateProblem::NotX509)?;
    Ok(crate::identity::sha256(der))
}

/// Decodes, checks and hashes a mapping's certificate text; `der` is scratch space.
pub fn digest_certificate_text(
    text: &str,
    der: &mut Vec<u8>,
) -> Result<[u8; 32], CertificateProblem> {
    decode_certificate_text_into(text, der).map_err(CertificateProblem::Text)?;
    certificate_digest(der)
}

/// `f(index, item, scratch)` for every item, on all cores for long lists, answers in item
/// order. Loading a million mappings is mostly this per-entry work (decode, check, hash), and
/// entries are independent; `scratch` is a per-thread buffer for decoding.
pub fn map_entries<T: Sync, R: Send + Default>(
    items: &[T],
    f: impl Fn(usize, &T, &mut Vec<u8>) -> R + Sync,
) -> Vec<R> {
    /// Work is handed out in batches of this many entries; fewer in all and one thread does it.
    const BATCH: usize = 4096;
    let mut out = Vec::with_capacity(items.len());
    out.resize_with(items.len(), R::default);
    let batches = Mutex::new(items.chunks(BATCH).zip(out.chunks_mut(BATCH)).enumerate());
    let work = || {
        let mut scratch = Vec::with_capacity(2048);
        loop {
            let next = batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next();
            let Some((batch, (items, out))) = next else {
                break;
            };
            for (k, (item, slot)) in items.iter().zip(out).enumerate() {
                *slot = f(batch * BATCH + k, item, &mut scratch);
            }
        }
    };
    let helpers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len().div_ceil(BATCH))
        .saturating_sub(1);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            // A helper that cannot start leaves its share to the others and this thread.
            let _ = std::thread::Builder::new()
                .name("certgate-load".into())
                .spawn_scoped(scope, work);
        }
        work();
    });
    out
}

/// The index from certificate hash to mapped user.
#[derive(Debug, Default)]
pub struct OneToOneIndex {
    by_hash: HashMap<[u8; 32], Arc<MappedUser>, BuildHasherDefault<DigestHasher>>,
}

impl OneToOneIndex {
    /// An index sized for `n` entries, so loading a million mappings does not rehash repeatedly.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            by_hash: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
        }
    }

    /// Adds an enabled entry. Returns the entry already holding the same certificate, which IIS
    /// reports as a duplicate collection key (500.19, 0x800700b7).
    pub fn insert(
        &mut self,
        sha256: [u8; 32],
        user: Arc<MappedUser>,
    ) -> Result<(), Arc<MappedUser>> {
        match self.by_hash.entry(sha256) {
            std::collections::hash_map::Entry::Occupied(e) => Err(Arc::clone(e.get())),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(user);
                Ok(())
            }
        }
    }

    /// An index of `entries`, inserted in order: an entry whose certificate an earlier one
    /// already holds is not inserted, and comes back as (its position, the earlier entry), in
    /// order.
    ///
    /// Same answer as [`Self::insert`] one by one, but a million entries inserted in file order
    /// touch the table at random, a cache and TLB miss each. Here they are first grouped (stably,
    /// so duplicates still meet in file order) by the part of the table they land in, and each
    /// group is inserted while its part of the table is in cache.
    pub fn build(
        entries: Vec<([u8; 32], Arc<MappedUser>)>,
    ) -> (Self, Vec<(usize, Arc<MappedUser>)>) {
        /// Groups of at most 2^12: a group's slice of the table fits in L2.
        const GROUP_BITS: u32 = 12;
        let mut index = Self::with_capacity(entries.len());
        // The table's bucket count: hashbrown keeps a power of two with 7/8 of it usable. If
        // that ever changes the grouping is merely less useful, never wrong.
        let buckets = index.by_hash.capacity().max(1).next_power_of_two();
        let bits = buckets.trailing_zeros();
        let shift = bits.saturating_sub(GROUP_BITS);
        let group = |digest: &[u8; 32]| {
            // `as usize` keeps the low bits, which are the ones the table uses.
            (digest_hash(digest) as usize & (buckets - 1)) >> shift
        };
        let mut counts = vec![0usize; 1 << bits.min(GROUP_BITS)];
        for (digest, _) in &entries {
            counts[group(digest)] += 1;
        }
        type Group = Vec<(usize, [u8; 32], Arc<MappedUser>)>;
        let mut groups: Vec<Group> = counts.iter().map(|n| Vec::with_capacity(*n)).collect();
        for (position, (digest, user)) in entries.into_iter().enumerate() {
            groups[group(&digest)].push((position, digest, user));
        }
        let mut duplicates = Vec::new();
        for group in groups {
            for (position, digest, user) in group {
                if let Err(existing) = index.insert(digest, user) {
                    duplicates.push((position, existing));
                }
            }
        }
        duplicates.sort_unstable_by_key(|(position, _)| *position);
        (index, duplicates)
    }

    /// The user mapped to a certificate, by the SHA-256 of its DER.
    pub fn lookup(&self, sha256: &[u8; 32]) -> Option<&Arc<MappedUser>> {
        self.by_hash.get(sha256)
    }

    /// Every mapped user, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &Arc<MappedUser>> {
        self.by_hash.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// An index at least this large is freed on a thread of its own (see the `Drop` impl).
const BACKGROUND_DROP_MIN: usize = 10_000;

impl Drop for OneToOneIndex {
    /// Freeing a million entries (two allocations each and the table) takes a few hundred
    /// milliseconds. The old configuration is dropped by whoever lets go of it last: the reload
    /// that replaced it, or a connection task on an async worker. Neither should pay that, so a
    /// large index is handed to a short-lived thread that frees it.
    fn drop(&mut self) {
        self.release_large();
    }
}

impl OneToOneIndex {
    /// Hands the entries of a large index to a thread that frees them; leaves a small one.
    fn release_large(&mut self) {
        if self.by_hash.len() >= BACKGROUND_DROP_MIN {
            drop_in_background(std::mem::take(&mut self.by_hash));
        }
    }
}

/// Drops `value` on a new thread; on this one if no thread can be started.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    // If the spawn fails, the closure (and `value` with it) is dropped here.
    let _ = std::thread::Builder::new()
        .name("certgate-drop".into())
        .spawn(move || drop(value));
}

/// Keys are already SHA-256 digests, so their first eight bytes are a uniformly distributed hash;
/// rehashing them with SipHash would only cost time on every connection.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (i * 8);
        }
    }

    /// `[u8; 32]` hashes as a length prefix (always 32) and then its bytes; the prefix carries
    /// nothing, so the hash is exactly the digest's first eight bytes.
    fn write_usize(&mut self, _: usize) {}
}

/// The hash [`DigestHasher`] gives a digest key.
fn digest_hash(digest: &[u8; 32]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::identity::sha256;
    use crate::mapping::MappingKind;

    fn user(name: &str) -> Arc<MappedUser> {
        Arc::new(MappedUser {
            user_name: name.into(),
            kind: MappingKind::OneToOne,
            source: format!("one_to_one_mappings[{name}]").into(),
            password: None,
        })
    }

    #[test]
    fn decodes_every_pasted_form() {
        let der = b"\x30\x03\x02\x01\x05-some-der-bytes".to_vec();
        let b64 = STANDARD.encode(&der);
        let wrapped: String = b64
            .as_bytes()
            .chunks(8)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{wrapped}-----END CERTIFICATE-----\n");
        for text in [b64.clone(), wrapped, pem, format!("  {b64}\n")] {
            assert_eq!(decode_certificate_text(&text).unwrap(), der, "{text:?}");
        }
    }

    /// The fast decoder must accept exactly what the `base64` crate's strict `STANDARD`
    /// accepts, with the same bytes: padding, trailing bits, stray characters and lengths around
    /// the SIMD block sizes, from encodings of random bytes with a character or two changed.
    #[test]
    fn the_fast_decoder_agrees_with_the_base64_crate() {
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n.";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..200_000 {
            let len = usize::try_from(next() % 100).unwrap();
            let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            let mut text = STANDARD.encode(&bytes).into_bytes();
            for _ in 0..next() % 3 {
                if text.is_empty() {
                    break;
                }
                // Mostly near the end, where padding and trailing bits live.
                let back = usize::try_from(next() % 4).unwrap().min(text.len() - 1);
                let at = if next() % 2 == 0 {
                    text.len() - 1 - back
                } else {
                    usize::try_from(next()).unwrap() % text.len()
                };
                text[at] = ALPHABET[usize::try_from(next()).unwrap() % ALPHABET.len()];
            }
            if next() % 8 == 0 {
                text.truncate(text.len().saturating_sub(1));
            }
            let simd = base64_simd::STANDARD.decode_to_vec(&text).ok();
            let reference = STANDARD.decode(&text).ok();
            assert_eq!(simd, reference, "{:?}", String::from_utf8_lossy(&text));
            if reference.is_some() {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both answers were exercised often.
        assert!(
            accepted > 50_000 && refused > 50_000,
            "{accepted} {refused}"
        );
    }

    #[test]
    fn rejects_empty_and_bad_base64() {
        assert_eq!(
            decode_certificate_text("  \n"),
            Err(CertificateTextError::Empty)
        );
        assert!(matches!(
            decode_certificate_text("MIIC!!!"),
            Err(CertificateTextError::Base64(_))
        ));
        // A dropped character (the IIS 0x80093102 case) breaks base64 padding.
        let b64 = STANDARD.encode(b"0123456789abcdef");
        assert!(decode_certificate_text(&b64[1..]).is_err());
    }

    #[test]
    fn digest_hash_is_the_hasher() {
        use std::hash::BuildHasher;
        let digest = sha256(b"x");
        let hasher = BuildHasherDefault::<DigestHasher>::default();
        assert_eq!(hasher.hash_one(digest), digest_hash(&digest));
    }

    #[test]
    fn build_answers_like_inserting_in_order() {
        let certs: Vec<[u8; 32]> = (0..20_000u32)
            .map(|i| sha256(&(i % 15_000).to_le_bytes()))
            .collect();
        let entries: Vec<_> = certs
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, user(&i.to_string())))
            .collect();
        let mut one_by_one = OneToOneIndex::with_capacity(entries.len());
        let mut expected = Vec::new();
        for (position, (digest, user)) in entries.iter().enumerate() {
            if let Err(existing) = one_by_one.insert(*digest, Arc::clone(user)) {
                expected.push((position, existing.user_name.to_string()));
            }
        }
        let (index, duplicates) = OneToOneIndex::build(entries);
        let duplicates: Vec<_> = duplicates
            .into_iter()
            .map(|(p, e)| (p, e.user_name.to_string()))
            .collect();
        assert_eq!(duplicates, expected);
        assert_eq!(duplicates.len(), 5_000);
        assert_eq!(index.len(), 15_000);
        for digest in &certs {
            assert_eq!(
                index.lookup(digest).unwrap().user_name,
                one_by_one.lookup(digest).unwrap().user_name
            );
        }
        let (empty, none) = OneToOneIndex::build(Vec::new());
        assert!(empty.is_empty() && none.is_empty());
    }

    /// Records the thread it is dropped on.
    struct Probe(std::sync::mpsc::Sender<Option<String>>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self
                .0
                .send(std::thread::current().name().map(str::to_owned));
        }
    }

    #[test]
    fn large_indexes_are_freed_on_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        drop_in_background(Probe(tx));
        let on = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        assert_eq!(on.as_deref(), Some("certgate-drop"));

        // The index hands its entries over when it is large, keeps them when small.
        let big: Vec<_> = (0..BACKGROUND_DROP_MIN as u32)
            .map(|i| (sha256(&i.to_le_bytes()), user("u")))
            .collect();
        let one = Arc::clone(&big[0].1);
        let (mut index, _) = OneToOneIndex::build(big);
        index.release_large();
        assert!(index.is_empty(), "the entries moved to the drop thread");
        for _ in 0..3000 {
            if Arc::strong_count(&one) == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(Arc::strong_count(&one), 1, "the entries were freed");

        let mut small = OneToOneIndex::with_capacity(1);
        small.insert(sha256(b"a"), user("a")).unwrap();
        small.release_large();
        assert_eq!(small.len(), 1, "a small index is freed in place");
    }

    #[test]
    fn finds_exact_der_only_and_reports_duplicates() {
        let mut index = OneToOneIndex::with_capacity(2);
        index.insert(sha256(b"cert-a"), user("alice")).unwrap();
        index.insert(sha256(b"cert-b"), user("bob")).unwrap();
        assert_eq!(
            &*index.lookup(&sha256(b"cert-a")).unwrap().user_name,
            "alice"
        );
        assert!(index.lookup(&sha256(b"cert-a ")).is_none());
        let dup = index
            .insert(sha256(b"cert-b"), user("mallory"))
            .unwrap_err();
        assert_eq!(&*dup.user_name, "bob");
        assert_eq!(index.len(), 2);
    }
}
