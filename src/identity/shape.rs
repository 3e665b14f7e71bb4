//! Is this DER an X.509 certificate? A structural walk that answers without building one.
//!
//! Loading a million one-to-one mappings has to reject a pasted blob that decodes but is not a
//! certificate (a key, a CSR, a truncated paste), as IIS does with 401.1. A full `x509-parser`
//! parse answers that too, at about 2 µs per certificate — most of a million-entry load budget —
//! because it builds every name, time and extension. This walk checks the same skeleton in a
//! few hundred nanoseconds and allocates nothing: every TLV has a definite length that fits its
//! parent, the RFC 5280 fields come in order with the right tags (version, serial,
//! AlgorithmIdentifiers with an OID, Names as SEQUENCE OF non-empty SET OF {OID, value},
//! Validity as two UTCTime/GeneralizedTime values, SubjectPublicKeyInfo, optional unique IDs,
//! Extensions as {OID, optional BOOLEAN, OCTET STRING}) and nothing is left over inside the
//! certificate. It does not look inside extension values or attribute strings; a certificate
//! broken only there can never be presented by a client (rustls parses presented certificates
//! fully), so the worst such an entry can do is never match.

/// Why bytes are not shaped like an X.509 certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0}")]
pub struct ShapeError(&'static str);

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// Checks that `der` starts with a DER `Certificate` whose structure is X.509. Bytes after the
/// certificate are ignored, as `x509-parser` ignores them.
pub fn check_certificate(der: &[u8]) -> Result<(), ShapeError> {
    let mut outer = Reader(der);
    let mut cert = Reader(outer.expect(SEQUENCE, "Certificate")?);
    tbs_certificate(cert.expect(SEQUENCE, "tbsCertificate")?)?;
    algorithm(
        cert.expect(SEQUENCE, "signatureAlgorithm")?,
        "signatureAlgorithm",
    )?;
    whole_bytes(cert.expect(BIT_STRING, "signatureValue")?, "signatureValue")?;
    cert.end("Certificate")
}

fn tbs_certificate(contents: &[u8]) -> Result<(), ShapeError> {
    let mut tbs = Reader(contents);
    if let Some(version) = tbs.optional(0xA0)? {
        let mut version = Reader(version);
        // A non-negative INTEGER that fits 32 bits, as x509-parser reads it.
        let v = version.expect(INTEGER, "version")?;
        let v = v
            .strip_prefix(&[0])
            .filter(|rest| !rest.is_empty())
            .unwrap_or(v);
        if v.is_empty() || v.len() > 4 || v[0] & 0x80 != 0 {
            return Err(ShapeError("version"));
        }
        version.end("version")?;
    }
    integer(tbs.expect(INTEGER, "serialNumber")?, "serialNumber")?;
    algorithm(tbs.expect(SEQUENCE, "signature")?, "signature")?;
    name(tbs.expect(SEQUENCE, "issuer")?, "issuer")?;
    let mut validity = Reader(tbs.expect(SEQUENCE, "validity")?);
    for _ in 0..2 {
        let (tag, time) = validity.any("validity")?;
        if !self::time(tag, time) {
            return Err(ShapeError("validity"));
        }
    }
    validity.end("validity")?;
    name(tbs.expect(SEQUENCE, "subject")?, "subject")?;
    let mut spki = Reader(tbs.expect(SEQUENCE, "subjectPublicKeyInfo")?);
    algorithm(
        spki.expect(SEQUENCE, "subjectPublicKeyInfo")?,
        "subjectPublicKeyInfo",
    )?;
    whole_bytes(
        spki.expect(BIT_STRING, "subjectPublicKeyInfo")?,
        "subjectPublicKeyInfo",
    )?;
    spki.end("subjectPublicKeyInfo")?;
    // issuerUniqueID [1] and subjectUniqueID [2], IMPLICIT BIT STRING.
    for tags in [[0x81, 0xA1], [0x82, 0xA2]] {
        if tbs.peek().is_some_and(|t| tags.contains(&t)) {
            tbs.any("uniqueIdentifier")?;
        }
    }
    if let Some(extensions) = tbs.optional(0xA3)? {
        let mut wrapper = Reader(extensions);
        let mut list = Reader(wrapper.expect(SEQUENCE, "extensions")?);
        wrapper.end("extensions")?;
        while !list.0.is_empty() {
            let mut ext = Reader(list.expect(SEQUENCE, "extension")?);
            oid(ext.expect(OID, "extension")?, "extension")?;
            if let Some(critical) = ext.optional(BOOLEAN)?
                && critical.len() != 1
            {
                return Err(ShapeError("extension"));
            }
            ext.expect(OCTET_STRING, "extension")?;
            ext.end("extension")?;
        }
    }
    tbs.end("tbsCertificate")
}

/// A UTCTime (`YYMMDDhhmm[ss]`) or GeneralizedTime (`YYYYMMDDhh[mm[ss[.fff]]]`) with `Z`, an
/// offset `±hhmm` or (GeneralizedTime only) nothing, every field in range.
fn time(tag: u8, text: &[u8]) -> bool {
    let (date, mut rest) = match tag {
        UTC_TIME if text.len() >= 8 => text.split_at(8),
        GENERALIZED_TIME if text.len() >= 10 => {
            let (date, rest) = text.split_at(10);
            (&date[2..], rest)
        }
        _ => return false,
    };
    let two = |b: &[u8]| -> Option<u8> {
        match b {
            [t @ b'0'..=b'9', u @ b'0'..=b'9', ..] => Some((t - b'0') * 10 + (u - b'0')),
            _ => None,
        }
    };
    let (Some(yy), Some(month), Some(day), Some(hour)) =
        (two(date), two(&date[2..]), two(&date[4..]), two(&date[6..]))
    else {
        return false;
    };
    let year = match (tag, two(text)) {
        (GENERALIZED_TIME, Some(century)) => u32::from(century) * 100 + u32::from(yy),
        (GENERALIZED_TIME, None) => return false,
        // RFC 5280: UTCTime years 50-99 are 19xx.
        _ if yy >= 50 => 1900 + u32::from(yy),
        _ => 2000 + u32::from(yy),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if !(1..=days).contains(&day) || hour > 23 {
        return false;
    }
    // Minutes are required in UTCTime and optional in GeneralizedTime; then optional seconds.
    let mut minutes = tag == UTC_TIME;
    for limit in [59, 59] {
        match two(rest) {
            Some(v) if v <= limit => {
                rest = &rest[2..];
                minutes = false;
            }
            Some(_) => return false,
            None if minutes => return false,
            None => break,
        }
    }
    if tag == GENERALIZED_TIME
        && let [b'.' | b',', fraction @ ..] = rest
    {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    match rest {
        b"Z" => true,
        [] => tag == GENERALIZED_TIME,
        [b'+' | b'-', offset @ ..] if offset.len() == 4 => {
            two(offset).is_some_and(|h| h <= 23) && two(&offset[2..]).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// `Name`: SEQUENCE OF RelativeDistinguishedName (non-empty SET OF {OID, value}).
fn name(contents: &[u8], what: &'static str) -> Result<(), ShapeError> {
    let mut rdns = Reader(contents);
    while !rdns.0.is_empty() {
        let mut rdn = Reader(rdns.expect(SET, what)?);
        if rdn.0.is_empty() {
            return Err(ShapeError(what));
        }
        while !rdn.0.is_empty() {
            let mut attribute = Reader(rdn.expect(SEQUENCE, what)?);
            oid(attribute.expect(OID, what)?, what)?;
            attribute.any(what)?;
            attribute.end(what)?;
        }
    }
    Ok(())
}

/// `AlgorithmIdentifier` contents: an OID and optional parameters.
fn algorithm(contents: &[u8], what: &'static str) -> Result<(), ShapeError> {
    let mut alg = Reader(contents);
    oid(alg.expect(OID, what)?, what)?;
    if !alg.0.is_empty() {
        alg.any(what)?;
    }
    alg.end(what)
}

fn oid(contents: &[u8], what: &'static str) -> Result<(), ShapeError> {
    match contents.last() {
        Some(last) if last & 0x80 == 0 => Ok(()),
        _ => Err(ShapeError(what)),
    }
}

fn integer(contents: &[u8], what: &'static str) -> Result<(), ShapeError> {
    if contents.is_empty() {
        Err(ShapeError(what))
    } else {
        Ok(())
    }
}

/// A BIT STRING of whole bytes (no unused bits), as keys and signatures are.
fn whole_bytes(contents: &[u8], what: &'static str) -> Result<(), ShapeError> {
    match contents.first() {
        Some(0) => Ok(()),
        _ => Err(ShapeError(what)),
    }
}

/// The unread rest of a constructed value's contents.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next TLV's first tag byte and contents. High tag numbers (`0x1f` form) are
    /// skipped over; only values read as "any" can have them.
    fn any(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), ShapeError> {
        let err = ShapeError(what);
        let bytes = self.0;
        let tag = *bytes.first().ok_or(err)?;
        let mut at = 1;
        if tag & 0x1f == 0x1f {
            loop {
                let b = *bytes.get(at).ok_or(err)?;
                at += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let first = *bytes.get(at).ok_or(err)?;
        at += 1;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // 0x80 is BER's indefinite length; more than four length bytes is never a
            // certificate.
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(err);
            }
            let len_bytes = bytes.get(at..at + n).ok_or(err)?;
            at += n;
            len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let end = at.checked_add(len).ok_or(err)?;
        let contents = bytes.get(at..end).ok_or(err)?;
        self.0 = &bytes[end..];
        Ok((tag, contents))
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], ShapeError> {
        if self.peek() != Some(tag) {
            return Err(ShapeError(what));
        }
        self.any(what).map(|(_, contents)| contents)
    }

    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, ShapeError> {
        if self.peek() == Some(tag) {
            self.any("optional field")
                .map(|(_, contents)| Some(contents))
        } else {
            Ok(None)
        }
    }

    fn end(&self, what: &'static str) -> Result<(), ShapeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ShapeError(what))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tools::pki::{Authority, ClientSpec};
    use x509_parser::certificate::X509CertificateParser;
    use x509_parser::nom::Parser;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn certificates() -> Vec<Vec<u8>> {
        let ca = Authority::new("shape CA").unwrap();
        let mut spec = ClientSpec::new("alice");
        spec.upn = Some("alice@example.test".into());
        spec.email = Some("alice@example.test".into());
        spec.organizational_units = vec!["Staff".into(), "Security".into()];
        vec![
            ca.der.to_vec(),
            ca.server(&["localhost", "127.0.0.1"]).unwrap().der.to_vec(),
            ca.client(&spec).unwrap().der.to_vec(),
        ]
    }

    #[test]
    fn accepts_real_certificates_and_trailing_bytes() {
        for der in certificates() {
            check_certificate(&der).unwrap();
            let mut trailing = der.clone();
            trailing.extend_from_slice(b"\0\0");
            assert!(X509Certificate::from_der(&trailing).is_ok());
            check_certificate(&trailing).unwrap();
        }
    }

    #[test]
    fn times() {
        for ok in [
            &b"250101000000Z"[..],
            b"2501010000Z",
            b"250101000000+0130",
            b"240229000000Z",
            b"000229000000Z",
        ] {
            assert!(time(UTC_TIME, ok), "{}", String::from_utf8_lossy(ok));
        }
        for ok in [
            &b"20250101000000Z"[..],
            b"20250101000000.123Z",
            b"2025010100Z",
            b"20250101000000",
            b"20250101000000-0500",
        ] {
            assert!(
                time(GENERALIZED_TIME, ok),
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b"251301000000Z"[..],
            b"250132000000Z",
            b"250101240000Z",
            b"250101006000Z",
            b"250101000060Z",
            b"2501010000",
            b"25010100Z",
            b"250101000000Y",
            b"250101000000+2400",
            b"250229000000Z",
            b"251131000000Z",
        ] {
            assert!(!time(UTC_TIME, bad), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!time(GENERALIZED_TIME, b"20250101000000.Z"));
        assert!(!time(GENERALIZED_TIME, b"21000229000000Z"));
        assert!(!time(OCTET_STRING, b"250101000000Z"));
    }

    #[test]
    fn rejects_what_is_not_a_certificate() {
        let der = &certificates()[2];
        let not_certificates: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"hello world".to_vec(),
            vec![0x30, 0x00],
            vec![0x30, 0x80, 0x00, 0x00],
            der[..der.len() - 1].to_vec(),
            der[..der.len() / 2].to_vec(),
            // A P-256 private key (PKCS#8) is a SEQUENCE too.
            rcgen::KeyPair::generate().unwrap().serialize_der(),
        ];
        for bytes in &not_certificates {
            assert!(check_certificate(bytes).is_err(), "{bytes:02x?}");
            assert!(X509Certificate::from_der(bytes).is_err(), "{bytes:02x?}");
        }
    }

    /// Every single-byte corruption that x509-parser's structural parse (no extension
    /// contents) rejects, this walk rejects too.
    #[test]
    fn agrees_with_x509_parser_on_corruptions() {
        let (mut both, mut only_parser, mut only_shape) = (0, 0, 0);
        for der in &certificates() {
            for i in 0..der.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = der.clone();
                    bad[i] ^= flip;
                    let mut parser = X509CertificateParser::new().with_deep_parse_extensions(false);
                    let parsed = parser.parse(&bad).is_ok();
                    let shaped = check_certificate(&bad).is_ok();
                    match (parsed, shaped) {
                        (false, false) => both += 1,
                        (false, true) => only_parser += 1,
                        (true, false) => only_shape += 1,
                        (true, true) => {}
                    }
                }
            }
        }
        // Every corruption the parser catches, the walk catches. The walk is stricter than the
        // parser in places (x509-parser reads some tags by number only and stops early in
        // Names), which is why `check_certificate_der` asks the parser before rejecting.
        assert_eq!(only_parser, 0, "both {both}, shape only {only_shape}");
        assert!(both > 0);
    }
}
