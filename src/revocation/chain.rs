//! The certificates of a verified client chain, as far as revocation needs them: serial, issuer,
//! keys, and the sources each names (CRL Distribution Points, Freshest CRL, OCSP in the AIA).
//!
//! The chain has already been verified to a configured `client_ca` by webpki when this runs; the
//! path is rebuilt here (leaf, then each issuer by name, disambiguated by key identifier and
//! signature when a CA was renewed) because webpki does not hand it out.

use std::sync::Arc;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::crl::{OID_FRESHEST_CRL, distribution_point_uris, normalize_serial};

/// `id-ad-ocsp` (RFC 5280 §4.2.2.1).
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// One certificate, reduced to what revocation checking reads.
#[derive(Debug, Clone)]
pub struct Link {
    /// The certificate DER.
    pub der: Vec<u8>,
    /// Serial number (DER INTEGER contents, leading zeros stripped).
    pub serial: Vec<u8>,
    /// Subject name, DER.
    pub subject: Vec<u8>,
    /// Issuer name, DER.
    pub issuer: Vec<u8>,
    /// Subject name for people (RFC 4514-ish, from x509-parser).
    pub subject_text: String,
    /// The subject's common name (the whole subject text when it has none), for explanations
    /// and metric labels, read once here rather than by parsing the certificate again.
    pub common_name: String,
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// The subjectPublicKey BIT STRING contents (hashed into an OCSP CertID).
    pub public_key: Vec<u8>,
    /// Subject key identifier.
    pub key_id: Option<Vec<u8>>,
    /// Authority key identifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// CRL Distribution Point URIs.
    pub cdps: Vec<String>,
    /// Freshest CRL (delta) URIs named by the certificate itself.
    pub freshest: Vec<String>,
    /// OCSP responder URIs from the Authority Information Access.
    pub ocsp: Vec<String>,
    /// Extended key usage includes id-kp-OCSPSigning.
    pub ocsp_signing: bool,
    /// The key may sign CRLs: no keyUsage extension, or one with cRLSign (RFC 5280 §6.3.3 f).
    pub crl_sign: bool,
}

impl Link {
    /// Reads a certificate; `None` when it does not parse.
    pub fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Self::from_cert(der, &cert))
    }

    fn from_cert(der: &[u8], cert: &X509Certificate<'_>) -> Self {
        let subject_text = cert.subject().to_string();
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map_or_else(|| subject_text.clone(), str::to_owned);
        let mut link = Self {
            der: der.to_vec(),
            serial: normalize_serial(cert.raw_serial()).to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            subject_text,
            common_name,
            spki: cert.public_key().raw.to_vec(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            key_id: None,
            authority_key_id: None,
            is_ca: false,
            cdps: Vec::new(),
            freshest: Vec::new(),
            ocsp: Vec::new(),
            ocsp_signing: false,
            crl_sign: true,
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => link.key_id = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    link.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::BasicConstraints(bc) => link.is_ca = bc.ca,
                ParsedExtension::CRLDistributionPoints(_) => {
                    link.cdps = distribution_point_uris(ext.value);
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    link.ocsp = aia
                        .iter()
                        .filter(|d| d.access_method.to_id_string() == OID_AD_OCSP)
                        .filter_map(|d| match &d.access_location {
                            GeneralName::URI(uri) => Some((*uri).to_owned()),
                            _ => None,
                        })
                        .collect();
                }
                ParsedExtension::ExtendedKeyUsage(eku) => link.ocsp_signing = eku.ocsp_signing,
                ParsedExtension::KeyUsage(ku) => link.crl_sign = ku.crl_sign(),
                _ if ext.oid.to_id_string() == OID_FRESHEST_CRL => {
                    link.freshest = distribution_point_uris(ext.value);
                }
                _ => {}
            }
        }
        link
    }

    /// Whether the certificate names any revocation source of its own.
    pub fn names_a_source(&self) -> bool {
        !self.cdps.is_empty() || !self.ocsp.is_empty()
    }

    /// Whether `self`'s signature verifies with `issuer`'s key.
    pub fn signed_by(&self, issuer: &Link) -> bool {
        #[cfg(test)]
        tests::SIGNATURE_CHECKS.with(|n| n.set(n.get() + 1));
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&self.der) else {
            return false;
        };
        let Ok((_, key)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&issuer.spki) else {
            return false;
        };
        cert.verify_signature(Some(&key)).is_ok()
    }
}

