//! Differential tests: the many-to-one matcher and the request-path normaliser against small
//! reference models written straight from the README, over inputs from a seeded generator.
//!
//! The models are naive on purpose (a dynamic programme for the glob, a decode/split/stack for
//! the path) so that they can be checked by reading. The generator draws from alphabets chosen
//! to hit the edges (`*` runs, case folding of `İ`, `ς`, `K`; `%2e`, `%25`, `\`, `;`, control
//! bytes), and is seeded so a failure names an input that reproduces. `DIFFERENTIAL_CASES`
//! raises the number of cases for a longer run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use certgate::config::raw::{RawManyToOne, RawRule};
use certgate::forward::path::normalize;
use certgate::identity::CertFacts;
use certgate::identity::dn::{Attribute, Dn};
use certgate::mapping::many_to_one::ManyToOneSet;
use rustls::pki_types::CertificateDer;

/// xorshift64*: small, seeded, good enough to spread choices.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn cases(default: usize) -> usize {
    std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Many-to-one matcher

/// README: `*` matches any run of characters (including none), anchored to the whole value, no
/// `?`, no escaping; without `compare_case_sensitive` characters compare after simple lowercase
/// folding (a character whose lowercase is several characters stays itself; final sigma is
/// sigma).
fn glob_model(criteria: &str, value: &str, case_sensitive: bool) -> bool {
    let fold = |c: char| -> char {
        if case_sensitive {
            return c;
        }
        if c == 'ς' {
            return 'σ';
        }
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    };
    let p: Vec<char> = criteria.chars().map(fold).collect();
    let v: Vec<char> = value.chars().map(fold).collect();
    let mut m = vec![vec![false; v.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=v.len() {
            m[i][j] = if p[i - 1] == '*' {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && p[i - 1] == v[j - 1]
            };
        }
    }
    m[p.len()][v.len()]
}

const GLOB_ALPHABET: &[char] = &[
    'a', 'a', 'b', 'A', 'B', '*', '*', '*', ' ', '.', 'İ', 'i', 'I', 'ı', 'σ', 'ς', 'Σ', 'ß', 'K',
    'k', 'é', 'É', '?', '\u{0}', '😀',
];

fn glob_text(g: &mut Gen, max: usize) -> String {
    (0..g.below(max + 1))
        .map(|_| *g.pick(GLOB_ALPHABET))
        .collect()
}

fn facts(subject: &[(&str, String)]) -> CertFacts {
    let dn = |attrs: &[(&str, String)]| Dn {
        rdns: attrs
            .iter()
            .map(|(oid, value)| {
                vec![Attribute {
                    oid: (*oid).to_owned(),
                    value: value.clone(),
                }]
            })
            .collect(),
    };
    CertFacts {
        der: CertificateDer::from(Vec::new()),
        sha256: [0; 32],
        sha1: [0; 20],
        subject: dn(subject),
        issuer: dn(&[("2.5.4.3", "Issuing CA".to_owned())]),
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

fn rule(sub_field: &str, criteria: &str, case_sensitive: Option<bool>) -> RawRule {
    RawRule {
        certificate_field: "Subject".into(),
        certificate_sub_field: sub_field.into(),
        match_criteria: criteria.into(),
        compare_case_sensitive: case_sensitive,
    }
}

fn mapping(name: &str, rules: Vec<RawRule>) -> RawManyToOne {
    RawManyToOne {
        name: name.into(),
        user_name: format!("EXAMPLE\\{name}"),
        rules,
        ..RawManyToOne::default()
    }
}

/// One rule, one to three values of the sub-field: the matcher says what the model says.
#[test]
fn many_to_one_rule_agrees_with_the_glob_model() {
    let mut g = Gen(0x5EED_0001);
    for case in 0..cases(40_000) {
        let criteria = glob_text(&mut g, 7);
        let case_flag = *g.pick(&[None, Some(true), Some(false)]);
        let values: Vec<String> = (0..g.below(3) + 1).map(|_| glob_text(&mut g, 7)).collect();
        let set = ManyToOneSet::compile(
            &[mapping("m", vec![rule("OU", &criteria, case_flag)])],
            "many_to_one_mappings",
        )
        .unwrap();
        let subject: Vec<(&str, String)> = values.iter().map(|v| ("2.5.4.11", v.clone())).collect();
        let expected = values
            .iter()
            .any(|v| glob_model(&criteria, v, case_flag.unwrap_or(true)));
        let actual = set.first_match(&facts(&subject)).is_some();
        assert_eq!(
            actual, expected,
            "case {case}: criteria {criteria:?}, values {values:?}, compare_case_sensitive {case_flag:?}"
        );
    }
}

/// Several mappings with several rules: the first mapping (file order) whose rules all match
/// decides, a missing sub-field fails its rule, a mapping without rules never matches.
#[test]
fn many_to_one_first_match_agrees_with_the_model() {
    const FIELDS: &[(&str, &str)] = &[("CN", "2.5.4.3"), ("OU", "2.5.4.11"), ("O", "2.5.4.10")];
    let mut g = Gen(0x5EED_0002);
    for case in 0..cases(10_000) {
        let mut raw = Vec::new();
        let mut model_rules = Vec::new();
        for i in 0..g.below(4) + 1 {
            let mut rules = Vec::new();
            let mut model = Vec::new();
            for _ in 0..g.below(4) {
                let (label, oid) = *g.pick(FIELDS);
                let criteria = glob_text(&mut g, 5);
                let case_flag = *g.pick(&[None, Some(true), Some(false)]);
                rules.push(rule(label, &criteria, case_flag));
                model.push((oid, criteria, case_flag.unwrap_or(true)));
            }
            raw.push(mapping(&format!("m{i}"), rules));
            model_rules.push(model);
        }
        let subject: Vec<(&str, String)> = (0..g.below(5))
            .map(|_| (g.pick(FIELDS).1, glob_text(&mut g, 5)))
            .collect();
        let set = ManyToOneSet::compile(&raw, "many_to_one_mappings").unwrap();
        let expected = model_rules.iter().position(|rules| {
            !rules.is_empty()
                && rules.iter().all(|(oid, criteria, cs)| {
                    subject
                        .iter()
                        .any(|(o, v)| o == oid && glob_model(criteria, v, *cs))
                })
        });
        let actual = set
            .first_match(&facts(&subject))
            .map(|m| m.name().to_owned());
        assert_eq!(
            actual,
            expected.map(|i| format!("m{i}")),
            "case {case}: rules {model_rules:?}, subject {subject:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Path normaliser

/// README/IIS: decode once (a `%` that is not two hex digits, or decodes to `%`, is refused: the
/// second decoding a backend might do must not change anything); control characters and
/// non-UTF-8 are refused; `\` is a separator; empty and `.` segments vanish; `..` pops a segment
/// and is refused above the root; a segment that is only dots and spaces before any `;`
/// parameter (`...`, `..;x`, `. `) is ambiguous and refused. The forwarded path is those
/// segments; the matching form drops `;` parameters, trailing dots and spaces, and letter case,
/// and a segment left empty by that (`;jsessionid=1`) does not count, because a backend that
/// drops parameters and merges slashes serves `/;x/secure` as `/secure`.
fn path_model(raw: &str) -> Option<(String, String)> {
    let rest = raw.strip_prefix('/')?;
    let _ = rest;
    let bytes = raw.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            let b = u8::from_str_radix(hex, 16).ok()?;
            if b == b'%' {
                return None;
            }
            decoded.push(b);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(decoded).ok()?;
    if text.chars().any(|c| c.is_ascii_control()) {
        return None;
    }
    let text = text.replace('\\', "/");
    let mut stack: Vec<&str> = Vec::new();
    for seg in text.split('/') {
        let bare = seg.split(';').next().unwrap();
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            _ if !bare.is_empty() && bare.chars().all(|c| c == '.' || c == ' ') => return None,
            _ => stack.push(seg),
        }
    }
    let trailing = text.ends_with('/') || text.ends_with("/.");
    let mut forward = format!("/{}", stack.join("/"));
    if trailing && !stack.is_empty() {
        forward.push('/');
    }
    let canonical: String = stack
        .iter()
        .map(|s| {
            s.split(';')
                .next()
                .unwrap()
                .trim_end_matches(['.', ' '])
                .to_lowercase()
        })
        .filter(|s| !s.is_empty())
        .map(|s| format!("/{s}"))
        .collect();
    Some((forward, canonical))
}

const PATH_TOKENS: &[&str] = &[
    "/", "/", "/", "a", "B", "sec", ".", "..", ".", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", ";",
    ";x", "%3b", "%25", "%", "%4", "%zz", "%41", " ", "%20", "%00", "%0a", "\u{7f}", "é", "%C3%A9",
    "%ff", "?", "#", "..;", "...", "~", "+", "İ",
];

#[test]
fn path_normaliser_agrees_with_the_model() {
    let mut g = Gen(0x5EED_0003);
    for case in 0..cases(100_000) {
        let mut raw = String::new();
        if g.below(20) != 0 {
            raw.push('/');
        }
        for _ in 0..g.below(10) {
            let token: &&str = g.pick(PATH_TOKENS);
            raw.push_str(token);
        }
        let actual = normalize(&raw).ok().map(|p| {
            let decoded = percent_encoding::percent_decode_str(&p.forward)
                .decode_utf8()
                .expect("forward decodes")
                .into_owned();
            assert!(
                p.forward
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#'),
                "case {case}: {raw:?} forwarded as {:?}",
                p.forward
            );
            (decoded, p.canonical)
        });
        assert_eq!(actual, path_model(&raw), "case {case}: {raw:?}");
    }
}

/// The case that made the model and the code disagree: a segment that is only a `;`
/// parameter must not put an empty segment into the matching form, or `/;x/secure` would
/// miss the location `/secure` that a backend serving `/secure` for it is protected by.
#[test]
fn parameter_only_segment_does_not_hide_a_location() {
    let p = normalize("/;x/secure").unwrap();
    assert_eq!(p.canonical, "/secure");
    assert_eq!(p.forward, "/;x/secure");
    assert_eq!(normalize("/;jsessionid=1").unwrap().canonical, "");
    assert_eq!(normalize("/a/;b/;c/d;e").unwrap().canonical, "/a/d");
}
