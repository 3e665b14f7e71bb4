#![no_main]
//! OCSP responses (`revocation::ocsp::verify_response`), as a responder or the state directory
//! hands them to the proxy: the DER walk, the signature check (the CA's key, or a delegated
//! responder the CA issued with id-kp-OCSPSigning), the CertID match and the freshness rules.
//! The PKI is fixed (fuzz/data/ocsp, made by fuzz/make-revocation-seeds.sh together with real
//! `openssl ocsp` responses as seeds), so mutated responses reach the signature and the CertID
//! checks instead of stopping at the first field.
//!
//! The same bytes are also read as a certificate the way the revocation code reads the chain and
//! the responder certificates (`chain::Link::parse`: CDP, Freshest CRL and AIA URIs), and every
//! URI found is put through the LDAP URL reader.

use std::sync::{Arc, OnceLock};

use certgate::revocation::chain::{Link, Step};
use certgate::revocation::ocsp::{self, CachedOcsp, OcspError};
use certgate::revocation::{der, ldap};
use libfuzzer_sys::fuzz_target;

struct Pki {
    step: Step,
    /// The CA's key: the one the proxy is configured with.
    ca_keys: Vec<Vec<u8>>,
    /// A CA with the same name whose private key was thrown away.
    stranger_keys: Vec<Vec<u8>>,
    /// When the seeds were made (they are current then).
    now: i64,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let link = |der: &[u8]| Link::parse(der).expect("fixture certificate parses");
        let ca = link(include_bytes!("../data/ocsp/ca.der"));
        let stranger = link(include_bytes!("../data/ocsp/stranger.der"));
        let leaf = link(include_bytes!("../data/ocsp/leaf.der"));
        let now = include_str!("../data/ocsp/now")
            .trim()
            .parse()
            .expect("fuzz/data/ocsp/now is Unix seconds");
        Pki {
            ca_keys: vec![ca.spki.clone()],
            stranger_keys: vec![stranger.spki],
            step: Step {
                cert: Arc::new(leaf),
                issuer: Arc::new(ca),
            },
            now,
        }
    })
}

/// The fields of a verdict, to compare two of them.
fn summary(r: &Result<CachedOcsp, OcspError>) -> Result<(ocsp::CertStatus, i64, i64), OcspError> {
    r.as_ref()
        .map(|c| (c.status, c.this_update, c.valid_until))
        .map_err(Clone::clone)
}

/// Past anything an ASN.1 time can say (year 9999) plus the allowed skew.
const AFTER_ALL_TIMES: i64 = 253_402_300_799 + 3_600;

fuzz_target!(|data: &[u8]| {
    let pki = pki();
    let verdict = ocsp::verify_response(data, &pki.step, &pki.ca_keys, pki.now);
    // Deterministic: the persisted copy is verified again after a restart and must agree.
    let again = ocsp::verify_response(data, &pki.step, &pki.ca_keys, pki.now);
    assert_eq!(summary(&verdict), summary(&again));
    if let Ok(answer) = &verdict {
        // Accepted only while current (thisUpdate not beyond the skew, nextUpdate not past).
        assert!(
            answer.this_update <= pki.now + 300,
            "answer from the future accepted"
        );
        assert!(pki.now <= answer.valid_until, "expired answer accepted");
    }
    // Nobody without the CA's key can make a response count: with only a same-named CA's key
    // (whose private key no longer exists) nothing verifies.
    assert!(
        ocsp::verify_response(data, &pki.step, &pki.stranger_keys, pki.now).is_err(),
        "a response verified without the CA's key"
    );
    // Nothing is current after every date a response can carry.
    assert!(
        ocsp::verify_response(data, &pki.step, &pki.ca_keys, AFTER_ALL_TIMES).is_err(),
        "a response is current after year 9999"
    );

    // The same bytes as a certificate of a chain or a responder: the URIs it names are read
    // and each goes through the LDAP URL reader the CRL fetch uses.
    if let Some(link) = Link::parse(data) {
        for uri in link.cdps.iter().chain(&link.freshest).chain(&link.ocsp) {
            check_ldap_url(uri);
        }
        let _ = link.signed_by(&pki.step.issuer);
        // A CertID for it is well-formed DER that reads back.
        let id = ocsp::cert_id(&Step {
            cert: Arc::new(link),
            issuer: Arc::clone(&pki.step.issuer),
        });
        let request = ocsp::request(&id);
        let (tlv, rest) = der::read(&request).expect("OCSP request is DER");
        assert!(rest.is_empty() && tlv.tag == 0x30);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_ldap_url(text);
    }
});

/// What `ldap::parse` accepts is an ldap:// URL with a DN and a `;binary` attribute.
fn check_ldap_url(url: &str) {
    if let Some(parsed) = ldap::parse(url) {
        assert!(
            url.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("ldap://"))
        );
        assert!(!parsed.dn.trim().is_empty());
        assert!(parsed.attribute.to_ascii_lowercase().ends_with(";binary"));
        assert!(!parsed.host.contains('/'));
    }
}
