//! `altSecurityIdentities` values a presented certificate can be stored under.
//!
//! AD has no canonical spelling for several parts of these strings: Microsoft stores the issuer
//! in DER order and the serial byte-reversed, Samba's tooling writes the issuer CN-first and the
//! serial big-endian, and `<SHA1-PUKEY>` is hashed over three different inputs depending on who
//! wrote the tool. Rather than guess, every plausible spelling is generated and all of them are
//! OR-ed into one equality filter: one round trip, and a value matches only if an administrator
//! stored exactly that certificate's data. Matching is case-insensitive in AD, so hex case does
//! not matter.

use crate::identity::{CertFacts, Dn, hex_upper, sha1};

use super::config::AltSecPolicy;
use super::filter;

/// Which mapping form a candidate is (KB5014754 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AltSecForm {
    /// `X509:<I>issuer<SR>serial` (strong).
    IssuerSerial,
    /// `X509:<SKI>hex` (strong).
    SubjectKeyId,
    /// `X509:<SHA1-PUKEY>hex` (strong).
    Sha1PublicKey,
    /// `X509:<I>issuer<S>subject` (weak).
    IssuerSubject,
    /// `X509:<S>subject` (weak).
    Subject,
    /// `X509:<RFC822>email` (weak).
    Rfc822,
    /// SAN UPN equal to `userPrincipalName` (weak implicit mapping).
    Upn,
}

impl AltSecForm {
    /// Strong forms bind the mapping to this exact certificate or key.
    pub fn is_strong(self) -> bool {
        matches!(
            self,
            Self::IssuerSerial | Self::SubjectKeyId | Self::Sha1PublicKey
        )
    }

    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IssuerSerial => "issuer_serial",
            Self::SubjectKeyId => "ski",
            Self::Sha1PublicKey => "sha1_public_key",
            Self::IssuerSubject => "issuer_subject",
            Self::Subject => "subject",
            Self::Rfc822 => "rfc822",
            Self::Upn => "upn",
        }
    }
}

/// One value to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The form.
    pub form: AltSecForm,
    /// The `altSecurityIdentities` value, or the UPN for [`AltSecForm::Upn`].
    pub value: String,
}

/// Every candidate for `cert` that `policy` allows, without duplicates, strong forms first.
pub fn candidates(cert: &CertFacts, policy: &AltSecPolicy) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |form, value: String| {
        // A NUL would be escaped correctly, but Samba compares values as C strings, so
        // `CN=mallory\0anything` would match a value stored for `CN=mallory`. No legitimate
        // mapping contains one; such a candidate is dropped.
        if value.contains('\0') {
            return;
        }
        if !out
            .iter()
            .any(|c| c.form == form && c.value.eq_ignore_ascii_case(&value))
        {
            out.push(Candidate { form, value });
        }
    };
    let issuers = dn_orders(&cert.issuer);

    // <SR>: CryptoAPI order (least significant byte first) as AD documents it, and big-endian as
    // Samba writes it; each with and without the 0x00 sign byte DER adds when the top bit is set.
    let mut serials = Vec::new();
    if !cert.serial.is_empty() {
        let mut reversed = cert.serial.clone();
        reversed.reverse();
        serials.push(hex_upper(&reversed));
        serials.push(hex_upper(&cert.serial));
        if cert.serial.first().is_some_and(|b| b & 0x80 != 0) {
            serials.push(format!("{}00", hex_upper(&reversed)));
            serials.push(format!("00{}", hex_upper(&cert.serial)));
        }
    }
    for issuer in &issuers {
        for serial in &serials {
            push(
                AltSecForm::IssuerSerial,
                format!("X509:<I>{issuer}<SR>{serial}"),
            );
        }
    }
    if let Some(ski) = &cert.subject_key_id {
        push(
            AltSecForm::SubjectKeyId,
            format!("X509:<SKI>{}", hex_upper(ski)),
        );
    }
    // <SHA1-PUKEY>: subjectPublicKey bits (Samba), whole SubjectPublicKeyInfo (Lightwave),
    // whole certificate (Microsoft's tooling: the thumbprint).
    for digest in [sha1(&cert.public_key), sha1(&cert.spki), cert.sha1] {
        push(
            AltSecForm::Sha1PublicKey,
            format!("X509:<SHA1-PUKEY>{}", hex_upper(&digest)),
        );
    }

    let subjects = dn_orders(&cert.subject);
    if policy.issuer_subject {
        for (issuer, subject) in issuers.iter().zip(&subjects) {
            push(
                AltSecForm::IssuerSubject,
                format!("X509:<I>{issuer}<S>{subject}"),
            );
        }
    }
    if policy.subject {
        for subject in &subjects {
            push(AltSecForm::Subject, format!("X509:<S>{subject}"));
        }
    }
    if policy.rfc822 {
        for email in &cert.emails {
            push(AltSecForm::Rfc822, format!("X509:<RFC822>{email}"));
        }
    }
    if policy.upn {
        for upn in &cert.upns {
            push(AltSecForm::Upn, upn.clone());
        }
    }
    out
}