/// One step of the path: a certificate to check and the CA that issued it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The certificate whose status is wanted.
    pub cert: Arc<Link>,
    /// Its issuer (shared with the configured anchors when it is one).
    pub issuer: Arc<Link>,
}

/// Rebuilds the path from the leaf to a trust anchor: `presented` is the client's chain (leaf
/// first), `anchors` the configured CA certificates. Returns the steps, leaf first, stopping at
/// the first certificate issued by an anchor. `None` when no path exists (the caller only calls
/// this for chains webpki verified, so that means the two disagree: fail closed).
pub fn path(presented: &[Arc<Link>], anchors: &[Arc<Link>]) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut current = Arc::clone(presented.first()?);
    for _ in 0..8 {
        // A client that sends its CA along (OpenSSL builds the chain from its trust store, so
        // curl does) presents a copy of an anchor: the same certificate, not a second candidate.
        // Telling two candidates apart costs a signature check, a fifth of a handshake.
        let candidates: Vec<(&Arc<Link>, bool)> = anchors
            .iter()
            .map(|a| (a, true))
            .chain(
                presented
                    .iter()
                    .skip(1)
                    .filter(|p| !anchors.iter().any(|a| a.der == p.der))
                    .map(|p| (p, false)),
            )
            .filter(|(c, _)| c.subject == current.issuer && c.der != current.der)
            .collect();
        let chosen = match candidates.as_slice() {
            [] => return None,
            [only] => *only,
            several => *several.iter().find(|(c, _)| current.signed_by(c))?,
        };
        let (issuer, is_anchor) = chosen;
        steps.push(Step {
            cert: Arc::clone(&current),
            issuer: Arc::clone(issuer),
        });
        if is_anchor {
            return Some(steps);
        }
        current = Arc::clone(issuer);
    }
    None
}

/// The SPKIs of every configured CA with `name`, the chain's own issuer first: any of them may
/// have signed a CRL or OCSP response for that CA (a renewed CA has several keys).
pub fn issuer_keys(step: &Step, anchors: &[Arc<Link>]) -> Vec<Vec<u8>> {
    keys_of(step, anchors, |_| true)
}

/// The [`issuer_keys`] a CRL may be signed with: those of certificates whose keyUsage allows
/// cRLSign. A CA whose certificate limits its key to other uses cannot vouch for a CRL.
pub fn crl_keys(step: &Step, anchors: &[Arc<Link>]) -> Vec<Vec<u8>> {
    keys_of(step, anchors, may_sign_crls)
}

/// The configured CAs whose keys may sign a CRL from `issuer`, by the rule of [`crl_keys`], for
/// a CRL file judged on its own (`certgate check --online`), before any chain names it.
pub fn crl_signers<'a>(issuer: &[u8], anchors: &'a [Arc<Link>]) -> Vec<&'a Arc<Link>> {
    one_per_key(named(issuer, anchors), may_sign_crls)
}

/// A CA whose certificate limits its key to other uses than cRLSign cannot vouch for a CRL.
fn may_sign_crls(link: &Link) -> bool {
    link.crl_sign
}

fn keys_of(step: &Step, anchors: &[Arc<Link>], usable: impl Fn(&Link) -> bool) -> Vec<Vec<u8>> {
    let candidates = std::iter::once(&step.issuer).chain(named(&step.cert.issuer, anchors));
    one_per_key(candidates, usable)
        .into_iter()
        .map(|link| link.spki.clone())
        .collect()
}

/// The configured CAs whose subject is `name`.
fn named<'a>(name: &[u8], anchors: &'a [Arc<Link>]) -> impl Iterator<Item = &'a Arc<Link>> {
    anchors.iter().filter(move |a| a.subject == name)
}

