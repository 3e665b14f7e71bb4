//! Certificates and raw mappings shared by the many-to-one unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair};

use super::raw::{RawManyToOne, RawRule};
use crate::identity::CertFacts;

pub(crate) const OU: &[u64] = &[2, 5, 4, 11];

/// Builds a leaf with the given subject, signed by a CA with the given subject, and parses
/// it. `DistinguishedName` is keyed by type, so a second `OU` is pushed as a custom type
/// with the same OID.
pub(crate) fn cert(subject: &[(DnType, DnValue)], issuer: &[(DnType, DnValue)]) -> CertFacts {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name = dn(issuer);
    let ca_key = KeyPair::generate().unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    params.distinguished_name = dn(subject);
    let key = KeyPair::generate().unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    CertFacts::parse(leaf.der()).unwrap()
}

pub(crate) fn dn(attrs: &[(DnType, DnValue)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in attrs {
        dn.push(ty.clone(), value.clone());
    }
    dn
}

pub(crate) fn utf8(s: &str) -> DnValue {
    DnValue::Utf8String(s.to_owned())
}

pub(crate) fn standard_cert() -> CertFacts {
    cert(
        &[
            (DnType::CommonName, utf8("alice")),
            (DnType::OrganizationalUnitName, utf8("Sales")),
            (DnType::CustomDnType(OU.to_vec()), utf8("Security")),
            (DnType::OrganizationName, utf8("Contoso")),
            (DnType::LocalityName, utf8("Örebro")),
            (DnType::CustomDnType(vec![2, 5, 4, 12]), utf8("")),
            (
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                DnValue::Ia5String("alice@contoso.test".try_into().unwrap()),
            ),
        ],
        &[
            (DnType::CommonName, utf8("Contoso Issuing CA")),
            (DnType::OrganizationName, utf8("Contoso Ltd")),
            (DnType::CountryName, utf8("SE")),
        ],
    )
}

pub(crate) fn rule(field: &str, sub: &str, criteria: &str, case: Option<bool>) -> RawRule {
    RawRule {
        certificate_field: field.into(),
        certificate_sub_field: sub.into(),
        match_criteria: criteria.into(),
        compare_case_sensitive: case,
    }
}

pub(crate) fn mapping(name: &str, permission: Option<&str>, rules: Vec<RawRule>) -> RawManyToOne {
    RawManyToOne {
        name: name.into(),
        permission_mode: permission.map(str::to_owned),
        user_name: format!("CONTOSO\\{name}"),
        rules,
        ..RawManyToOne::default()
    }
}
