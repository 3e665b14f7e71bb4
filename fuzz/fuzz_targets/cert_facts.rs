#![no_main]
//! Client-certificate parsing and extraction (`identity`): `CertFacts::parse` on arbitrary DER,
//! the structural check the one-to-one loader uses, and every derived form a header or a rule
//! reads.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certgate::identity::{CertFacts, check_certificate_der, hex_upper, sha1, sha256};
use certgate_fuzz::dn_model;
use libfuzzer_sys::fuzz_target;
use rustls::pki_types::CertificateDer;

fuzz_target!(|data: &[u8]| {
    let checked = check_certificate_der(data);
    if let Err(reason) = &checked {
        assert!(!reason.is_empty(), "empty refusal reason");
    }
    let Ok(facts) = CertFacts::parse(&CertificateDer::from(data)) else {
        return;
    };
    // Anything the full parser accepts, the loader's check accepts too.
    assert!(
        checked.is_ok(),
        "x509-parser accepts what the check refuses"
    );
    // Hashes and their renderings describe exactly these bytes.
    assert_eq!(facts.der.as_ref(), data);
    assert_eq!(facts.sha256, sha256(data));
    assert_eq!(facts.sha1, sha1(data));
    let thumb = facts.thumbprint();
    assert_eq!(thumb.len(), 40);
    assert!(
        thumb
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    );
    assert_eq!(thumb, hex_upper(&facts.sha1));
    assert_eq!(STANDARD.decode(facts.base64_der()).expect("base64"), data);
    // Serial: uppercase hex of the content octets without one leading sign byte. (A
    // non-minimal encoding such as 00 00 01 keeps its second zero, as Windows shows the bytes.)
    let serial = facts.serial_hex();
    assert_eq!(serial.len(), facts.serial.len() * 2);
    // Both DN renderings read back as the same name (no ambiguity a header or an AD
    // altSecurityIdentities value could be forged through).
    for dn in [&facts.subject, &facts.issuer] {
        if dn.rdns.iter().any(Vec::is_empty) {
            // An empty RDN (SET OF with no member) renders as nothing; see dn_render.
            continue;
        }
        let display = dn.to_display_string();
        let mut back = dn_model::parse(&display, ", ").expect("display form unreadable");
        back.rdns.reverse();
        assert_eq!(&back, dn, "display form {display:?} does not read back");
        let der_order = dn.to_der_order_string();
        let back = dn_model::parse(&der_order, ",").expect("DER-order form unreadable");
        assert_eq!(&back, dn, "DER-order form {der_order:?} does not read back");
        let _ = dn.common_name();
    }
    for s in facts
        .emails
        .iter()
        .chain(&facts.dns_names)
        .chain(&facts.upns)
    {
        let _ = s.len();
    }
});