/// The `usable` links in order, the first of each key only.
fn one_per_key<'a>(
    links: impl Iterator<Item = &'a Arc<Link>>,
    usable: impl Fn(&Link) -> bool,
) -> Vec<&'a Arc<Link>> {
    let mut kept: Vec<&Arc<Link>> = Vec::new();
    for link in links {
        if usable(link) && !kept.iter().any(|k| k.spki == link.spki) {
            kept.push(link);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pki::{Authority, ClientSpec};
    use crate::revocation::crl::{Crl, CrlError};

    thread_local! {
        /// Signature checks [`Link::signed_by`] made on this thread.
        pub(super) static SIGNATURE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_presented_copy_of_the_anchor_is_the_anchor_without_a_signature_check() {
        let ca = Authority::new("Path CA").unwrap();
        let anchor = Arc::new(Link::parse(&ca.der).unwrap());
        let client =
            Arc::new(Link::parse(&ca.client(&ClientSpec::new("alice")).unwrap().der).unwrap());
        let before = SIGNATURE_CHECKS.with(std::cell::Cell::get);
        for presented in [vec![client.clone()], vec![client.clone(), anchor.clone()]] {
            let steps = path(&presented, std::slice::from_ref(&anchor)).unwrap();
            assert_eq!(steps.len(), 1);
            assert_eq!(steps[0].issuer.der, anchor.der);
        }
        assert_eq!(SIGNATURE_CHECKS.with(std::cell::Cell::get), before);

        // A different certificate with the CA's name (a renewed CA) is a real second candidate:
        // only the signature tells which one issued the leaf (the renewed one is tried first).
        let renewed = Authority::new("Path CA").unwrap();
        let other = Arc::new(Link::parse(&renewed.der).unwrap());
        let steps = path(std::slice::from_ref(&client), &[other, anchor.clone()]).unwrap();
        assert_eq!(steps[0].issuer.der, anchor.der);
        assert_eq!(SIGNATURE_CHECKS.with(std::cell::Cell::get), before + 2);
    }

    #[test]
    fn a_ca_whose_key_usage_leaves_out_crl_sign_cannot_vouch_for_a_crl() {
        let ca = Authority::new("KU CA").unwrap();
        let full = Arc::new(Link::parse(&ca.der).unwrap());
        let limited = Arc::new(Link::parse(&ca.without_crl_sign().unwrap()).unwrap());
        assert!(full.crl_sign && !limited.crl_sign);
        assert_eq!(full.spki, limited.spki, "same key, same name");
        let client = ca.client(&ClientSpec::new("alice")).unwrap();
        let step = |issuer: &Arc<Link>| Step {
            cert: Arc::new(Link::parse(&client.der).unwrap()),
            issuer: Arc::clone(issuer),
        };
        let crl = Crl::parse(ca.crl(&[5], 7).unwrap().as_bytes()).unwrap();

        // Anchored only by the limited certificate: no key may sign CRLs, whatever verifies.
        let keys = crl_keys(&step(&limited), std::slice::from_ref(&limited));
        assert!(keys.is_empty());
        assert_eq!(crl.verify_any(&keys), Err(CrlError::NotCrlSigner));
        // OCSP still has the key: the CA may sign its own responses.
        assert_eq!(
            issuer_keys(&step(&limited), std::slice::from_ref(&limited)).len(),
            1
        );

        // Another configured certificate of the same CA that allows cRLSign lends its key.
        let keys = crl_keys(&step(&limited), &[limited.clone(), full.clone()]);
        assert_eq!(crl.verify_any(&keys), Ok(()));
        assert_eq!(
            crl.verify_any(&crl_keys(&step(&full), std::slice::from_ref(&full))),
            Ok(())
        );

        // A CRL file judged without a chain (`check --online`) goes by the same rule.
        let signers = crl_signers(&crl.issuer, std::slice::from_ref(&limited));
        assert!(signers.is_empty());
        let both = [limited.clone(), full.clone()];
        let signers = crl_signers(&crl.issuer, &both);
        assert_eq!(signers.len(), 1, "one key, listed once");
        assert!(signers[0].crl_sign);
        assert_eq!(crl.signed_by(&[signers[0].spki.as_slice()]), Ok(0));
        assert_eq!(
            crl_signers(&limited.issuer, &both).len(),
            1,
            "self-signed: named by itself"
        );
        assert!(crl_signers(b"another name", &both).is_empty());
    }
}
