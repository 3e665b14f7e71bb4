//! Certificate revocation lists: parsed once into an owned, O(1)-lookup form, their signature
//! checked against the issuing CA's key, their scope (Issuing Distribution Point) honoured and
//! delta CRLs applied over their base as RFC 5280 §5.2.4 says.
//!
//! A CRL is parsed with x509-parser and reduced to what a revocation decision needs: the issuer
//! name, the validity window, the CRL number, the delta indicator, the scope and a `HashMap` of
//! revoked serials. The DER is kept so the CRL can be persisted and its signature re-checked
//! against another key of the same CA (a renewed CA signs with its new key).

use std::collections::HashMap;
use std::sync::Mutex;

use x509_parser::der_parser::num_bigint::BigUint;
use x509_parser::extensions::{
    CRLDistributionPoints, DistributionPointName, GeneralName, ParsedExtension,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// `id-ce-deltaCRLIndicator` (RFC 5280 §5.2.4).
const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
/// `id-ce-freshestCRL` (RFC 5280 §5.2.6 / §4.2.1.15).
pub(crate) const OID_FRESHEST_CRL: &str = "2.5.29.46";

/// Revocation reasons that change how an entry is read.
const REASON_CERTIFICATE_HOLD: u8 = 6;
const REASON_REMOVE_FROM_CRL: u8 = 8;

/// Why a CRL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// Not a DER (or PEM) X.509 CRL.
    #[error("not a CRL: {0}")]
    Parse(String),
    /// The signature does not verify with any key of the issuing CA.
    #[error("CRL signature does not verify with the issuing CA's key")]
    Signature,
    /// The CRL was issued by another CA than the certificate.
    #[error("CRL issuer is not the certificate's issuer")]
    WrongIssuer,
    /// The issuing CA's certificate has a keyUsage without cRLSign (RFC 5280 §6.3.3 f).
    #[error(
        "the issuing CA's certificate does not allow its key to sign CRLs (no cRLSign in keyUsage)"
    )]
    NotCrlSigner,
}

/// How a serial appears on a CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Revoked for good (any reason but the two below).
    Revoked(u8),
    /// `certificateHold`: revoked until a later (delta) CRL says `removeFromCRL`.
    Hold,
    /// `removeFromCRL`: a delta CRL lifting an earlier hold.
    Remove,
}

/// The scope of a CRL from its Issuing Distribution Point extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// `onlyContainsUserCerts`.
    pub only_user: bool,
    /// `onlyContainsCACerts`.
    pub only_ca: bool,
    /// `onlySomeReasons` present: the CRL is partial, never enough on its own.
    pub partial_reasons: bool,
    /// `indirectCRL` or attribute certificates: not supported, so never applicable.
    pub unsupported: bool,
    /// URIs of the distribution point the CRL covers (empty: no name given).
    pub uris: Vec<String>,
}

/// A parsed, owned CRL.
#[derive(Debug)]
pub struct Crl {
    der: Vec<u8>,
    /// The issuer name, DER, compared byte for byte with a certificate's issuer.
    pub issuer: Vec<u8>,
    /// The authority key identifier, when present (picks the CA key after a renewal).
    pub authority_key_id: Option<Vec<u8>>,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds (absent: no promised expiry).
    pub next_update: Option<i64>,
    /// cRLNumber.
    pub number: Option<BigUint>,
    /// For a delta CRL, the BaseCRLNumber it applies to.
    pub delta_base: Option<BigUint>,
    /// Issuing Distribution Point scope.
    pub scope: Scope,
    /// Freshest CRL (delta) URLs named by this base CRL.
    pub freshest: Vec<String>,
    entries: Entries,
    /// SHA-256 of the SPKIs the signature verified with, so it is checked once per key.
    verified_keys: Mutex<Vec<[u8; 32]>>,
}

impl Crl {
    /// Parses a DER or PEM CRL. The signature is not checked here: see [`Crl::verify`].
    pub fn parse(data: &[u8]) -> Result<Self, CrlError> {
        let der = if data.starts_with(b"-----BEGIN") || data.windows(10).any(|w| w == b"-----BEGIN")
        {
            use rustls::pki_types::CertificateRevocationListDer;
            use rustls::pki_types::pem::PemObject;
            CertificateRevocationListDer::from_pem_slice(data)
                .map_err(|e| CrlError::Parse(format!("bad PEM: {e}")))?
                .to_vec()
        } else {
            data.to_vec()
        };
        let parsed = parse_fields(&der)?;
        Ok(Self {
            der,
            verified_keys: Mutex::new(Vec::new()),
            ..parsed
        })
    }

