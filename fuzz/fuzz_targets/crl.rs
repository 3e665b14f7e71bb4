#![no_main]
//! CRL parsing (`revocation::crl`) and the DER reader OCSP responses go through
//! (`revocation::der`): bytes from a distribution point or a responder are hostile input.

use certgate::revocation::crl::Crl;
use certgate::revocation::der;
use libfuzzer_sys::fuzz_target;

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
    // No key verifies a fuzzed signature with an empty or junk SPKI.
    assert!(crl.verify(&[]).is_err());
});
