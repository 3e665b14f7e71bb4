//! What a client certificate says, extracted once per connection.
//!
//! Parsing and hashing cost a few microseconds; doing it per request would multiply that by every
//! request on a keep-alive or HTTP/2 connection. [`CertFacts`] is built once after the handshake,
//! shared by `Arc`, and holds every form later phases need: hashes for one-to-one lookup and
//! thumbprints, structured DNs for many-to-one rules and AD lookups, and the base64 DER that
//! IIS ARR forwards.

pub mod dn;
pub mod shape;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;
use x509_parser::der_parser::asn1_rs::{Any, FromDer, Tag};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

pub use dn::Dn;

/// OID of the Microsoft UPN otherName (`szOID_NT_PRINCIPAL_NAME`).
const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// A certificate could not be parsed as X.509.
#[derive(Debug, thiserror::Error)]
#[error("not a valid X.509 certificate: {0}")]
pub struct ParseError(String);

/// Everything later phases read from the client's leaf certificate.
#[derive(Debug, Clone)]
pub struct CertFacts {
    /// The DER bytes as presented.
    pub der: CertificateDer<'static>,
    /// SHA-256 of the DER: the one-to-one index key.
    pub sha256: [u8; 32],
    /// SHA-1 of the DER: the thumbprint Windows shows.
    pub sha1: [u8; 20],
    /// Subject name.
    pub subject: Dn,
    /// Issuer name.
    pub issuer: Dn,
    /// Serial number content octets, big-endian, without a leading 0x00 sign byte.
    pub serial: Vec<u8>,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// Subject key identifier extension, if present.
    pub subject_key_id: Option<Vec<u8>>,
    /// The DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The subjectPublicKey BIT STRING contents.
    pub public_key: Vec<u8>,
    /// SAN rfc822Name entries.
    pub emails: Vec<String>,
    /// SAN dNSName entries.
    pub dns_names: Vec<String>,
    /// SAN otherName UPN entries (`alice@example.test`).
    pub upns: Vec<String>,
}

impl CertFacts {
    /// Parses a DER certificate. Fails on input that is not X.509, and on names whose attribute
    /// types are not OIDs (they cannot be rendered unambiguously).
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self, ParseError> {
        let (_, cert) =
            X509Certificate::from_der(der.as_ref()).map_err(|e| ParseError(e.to_string()))?;
        let mut serial = cert.raw_serial();
        if serial.len() > 1 && serial[0] == 0 {
            serial = &serial[1..];
        }
        let mut facts = Self {
            der: der.clone().into_owned(),
            sha256: sha256(der.as_ref()),
            sha1: sha1(der.as_ref()),
            subject: Dn::from_x509(cert.subject()),
            issuer: Dn::from_x509(cert.issuer()),
            serial: serial.to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            subject_key_id: None,
            spki: cert.public_key().raw.to_vec(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            emails: Vec::new(),
            dns_names: Vec::new(),
            upns: Vec::new(),
        };
        // A name with an attribute type that is not an OID (zero-length, or arcs beyond 64
        // bits) renders as `=value` or hex: ambiguous in headers and AD lookups. No CA issues
        // one; refuse the certificate rather than render it (found by fuzz target cert_facts).
        if !dn::has_well_formed_types(&facts.subject) || !dn::has_well_formed_types(&facts.issuer) {
            return Err(ParseError(
                "a subject or issuer attribute type is not a valid OID".to_owned(),
            ));
        }
        for ext in cert.iter_extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ki) => {
                    facts.subject_key_id = Some(ki.0.to_vec());
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::RFC822Name(s) => facts.emails.push((*s).to_owned()),
                            GeneralName::DNSName(s) => facts.dns_names.push((*s).to_owned()),
                            GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                                if let Some(upn) = decode_upn(value) {
                                    facts.upns.push(upn);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(facts)
    }

    /// SHA-1 thumbprint as Windows shows it: uppercase hex, no separators.
    pub fn thumbprint(&self) -> String {
        hex_upper(&self.sha1)
    }

    /// Serial number as IIS shows it: uppercase hex, no separators.
    pub fn serial_hex(&self) -> String {
        hex_upper(&self.serial)
    }

    /// The IIS one-to-one form: base64 of the DER on one line.
    pub fn base64_der(&self) -> String {
        STANDARD.encode(self.der.as_ref())
    }
}

/// `otherName` value: `[0] EXPLICIT UTF8String`.
fn decode_upn(value: &[u8]) -> Option<String> {
    let (_, explicit) = Any::from_der(value).ok()?;
    let (_, inner) = Any::from_der(explicit.data).ok()?;
    (inner.tag() == Tag::Utf8String)
        .then(|| std::str::from_utf8(inner.data).ok().map(str::to_owned))
        .flatten()
}

/// Checks that DER bytes are an X.509 certificate: the cheap structural walk of [`shape`], and
/// only when that fails a full `x509-parser` parse, which supplies the message and keeps anything
/// it accepts accepted. The error is the reason to show.
pub fn check_certificate_der(der: &[u8]) -> Result<(), String> {
    if shape::check_certificate(der).is_ok() {
        return Ok(());
    }
    X509Certificate::from_der(der)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// SHA-256 of arbitrary bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// SHA-1 of arbitrary bytes; used only for Windows-compatible thumbprints.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref());
    out
}

/// Uppercase hex without separators.
pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xF)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refuses_a_name_whose_attribute_type_is_not_an_oid() {
        // fuzz/regressions/cert_facts/empty-attribute-oid: a subject attribute whose OBJECT
        // IDENTIFIER has length 0 rendered as `=value`, which no DN reader can read back.
        let der = include_bytes!("../../fuzz/regressions/cert_facts/empty-attribute-oid");
        let err = CertFacts::parse(&CertificateDer::from(&der[..])).unwrap_err();
        assert!(err.to_string().contains("not a valid OID"), "{err}");
        assert!(X509Certificate::from_der(der).is_ok());
    }
}