    /// The CRL as DER, for persisting.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.short.len() + self.entries.long.len()
    }

    /// Whether the CRL lists nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a delta CRL.
    pub fn is_delta(&self) -> bool {
        self.delta_base.is_some()
    }

    /// How `serial` (DER INTEGER contents) appears on this CRL. O(1).
    pub fn entry(&self, serial: &[u8]) -> Option<Entry> {
        self.entries.get(normalize_serial(serial))
    }

    /// Whether the CRL is past its nextUpdate at `now` (Unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.next_update.is_some_and(|next| now > next)
    }

    /// Checks the signature with the CA key `spki` (a SubjectPublicKeyInfo, DER). A key that
    /// verified once is remembered.
    pub fn verify(&self, spki: &[u8]) -> Result<(), CrlError> {
        let digest = sha256(spki);
        if self.verified_keys.lock().is_ok_and(|k| k.contains(&digest)) {
            return Ok(());
        }
        let (_, key) = SubjectPublicKeyInfo::from_der(spki).map_err(|_| CrlError::Signature)?;
        let (_, crl) =
            x509_parser::parse_x509_crl(&self.der).map_err(|e| CrlError::Parse(e.to_string()))?;
        crl.verify_signature(&key)
            .map_err(|_| CrlError::Signature)?;
        if let Ok(mut keys) = self.verified_keys.lock() {
            keys.push(digest);
        }
        Ok(())
    }

    /// Checks the signature with any of the issuing CA's CRL-signing keys
    /// ([`super::chain::crl_keys`]); none at all means the CA may not sign CRLs.
    pub fn verify_any(&self, keys: &[Vec<u8>]) -> Result<(), CrlError> {
        self.signed_by(keys).map(|_| ())
    }

    /// [`Self::verify_any`], saying which of `keys` (their index) the signature verified with.
    pub fn signed_by<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<usize, CrlError> {
        if keys.is_empty() {
            return Err(CrlError::NotCrlSigner);
        }
        keys.iter()
            .position(|k| self.verify(k.as_ref()).is_ok())
            .ok_or(CrlError::Signature)
    }

    /// Whether this CRL's scope covers a certificate (RFC 5280 §6.3.3 b). `cert_cdps` are the
    /// URIs of the certificate's CRL Distribution Points.
    pub fn covers(&self, cert_is_ca: bool, cert_cdps: &[String]) -> bool {
        let s = &self.scope;
        if s.unsupported || s.partial_reasons {
            return false;
        }
        if (s.only_user && cert_is_ca) || (s.only_ca && !cert_is_ca) {
            return false;
        }
        s.uris.is_empty() || s.uris.iter().any(|u| cert_cdps.iter().any(|c| c == u))
    }

    /// Whether this CRL is older than `cached`, an earlier CRL from the same source: a lower
    /// cRLNumber (RFC 5280 §5.2.3: numbers only increase), or, when either has no number, an
    /// earlier thisUpdate. A refetch that goes back in time is a replay of an old CRL (one
    /// from before a revocation) or a misconfigured mirror, so it is refused.
    pub fn older_than(&self, cached: &Crl) -> bool {
        match (&self.number, &cached.number) {
            (Some(new), Some(old)) => new < old,
            _ => self.this_update < cached.this_update,
        }
    }

    /// Whether `delta` may be applied over this base (RFC 5280 §5.2.4): same issuer, same
    /// scope, and this base is at least as new as the delta's BaseCRLNumber.
    pub fn accepts_delta(&self, delta: &Crl) -> bool {
        let (Some(base_needed), Some(number)) = (&delta.delta_base, &self.number) else {
            return false;
        };
        delta.issuer == self.issuer
            && number >= base_needed
            && delta.scope.only_user == self.scope.only_user
            && delta.scope.only_ca == self.scope.only_ca
    }
}

/// Longest serial kept inline: RFC 5280 §4.1.2.2 allows 20 octets.
const INLINE_SERIAL: usize = 20;

/// A serial of at most [`INLINE_SERIAL`] octets, inline, so the index of a CRL holds no
/// allocation per entry: a 500,000-entry CRL is built without 500,000 allocations and, more
/// to the point, dropped in one deallocation, so whichever thread drops a replaced CRL (possibly
/// a handshake's task holding the last reference) is not paused by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SerialKey {
    len: u8,
    bytes: [u8; INLINE_SERIAL],
}

impl std::hash::Hash for SerialKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Only the serial's own octets (the rest are zero): hashing stays as cheap as for a
        // slice.
        state.write(
            self.bytes
                .get(..usize::from(self.len))
                .unwrap_or(&self.bytes),
        );
    }
}

