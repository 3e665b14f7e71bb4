//! Mapping hot paths, per connection: one-to-one lookup must stay flat from 1 to 1M entries,
//! many-to-one matching must not allocate, and certificate extraction happens once per
//! connection. Run with `cargo bench --bench mapping`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use certgate::identity::{CertFacts, sha256};
use certgate::mapping::many_to_one::ManyToOneSet;
use certgate::mapping::one_to_one::OneToOneIndex;
use certgate::mapping::{MappedUser, MappingKind};
use certgate::pki::{Authority, ClientSpec};

fn main() {
    divan::main();
}

/// An index of `n` entries keyed by the hashes of synthetic DER blobs, plus one real
/// certificate, so lookups hash and probe exactly as the proxy does.
fn index_with(n: usize) -> (OneToOneIndex, CertFacts) {
    let ca = Authority::new("bench CA").unwrap();
    let cert = ca.client(&ClientSpec::new("alice")).unwrap();
    let facts = CertFacts::parse(&cert.der).unwrap();
    let mut index = OneToOneIndex::with_capacity(n + 1);
    for i in 0..n {
        let fake = format!("certificate-{i}");
        let user = Arc::new(MappedUser {
            user_name: format!("EXAMPLE\\user{i}").into(),
            kind: MappingKind::OneToOne,
            source: "bench".into(),
            password: None,
        });
        index.insert(sha256(fake.as_bytes()), user).unwrap();
    }
    let alice = Arc::new(MappedUser {
        user_name: "EXAMPLE\\alice".into(),
        kind: MappingKind::OneToOne,
        source: "bench".into(),
        password: None,
    });
    index.insert(facts.sha256, alice).unwrap();
    (index, facts)
}

#[divan::bench(args = [1, 10_000, 1_000_000], sample_count = 200)]
fn one_to_one_lookup(bencher: divan::Bencher, n: usize) {
    let (index, facts) = index_with(n);
    bencher.bench(|| divan::black_box(index.lookup(divan::black_box(&facts.sha256))).is_some());
}

#[divan::bench(args = [1, 10_000, 1_000_000], sample_count = 200)]
fn one_to_one_miss(bencher: divan::Bencher, n: usize) {
    let (index, _) = index_with(n);
    let missing = sha256(b"not mapped");
    bencher.bench(|| divan::black_box(index.lookup(divan::black_box(&missing))).is_none());
}

#[divan::bench]
fn many_to_one_first_match(bencher: divan::Bencher) {
    let toml = r#"
        [[m]]
        name = "deny contractors"
        permission_mode = "Deny"
        user_name = "x"
        rules = [{ certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Contract*", compare_case_sensitive = false }]
        [[m]]
        name = "security"
        user_name = "EXAMPLE\\security"
        rules = [
          { certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Secur*" },
          { certificate_field = "Subject", certificate_sub_field = "O", match_criteria = "contoso", compare_case_sensitive = false },
          { certificate_field = "Issuer", certificate_sub_field = "CN", match_criteria = "*CA" },
        ]
    "#;
    #[derive(serde::Deserialize)]
    struct List {
        m: Vec<certgate::config::raw::RawManyToOne>,
    }
    let list: List = toml::from_str(toml).unwrap();
    let set = ManyToOneSet::compile(&list.m, "m").unwrap();
    let ca = Authority::new("bench CA").unwrap();
    let mut spec = ClientSpec::new("sam");
    spec.organizational_units = vec!["Security".into()];
    spec.organization = Some("Contoso".into());
    let facts = CertFacts::parse(&ca.client(&spec).unwrap().der).unwrap();
    bencher.bench(|| divan::black_box(set.first_match(divan::black_box(&facts))).is_some());
}

#[divan::bench]
fn certificate_extraction(bencher: divan::Bencher) {
    let ca = Authority::new("bench CA").unwrap();
    let mut spec = ClientSpec::new("alice");
    spec.upn = Some("alice@example.test".into());
    let der = ca.client(&spec).unwrap().der;
    bencher.bench(|| CertFacts::parse(divan::black_box(&der)).unwrap());
}
