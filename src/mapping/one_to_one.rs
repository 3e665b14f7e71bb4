//! IIS one-to-one mappings: one exact certificate, one user.
//!
//! IIS stores the whole certificate as one-line base64 DER and requires the presented certificate
//! to be byte-identical. Comparing base64 text would make formatting (line breaks, PEM armour)
//! matter and would cost a string scan per connection, so entries are decoded at config load and
//! indexed by the SHA-256 of their DER: one hash lookup per connection, however many entries.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

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
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.is_empty() {
        return Err(CertificateTextError::Empty);
    }
    STANDARD
        .decode(body.as_bytes())
        .map_err(|e| CertificateTextError::Base64(e.to_string()))
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

/// Keys are already SHA-256 digests, so their first eight bytes are a uniformly distributed hash;
/// rehashing them with SipHash would only cost time on every connection.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its bytes (arrays do not write a length prefix).
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (i * 8);
        }
    }
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
