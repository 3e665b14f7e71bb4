#![no_main]
//! Many-to-one mapping (`mapping::many_to_one`): mappings compiled from arbitrary criteria,
//! sub-fields, case flags and permissions, applied to arbitrary subject and issuer values. The
//! decision must equal the reference model's (first live mapping whose rules all match, `*`
//! glob anchored to the whole value), and `explain` must select the same mapping.

use certgate::config::raw::{RawManyToOne, RawRule};
use certgate::mapping::many_to_one::ManyToOneSet;
use certgate_fuzz::{facts, glob_model};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Characters that make matches likely and exercise case folding (Turkish dotted I, final
/// sigma, sharp s, Kelvin sign), plus the glob metacharacter.
const ALPHABET: &[char] = &[
    'a', 'A', 'b', 'B', '*', '*', '.', ' ', 'İ', 'i', 'I', 'ı', 'σ', 'ς', 'Σ', 'ß', 'K', 'k', 'é',
    'É', '?',
];
const SUB_FIELDS: &[&str] = &[
    "CN", "OU", "o", "Email", "2.5.4.11", "ST", "DC", "X", "1..2",
];
const OIDS: &[&str] = &["2.5.4.3", "2.5.4.11", "2.5.4.10", "1.2.840.113549.1.9.1"];

fn text(u: &mut Unstructured<'_>, max: usize) -> Result<String> {
    let len = u.int_in_range(0..=max)?;
    let mut s = String::new();
    for _ in 0..len {
        if u.ratio(1u8, 8u8)? {
            s.push(u.arbitrary::<char>()?);
        } else {
            s.push(*u.choose(ALPHABET)?);
        }
    }
    Ok(s)
}

fn mapping(u: &mut Unstructured<'_>, i: usize) -> Result<RawManyToOne> {
    let mut rules = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        rules.push(RawRule {
            certificate_field: (*u.choose(&["Subject", "Issuer", "issuer", "Both"])?).to_owned(),
            certificate_sub_field: (*u.choose(SUB_FIELDS)?).to_owned(),
            match_criteria: text(u, 8)?,
            compare_case_sensitive: u.arbitrary()?,
        });
    }
    Ok(RawManyToOne {
        name: if u.ratio(1u8, 16u8)? {
            String::new()
        } else {
            format!("m{i}")
        },
        enabled: u.arbitrary()?,
        permission_mode: u
            .choose(&[
                None,
                Some("Allow"),
                Some("deny"),
                Some("Deny"),
                Some("Maybe"),
            ])?
            .map(str::to_owned),
        user_name: format!("EXAMPLE\\user{i}"),
        rules,
        ..RawManyToOne::default()
    })
}

fn name(u: &mut Unstructured<'_>) -> Result<Vec<(&'static str, String)>> {
    let mut attrs = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        attrs.push((*u.choose(OIDS)?, text(u, 8)?));
    }
    Ok(attrs)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut raw = Vec::new();
    for i in 0..u.int_in_range(1..=4)? {
        raw.push(mapping(u, i)?);
    }
    let subject = name(u)?;
    let issuer = name(u)?;
    let Ok(set) = ManyToOneSet::compile(&raw, "m") else {
        return Ok(());
    };
    let facts = facts::with_names(facts::dn(&subject), facts::dn(&issuer));

    // The reference decision, straight from the README.
    let expected = set.mappings().iter().position(|m| {
        m.enabled()
            && !m.rules().is_empty()
            && m.rules().iter().all(|r| {
                let values = match r.field().as_str() {
                    "Subject" => &subject,
                    _ => &issuer,
                };
                values.iter().any(|(oid, v)| {
                    *oid == r.oid() && glob_model::matches(r.criteria(), v, r.case_sensitive())
                })
            })
    });
    let actual = set.first_match(&facts).map(|m| {
        set.mappings()
            .iter()
            .position(|x| std::ptr::eq(x, m))
            .expect("member")
    });
    assert_eq!(
        actual, expected,
        "subject {subject:?} issuer {issuer:?} raw {raw:?}"
    );

    let traces = set.explain(&facts);
    let selected: Vec<usize> = traces
        .iter()
        .filter(|t| t.selected)
        .map(|t| t.index)
        .collect();
    assert_eq!(
        selected,
        expected.into_iter().collect::<Vec<_>>(),
        "explain disagrees"
    );
    // Every rule trace reports the same verdict as the rule itself.
    for (m, t) in set.mappings().iter().zip(&traces) {
        for (r, rt) in m.rules().iter().zip(&t.rules) {
            assert_eq!(rt.matched, r.matches(&facts));
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