impl SerialKey {
    fn new(serial: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; INLINE_SERIAL];
        bytes.get_mut(..serial.len())?.copy_from_slice(serial);
        Some(Self {
            len: u8::try_from(serial.len()).ok()?,
            bytes,
        })
    }
}

/// The revoked serials (normalised) of a CRL.
#[derive(Debug, Default)]
struct Entries {
    short: HashMap<SerialKey, Entry>,
    /// Serials longer than RFC 5280 allows, which some CAs still issue.
    long: HashMap<Box<[u8]>, Entry>,
}

impl Entries {
    fn with_capacity(n: usize) -> Self {
        Self {
            short: HashMap::with_capacity(n),
            long: HashMap::new(),
        }
    }

    fn insert(&mut self, serial: &[u8], entry: Entry) {
        match SerialKey::new(serial) {
            Some(key) => self.short.insert(key, entry),
            None => self.long.insert(serial.into(), entry),
        };
    }

    fn get(&self, serial: &[u8]) -> Option<Entry> {
        match SerialKey::new(serial) {
            Some(key) => self.short.get(&key).copied(),
            None => self.long.get(serial).copied(),
        }
    }
}

/// Status of `serial` on a base CRL with an optional delta applied (RFC 5280 §5.2.4): the delta
/// wins for serials it lists, `removeFromCRL` un-revokes, `certificateHold` revokes.
pub fn lookup(base: &Crl, delta: Option<&Crl>, serial: &[u8]) -> Option<Entry> {
    let found = match delta.and_then(|d| d.entry(serial)) {
        Some(entry) => Some(entry),
        None => base.entry(serial),
    };
    found.filter(|e| *e != Entry::Remove)
}

/// Strips the leading zero octets of a DER INTEGER so equal numbers compare equal.
pub fn normalize_serial(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial.get(start..).unwrap_or(serial)
}