/// The search filter: one equality clause per candidate, every value escaped.
pub fn search_filter(candidates: &[Candidate]) -> String {
    let clauses: Vec<String> = candidates
        .iter()
        .map(|c| match c.form {
            AltSecForm::Upn => filter::eq("userPrincipalName", &c.value),
            _ => filter::eq("altSecurityIdentities", &c.value),
        })
        .collect();
    format!("(&(objectClass=user){})", filter::any_of(&clauses))
}

/// The first candidate an entry's stored values explain, for logs.
pub(crate) fn matched_form<'a>(
    candidates: &[Candidate],
    alt_security_identities: impl Iterator<Item = &'a str> + Clone,
    user_principal_name: Option<&str>,
) -> Option<AltSecForm> {
    candidates
        .iter()
        .find(|c| match c.form {
            AltSecForm::Upn => {
                user_principal_name.is_some_and(|upn| upn.to_lowercase() == c.value.to_lowercase())
            }
            _ => alt_security_identities
                .clone()
                .any(|v| v.to_lowercase() == c.value.to_lowercase()),
        })
        .map(|c| c.form)
}

/// DER order (`DC=test,DC=example,CN=CA`, what AD documents) and CN-first order (what Samba's
/// tooling writes). Both are returned even when equal; callers deduplicate.
fn dn_orders(dn: &Dn) -> [String; 2] {
    let reversed = Dn {
        rdns: dn.rdns.iter().rev().cloned().collect(),
    };
    [dn.to_der_order_string(), reversed.to_der_order_string()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        SanType, SerialNumber,
    };
    use rustls::pki_types::CertificateDer;

    use super::*;

    fn cert(serial: &[u8], subject_cn: &str) -> CertFacts {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "test",
        );
        ca.distinguished_name.push(DnType::CommonName, "Example CA");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.serial_number = Some(SerialNumber::from_slice(serial));
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name.push(DnType::CommonName, subject_cn);
        leaf.subject_alt_names = vec![SanType::Rfc822Name("a@example.test".try_into().unwrap())];
        let der = leaf.signed_by(&key, &issuer).unwrap().der().clone();
        CertFacts::parse(&CertificateDer::from(der.to_vec())).unwrap()
    }

    fn values(c: &[Candidate], form: AltSecForm) -> Vec<&str> {
        c.iter()
            .filter(|c| c.form == form)
            .map(|c| c.value.as_str())
            .collect()
    }

    #[test]
    fn strong_candidates() {
        let facts = cert(&[0x5e, 0x4f, 0x3d, 0x2c, 0x1b, 0x0a], "alice");
        let c = candidates(&facts, &AltSecPolicy::STRONG_ONLY);
        assert_eq!(
            values(&c, AltSecForm::IssuerSerial),
            [
                "X509:<I>DC=test,CN=Example CA<SR>0A1B2C3D4F5E",
                "X509:<I>DC=test,CN=Example CA<SR>5E4F3D2C1B0A",
                "X509:<I>CN=Example CA,DC=test<SR>0A1B2C3D4F5E",
                "X509:<I>CN=Example CA,DC=test<SR>5E4F3D2C1B0A",
            ]
        );
        let ski = facts.subject_key_id.clone().unwrap();
        assert_eq!(
            values(&c, AltSecForm::SubjectKeyId),
            [format!("X509:<SKI>{}", hex_upper(&ski))]
        );
        assert_eq!(values(&c, AltSecForm::Sha1PublicKey).len(), 3);
        assert!(
            values(&c, AltSecForm::Sha1PublicKey)
                .contains(&format!("X509:<SHA1-PUKEY>{}", facts.thumbprint()).as_str())
        );
        assert!(c.iter().all(|c| c.form.is_strong()));
    }

    #[test]
    fn sign_byte_variants() {
        let facts = cert(&[0x00, 0x80, 0x01], "x");
        let c = candidates(&facts, &AltSecPolicy::STRONG_ONLY);
        let sr: Vec<_> = values(&c, AltSecForm::IssuerSerial)
            .iter()
            .map(|v| v.rsplit_once("<SR>").unwrap().1.to_owned())
            .collect();
        assert_eq!(sr[..4], ["0180", "8001", "018000", "008001"]);
    }

    #[test]
    fn weak_only_when_enabled() {
        let facts = cert(&[1], "alice");
        let all = AltSecPolicy {
            issuer_subject: true,
            subject: true,
            rfc822: true,
            upn: true,
        };
        let c = candidates(&facts, &all);
        assert_eq!(
            values(&c, AltSecForm::IssuerSubject),
            [
                "X509:<I>DC=test,CN=Example CA<S>CN=alice",
                "X509:<I>CN=Example CA,DC=test<S>CN=alice",
            ]
        );
        assert_eq!(values(&c, AltSecForm::Subject), ["X509:<S>CN=alice"]);
        assert_eq!(
            values(&c, AltSecForm::Rfc822),
            ["X509:<RFC822>a@example.test"]
        );
        assert!(
            candidates(&facts, &AltSecPolicy::STRONG_ONLY)
                .iter()
                .all(|c| c.form.is_strong())
        );
    }

    #[test]
    fn filter_escapes_certificate_text() {
        let facts = cert(&[1], "*)(objectClass=*");
        let policy = AltSecPolicy {
            subject: true,
            ..AltSecPolicy::STRONG_ONLY
        };
        let f = search_filter(&candidates(&facts, &policy));
        assert!(
            f.contains(r#"(altSecurityIdentities=X509:<S>CN="\2a\29\28objectClass=\2a")"#),
            "{f}"
        );
        assert!(f.starts_with("(&(objectClass=user)(|(altSecurityIdentities=X509:<I>"));
        // Balanced parentheses: nothing in the certificate closed a clause early.
        let depth = f.chars().try_fold(0i32, |d, ch| match ch {
            '(' => Some(d + 1),
            ')' if d > 0 => Some(d - 1),
            ')' => None,
            _ => Some(d),
        });
        assert_eq!(depth, Some(0));
    }

    #[test]
    fn drops_values_with_nul() {
        let facts = cert(&[1], "mallory\0evil");
        let all = AltSecPolicy {
            issuer_subject: true,
            subject: true,
            rfc822: true,
            upn: true,
        };
        let c = candidates(&facts, &all);
        assert!(c.iter().all(|c| !c.value.contains('\0')));
        assert!(values(&c, AltSecForm::Subject).is_empty());
        assert!(!values(&c, AltSecForm::IssuerSerial).is_empty());
    }

    #[test]
    fn matched_form_is_case_insensitive() {
        let facts = cert(&[0xab], "alice");
        let c = candidates(&facts, &AltSecPolicy::STRONG_ONLY);
        let stored = [
            "Kerberos:alice@EXAMPLE.TEST".to_owned(),
            c[1].value.to_lowercase(),
        ];
        assert_eq!(
            matched_form(&c, stored.iter().map(String::as_str), None),
            Some(AltSecForm::IssuerSerial)
        );
        assert_eq!(matched_form(&c, std::iter::empty(), None), None);
    }
}
