#![no_main]
//! DN rendering (`identity::dn`): names built from arbitrary attribute types and values render
//! to strings that read back as the same name, in both the display order headers use and the
//! DER order AD `altSecurityIdentities` uses; decoding every DirectoryString type never panics.

use certgate::identity::dn::{Attribute, Dn, decode_directory_string, label_for_oid};
use certgate_fuzz::dn_model;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use x509_parser::der_parser::asn1_rs::Tag;

/// Attribute types certificates carry: every labelled one, and unlabelled OIDs.
const OIDS: &[&str] = &[
    "2.5.4.3",
    "2.5.4.5",
    "2.5.4.6",
    "2.5.4.7",
    "2.5.4.8",
    "2.5.4.9",
    "2.5.4.10",
    "2.5.4.11",
    "2.5.4.12",
    "2.5.4.4",
    "2.5.4.42",
    "2.5.4.43",
    "2.5.4.17",
    "2.5.4.13",
    "1.2.840.113549.1.9.1",
    "0.9.2342.19200300.100.1.25",
    "0.9.2342.19200300.100.1.1",
    "1.3.6.1.4.1.311.60.2.1.3",
    "2.5.4.97",
];

/// The DirectoryString tags, and one a malformed name might carry instead.
fn tag_for(n: u8) -> Tag {
    match n % 8 {
        0 => Tag::Utf8String,
        1 => Tag::PrintableString,
        2 => Tag::Ia5String,
        3 => Tag::BmpString,
        4 => Tag::TeletexString,
        5 => Tag::UniversalString,
        6 => Tag::VideotexString,
        _ => Tag::OctetString,
    }
}

fn build(u: &mut Unstructured<'_>) -> Result<Dn> {
    let mut rdns = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let mut rdn = Vec::new();
        for _ in 0..u.int_in_range(1..=3)? {
            let oid = (*u.choose(OIDS)?).to_owned();
            let tag = tag_for(u.arbitrary()?);
            let len = u.int_in_range(0..=24)?;
            let bytes = u.bytes(len)?;
            let value = decode_directory_string(tag, bytes);
            rdn.push(Attribute { oid, value });
        }
        rdns.push(rdn);
    }
    Ok(Dn { rdns })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(dn) = build(&mut u) else { return };

    let display = dn.to_display_string();
    assert_eq!(display, dn.to_display_string(), "rendering is not stable");
    assert_eq!(display, dn.to_string());
    let mut back = dn_model::parse(&display, ", ").expect("display form unreadable");
    back.rdns.reverse();
    assert_eq!(back, dn, "display form {display:?} does not read back");

    let der_order = dn.to_der_order_string();
    let back = dn_model::parse(&der_order, ",").expect("DER-order form unreadable");
    assert_eq!(back, dn, "DER-order form {der_order:?} does not read back");

    // The first CN is the first CN in DER order.
    let first_cn = dn
        .attributes()
        .find(|a| a.oid == "2.5.4.3")
        .map(|a| a.value.as_str());
    assert_eq!(dn.common_name(), first_cn);
    for a in dn.attributes() {
        assert!(!label_for_oid(&a.oid).is_empty());
    }
});
