#![no_main]
//! CRL parsing (`revocation::crl`) and the DER reader OCSP responses go through
//! (`revocation::der`): bytes from a distribution point (HTTP, or an LDAP attribute value) or a
//! responder are hostile input. Parsed CRLs also go through the Issuing Distribution Point scope
//! and the delta CRL rules (RFC 5280 §5.2.4); seeds include a base CRL with an IDP and a
//! Freshest CRL pointer and its delta (fuzz/make-revocation-seeds.sh).

use certgate::revocation::crl::{self, Crl, Entry};
use certgate::revocation::{der, ldap};
use libfuzzer_sys::fuzz_target;

/// The key of the test CA that signed the IDP and delta seeds (fuzz/data/ocsp/ca.der).
fn ca_spki() -> &'static [u8] {
    static SPKI: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SPKI.get_or_init(|| {
        certgate::revocation::chain::Link::parse(include_bytes!("../data/ocsp/ca.der"))
            .expect("fixture CA parses")
            .spki
    })
}

fuzz_target!(|data: &[u8]| {
    // A DER element re-encoded from what was read reads back the same.
    if let Some((tlv, rest)) = der::read(data) {
        let again = der::write(tlv.tag, tlv.content);
        let (back, tail) = der::read(&again).expect("re-encoded element reads back");
        assert_eq!((back.tag, back.content), (tlv.tag, tlv.content));
        assert!(tail.is_empty());
        assert!(rest.len() < data.len());
        let _ = der::children(tlv.content);
    }
    // Two CRLs back to back (seed: a base and its delta) go through the delta rules together.
    if let Some((first, rest)) = der::read(data)
        && let (Ok(base), Ok(delta)) = (Crl::parse(first.raw), Crl::parse(rest))
    {
        let applies = base.accepts_delta(&delta);
        assert!(!applies || (delta.is_delta() && delta.issuer == base.issuer));
        for serial in [&[1][..], &[2][..], &[3][..], rest.get(..4).unwrap_or(rest)] {
            let expected = match delta.entry(serial) {
                Some(entry) => Some(entry),
                None => base.entry(serial),
            }
            .filter(|e| *e != Entry::Remove);
            assert_eq!(crl::lookup(&base, Some(&delta), serial), expected);
        }
    }
    let Ok(crl) = Crl::parse(data) else { return };
    // Parsed CRLs answer lookups without panicking and agree with themselves.
    assert_eq!(crl.is_empty(), crl.len() == 0);
    for serial in [&[][..], &[0][..], &[1][..], data.get(..8).unwrap_or(data)] {
        let _ = crl.entry(serial);
    }
    let _ = crl.expired(0);
    let _ = crl.expired(i64::MAX);
    let _ = crl.covers(false, &[]);
    let _ = crl.covers(true, &["http://cdp.example.test/ca.crl".to_owned()]);
    // Scope (IDP): a certificate naming the CRL's own distribution point is covered exactly
    // when the CRL is complete, supported and for that kind of certificate.
    let s = &crl.scope;
    let usable = !s.unsupported && !s.partial_reasons;
    assert_eq!(crl.covers(false, &s.uris), usable && !s.only_ca);
    assert_eq!(crl.covers(true, &s.uris), usable && !s.only_user);
    // A distribution point the IDP does not name is not covered (the fuzzer once made the
    // IDP name this very URI: fuzz/regressions/crl/idp-names-the-other-uri).
    let elsewhere = "http://elsewhere.invalid/x.crl".to_owned();
    if !s.uris.is_empty() && !s.uris.contains(&elsewhere) {
        assert!(!crl.covers(false, &[elsewhere]));
    }
    // Delta rules: a CRL is never older than itself; it is its own delta only if it is a delta
    // whose base number is at most its own number; lookups through a delta never report
    // removeFromCRL, and the delta wins for serials it lists.
    assert!(!crl.older_than(&crl));
    assert_eq!(
        crl.accepts_delta(&crl),
        crl.delta_base.is_some()
            && crl.number.is_some()
            && crl.delta_base.as_ref() <= crl.number.as_ref()
    );
    for serial in [&[1][..], &[2][..], &[3][..], data.get(..4).unwrap_or(data)] {
        let alone = crl::lookup(&crl, None, serial);
        assert_ne!(alone, Some(Entry::Remove));
        assert_eq!(alone, crl.entry(serial).filter(|e| *e != Entry::Remove));
        assert_eq!(crl::lookup(&crl, Some(&crl), serial), alone);
    }
    for url in crl.freshest.iter().chain(&crl.scope.uris) {
        let _ = ldap::parse(url);
    }
    // No key verifies a fuzzed signature with an empty or junk SPKI; the seeds made with the
    // fixed test CA reach the real signature check.
    assert!(crl.verify(&[]).is_err());
    let _ = crl.verify(ca_spki());
});
