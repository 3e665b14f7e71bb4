//! `CertFacts` built straight from names, so matcher targets can put any value in any attribute
//! without signing a certificate per input.

use certgate::identity::CertFacts;
use certgate::identity::dn::{Attribute, Dn};
use rustls::pki_types::CertificateDer;

/// Facts with the given subject and issuer and nothing else.
pub fn with_names(subject: Dn, issuer: Dn) -> CertFacts {
    CertFacts {
        der: CertificateDer::from(Vec::new()),
        sha256: [0; 32],
        sha1: [0; 20],
        subject,
        issuer,
        serial: vec![1],
        not_before: 0,
        not_after: 0,
        subject_key_id: None,
        spki: Vec::new(),
        public_key: Vec::new(),
        emails: Vec::new(),
        dns_names: Vec::new(),
        upns: Vec::new(),
    }
}

/// A one-attribute-per-RDN name.
pub fn dn(attrs: &[(&str, String)]) -> Dn {
    Dn {
        rdns: attrs
            .iter()
            .map(|(oid, value)| {
                vec![Attribute {
                    oid: (*oid).to_owned(),
                    value: value.clone(),
                }]
            })
            .collect(),
    }
}