/// URIs of a `fullName` distribution point name.
pub(crate) fn uris_of(name: Option<&DistributionPointName<'_>>) -> Vec<String> {
    match name {
        Some(DistributionPointName::FullName(names)) => names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(uri) => Some((*uri).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// URIs of a CRLDistributionPoints / FreshestCRL extension value.
pub(crate) fn distribution_point_uris(value: &[u8]) -> Vec<String> {
    CRLDistributionPoints::from_der(value)
        .map(|(_, points)| {
            points
                .iter()
                .filter(|p| p.crl_issuer.is_none())
                .flat_map(|p| uris_of(p.distribution_point.as_ref()))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_fields(der: &[u8]) -> Result<Crl, CrlError> {
    let (rest, crl) =
        x509_parser::parse_x509_crl(der).map_err(|e| CrlError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::Parse("trailing data after the CRL".into()));
    }
    let tbs = &crl.tbs_cert_list;
    let mut out = Crl {
        der: Vec::new(),
        issuer: tbs.issuer.as_raw().to_vec(),
        authority_key_id: None,
        this_update: tbs.this_update.timestamp(),
        next_update: tbs.next_update.map(|t| t.timestamp()),
        number: None,
        delta_base: None,
        scope: Scope::default(),
        freshest: Vec::new(),
        entries: Entries::with_capacity(tbs.revoked_certificates.len()),
        verified_keys: Mutex::new(Vec::new()),
    };
    for ext in tbs.extensions() {
        let oid = ext.oid.to_id_string();
        match ext.parsed_extension() {
            ParsedExtension::CRLNumber(n) => out.number = Some(n.clone()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                out.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::IssuingDistributionPoint(idp) => {
                out.scope = Scope {
                    only_user: idp.only_contains_user_certs,
                    only_ca: idp.only_contains_ca_certs,
                    partial_reasons: idp.only_some_reasons.is_some(),
                    unsupported: idp.indirect_crl || idp.only_contains_attribute_certs,
                    uris: uris_of(idp.distribution_point.as_ref()),
                };
            }
            _ if oid == OID_DELTA_CRL_INDICATOR => {
                let (_, n) = x509_parser::der_parser::der::parse_der_integer(ext.value)
                    .map_err(|_| CrlError::Parse("bad delta CRL indicator".into()))?;
                let n = n
                    .as_biguint()
                    .map_err(|_| CrlError::Parse("bad delta CRL indicator".into()))?;
                out.delta_base = Some(n);
            }
            _ if oid == OID_FRESHEST_CRL => out.freshest = distribution_point_uris(ext.value),
            ParsedExtension::ParseError { .. } if ext.critical => {
                return Err(CrlError::Parse(format!("bad critical extension {oid}")));
            }
            ParsedExtension::UnsupportedExtension { .. } if ext.critical => {
                return Err(CrlError::Parse(format!(
                    "unsupported critical extension {oid}"
                )));
            }
            _ => {}
        }
    }
    for revoked in &tbs.revoked_certificates {
        let entry = match revoked.reason_code().map(|(_, r)| r.0) {
            Some(REASON_CERTIFICATE_HOLD) => Entry::Hold,
            Some(REASON_REMOVE_FROM_CRL) => Entry::Remove,
            Some(other) => Entry::Revoked(other),
            None => Entry::Revoked(0),
        };
        out.entries
            .insert(normalize_serial(revoked.raw_serial()), entry);
    }
    Ok(out)
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pki::Authority;

    #[test]
    fn parses_verifies_and_looks_up() {
        let ca = Authority::new("CRL unit CA").unwrap();
        let other = Authority::new("CRL unit CA").unwrap();
        let crl = Crl::parse(ca.crl(&[0x0102, 7], 7).unwrap().as_bytes()).unwrap();
        assert_eq!(crl.len(), 2);
        assert!(crl.entry(&[0x01, 0x02]).is_some());
        assert!(crl.entry(&[0x00, 0x01, 0x02]).is_some());
        assert!(crl.entry(&[0x07]).is_some());
        assert!(crl.entry(&[0x08]).is_none());
        // Serials longer than 20 octets are indexed too.
        let mut long = Entries::default();
        long.insert(&[7; 21], Entry::Hold);
        long.insert(&[7; 20], Entry::Revoked(1));
        assert_eq!(long.get(&[7; 21]), Some(Entry::Hold));
        assert_eq!(long.get(&[7; 20]), Some(Entry::Revoked(1)));
        assert_eq!(long.get(&[7; 19]), None);
        let spki = |der: &[u8]| {
            let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
            c.public_key().raw.to_vec()
        };
        assert_eq!(crl.verify(&spki(&ca.der)), Ok(()));
        assert_eq!(crl.verify(&spki(&ca.der)), Ok(()));
        assert_eq!(crl.verify(&spki(&other.der)), Err(CrlError::Signature));
        assert!(!crl.expired(crl.this_update));
        assert!(crl.expired(crl.next_update.unwrap() + 1));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Crl::parse(b"").is_err());
        assert!(Crl::parse(b"\x30\x03\x02\x01\x01").is_err());
        assert!(Crl::parse(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").is_err());
    }

    #[test]
    fn delta_hold_and_remove() {
        let mk = |entries: &[(&[u8], Entry)]| Crl {
            der: Vec::new(),
            issuer: vec![1],
            authority_key_id: None,
            this_update: 0,
            next_update: None,
            number: Some(BigUint::from(5u8)),
            delta_base: None,
            scope: Scope::default(),
            freshest: Vec::new(),
            entries: {
                let mut index = Entries::default();
                for (serial, entry) in entries {
                    index.insert(serial, *entry);
                }
                index
            },
            verified_keys: Mutex::new(Vec::new()),
        };
        let base = mk(&[(&[1], Entry::Revoked(1)), (&[2], Entry::Hold)]);
        let mut delta = mk(&[(&[2], Entry::Remove), (&[3], Entry::Revoked(0))]);
        delta.delta_base = Some(BigUint::from(5u8));
        assert!(base.accepts_delta(&delta));
        assert_eq!(lookup(&base, None, &[2]), Some(Entry::Hold));
        assert_eq!(lookup(&base, Some(&delta), &[1]), Some(Entry::Revoked(1)));
        assert_eq!(lookup(&base, Some(&delta), &[2]), None);
        assert_eq!(lookup(&base, Some(&delta), &[3]), Some(Entry::Revoked(0)));
        delta.delta_base = Some(BigUint::from(6u8));
        assert!(!base.accepts_delta(&delta), "a delta for a newer base");

        // Rollback: a lower number is older, whatever the dates; an equal one is not.
        let mut older = mk(&[]);
        older.number = Some(BigUint::from(4u8));
        older.this_update = 100;
        assert!(older.older_than(&base));
        assert!(!base.older_than(&older));
        assert!(!base.older_than(&mk(&[])));
        // Without numbers, thisUpdate decides.
        older.number = None;
        assert!(!older.older_than(&base));
        let mut earlier = mk(&[]);
        earlier.this_update = 50;
        assert!(earlier.older_than(&older));
    }
}
