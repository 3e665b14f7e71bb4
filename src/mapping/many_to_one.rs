//! IIS many-to-one certificate mapping: rules on Subject/Issuer attributes, compiled once at
//! config load and evaluated in file order, first match wins.
//!
//! IIS leaves much of the matcher undocumented (reference §2.4). Where it does, this module
//! follows it; where it does not, it takes the reading that denies access when in doubt:
//!
//! - a criterion without `*` is an **exact** match, not a substring match [OPEN in IIS];
//! - `*` matches any run of characters, including none; there is no `?` and no escaping, and the
//!   pattern is anchored to the whole value;
//! - a sub-field that occurs several times (two `OU`s) matches if **any** value matches
//!   [OPEN in IIS]. Neither reading fails closed for both permission modes: "all values" would let
//!   a certificate dodge a Deny mapping by carrying one extra `OU`, "any" lets an extra `OU`
//!   satisfy an Allow rule. "Any" follows reference §2.4, and keeps Deny mappings (which come
//!   first) effective;
//! - a sub-field the certificate lacks fails the rule;
//! - a mapping with no rules never matches [OPEN in IIS], instead of matching everything.
//!
//! Values are the decoded strings from [`Dn`], never raw DER, so a BMPString `OU` compares equal
//! to the same text in UTF8String.

use std::fmt;

use serde::Serialize;

use crate::config::raw::{RawManyToOne, RawRule};
use crate::identity::CertFacts;
use crate::identity::dn::{Dn, label_for_oid, oid_for_label};

/// A configuration problem, named by its full TOML key so the loader can report every problem of
/// a file at once and the user can find each one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct FieldError {
    /// Full TOML key path, e.g.
    /// `site[0].iis_client_certificate_mapping_authentication.many_to_one_mappings[2].rules[1].certificate_sub_field`.
    pub key: String,
    /// What is wrong, in words an IIS administrator understands.
    pub reason: String,
}

impl FieldError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// IIS `permissionMode`: what a match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Permission {
    /// Authenticate the client as the mapping's user.
    Allow,
    /// Refuse authentication (IIS 403.12 "Mapper denied access"). Deny is first-match, not
    /// deny-overrides: a Deny mapping placed after a matching Allow mapping is never reached.
    Deny,
}

impl Permission {
    /// Parses the IIS enum name, case-insensitively, as the IIS configuration system does.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("Allow") {
            Some(Self::Allow)
        } else if s.eq_ignore_ascii_case("Deny") {
            Some(Self::Deny)
        } else {
            None
        }
    }

    /// The IIS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "Allow",
            Self::Deny => "Deny",
        }
    }
}

/// IIS `certificateField`: which name of the certificate a rule reads. IIS knows only these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum CertificateField {
    /// The subject DN.
    Subject,
    /// The issuer DN.
    Issuer,
}

impl CertificateField {
    /// Parses the IIS enum name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("Subject") {
            Some(Self::Subject)
        } else if s.eq_ignore_ascii_case("Issuer") {
            Some(Self::Issuer)
        } else {
            None
        }
    }

    /// The IIS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "Subject",
            Self::Issuer => "Issuer",
        }
    }

    fn dn(self, facts: &CertFacts) -> &Dn {
        match self {
            Self::Subject => &facts.subject,
            Self::Issuer => &facts.issuer,
        }
    }
}

impl fmt::Display for CertificateField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `<rules><add>`: a single attribute of Subject or Issuer compared against a pattern.
#[derive(Debug, Clone)]
pub struct Rule {
    field: CertificateField,
    sub_field: String,
    oid: String,
    criteria: String,
    case_sensitive: bool,
    pattern: Pattern,
}

impl Rule {
    /// Which DN the rule reads.
    pub fn field(&self) -> CertificateField {
        self.field
    }

    /// The sub-field as written in the configuration (`OU`, `s`, `2.5.4.11`).
    pub fn sub_field(&self) -> &str {
        &self.sub_field
    }

    /// Dotted OID of the sub-field.
    pub fn oid(&self) -> &str {
        &self.oid
    }

    /// The criterion as written.
    pub fn criteria(&self) -> &str {
        &self.criteria
    }

    /// IIS `compareCaseSensitive`.
    pub fn case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// True if any value of the sub-field matches; false if none does or the sub-field is absent.
    pub fn matches(&self, facts: &CertFacts) -> bool {
        self.field
            .dn(facts)
            .values(&self.oid)
            .any(|v| self.pattern.matches(v))
    }

    fn trace(&self, facts: &CertFacts) -> RuleTrace {
        let values: Vec<String> = self
            .field
            .dn(facts)
            .values(&self.oid)
            .map(str::to_owned)
            .collect();
        let matched = values.iter().any(|v| self.pattern.matches(v));
        let label = label_for_oid(&self.oid);
        let case = if self.case_sensitive {
            ""
        } else {
            " (case-insensitive)"
        };
        let reason = match (matched, values.as_slice()) {
            (_, []) => format!("no {label} in {}", self.field),
            (true, _) => {
                let hit = values
                    .iter()
                    .find(|v| self.pattern.matches(v))
                    .map_or("", String::as_str);
                format!("value '{hit}' matches '{}'{case}", self.criteria)
            }
            (false, [one]) => format!("value '{one}' does not match '{}'{case}", self.criteria),
            (false, many) => format!(
                "none of the values {} matches '{}'{case}",
                many.iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.criteria
            ),
        };
        RuleTrace {
            certificate_field: self.field,
            certificate_sub_field: self.sub_field.clone(),
            oid: self.oid.clone(),
            match_criteria: self.criteria.clone(),
            compare_case_sensitive: self.case_sensitive,
            values,
            matched,
            reason,
        }
    }
}

/// One compiled `<manyToOneMappings><add>`.
#[derive(Debug, Clone)]
pub struct ManyToOneMapping {
    key_path: String,
    name: String,
    description: Option<String>,
    enabled: bool,
    permission: Permission,
    user_name: String,
    password_env: Option<String>,
    password_file: Option<String>,
    rules: Vec<Rule>,
    warnings: Vec<String>,
}

impl ManyToOneMapping {
    /// The unique mapping name; logs and access records carry it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Free text from the configuration.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// IIS `enabled`; a disabled mapping is skipped.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Allow or Deny.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The Windows account matching certificates map to.
    pub fn user_name(&self) -> &str {
        &self.user_name
    }

    /// Environment variable holding the account password, passed through unvalidated for the
    /// credential check.
    pub fn password_env(&self) -> Option<&str> {
        self.password_env.as_deref()
    }

    /// File holding the account password, passed through unvalidated.
    pub fn password_file(&self) -> Option<&str> {
        self.password_file.as_deref()
    }

    /// The rules, all of which must match.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The TOML key path this mapping was compiled from.
    pub fn key_path(&self) -> &str {
        &self.key_path
    }

    /// Things that are legal but probably not what the author meant (a mapping without rules,
    /// duplicate rules), each prefixed with the key path, for the loader to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the mapping can match at all: enabled and with at least one rule.
    pub fn is_live(&self) -> bool {
        self.enabled && !self.rules.is_empty()
    }

    /// True if the mapping is live and every rule matches.
    pub fn matches(&self, facts: &CertFacts) -> bool {
        self.is_live() && self.rules.iter().all(|r| r.matches(facts))
    }
}

/// Compiles one mapping. `key_path` is the TOML key of the mapping itself, e.g.
/// `site[0].iis_client_certificate_mapping_authentication.many_to_one_mappings[2]`; every error
/// carries the key of the offending field below it, and every problem is reported, not just the
/// first.
pub fn compile(raw: &RawManyToOne, key_path: &str) -> Result<ManyToOneMapping, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if raw.name.trim().is_empty() {
        errors.push(FieldError::new(
            format!("{key_path}.name"),
            "must not be empty (IIS collection key)",
        ));
    }
    if raw.user_name.trim().is_empty() {
        errors.push(FieldError::new(
            format!("{key_path}.user_name"),
            "must not be empty (IIS nonEmptyString)",
        ));
    }
    let permission = match raw.permission_mode.as_deref() {
        None => Permission::Allow,
        Some(s) => Permission::parse(s).unwrap_or_else(|| {
            errors.push(FieldError::new(
                format!("{key_path}.permission_mode"),
                format!("'{s}' is not a permission mode; expected 'Allow' or 'Deny'"),
            ));
            Permission::Allow
        }),
    };
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, raw_rule) in raw.rules.iter().enumerate() {
        match compile_rule(raw_rule, &format!("{key_path}.rules[{i}]")) {
            Ok(rule) => rules.push(rule),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rules.is_empty() {
        warnings.push(format!(
            "{key_path}: mapping '{}' has no rules and never matches",
            raw.name
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let duplicate = rules[..i].iter().any(|earlier| {
            earlier.field == rule.field
                && earlier.oid == rule.oid
                && earlier.criteria == rule.criteria
                && earlier.case_sensitive == rule.case_sensitive
        });
        if duplicate {
            warnings.push(format!(
                "{key_path}.rules[{i}]: duplicates an earlier rule (IIS rejects duplicate \
                 rules with 500.19 0x800700b7)"
            ));
        }
        if rule.criteria.is_empty() {
            warnings.push(format!(
                "{key_path}.rules[{i}].match_criteria: empty criterion matches only an empty value"
            ));
        }
    }
    Ok(ManyToOneMapping {
        key_path: key_path.to_owned(),
        name: raw.name.clone(),
        description: raw.description.clone(),
        enabled: raw.enabled.unwrap_or(true),
        permission,
        user_name: raw.user_name.clone(),
        password_env: raw.password_env.clone(),
        password_file: raw.password_file.clone(),
        rules,
        warnings,
    })
}

fn compile_rule(raw: &RawRule, key_path: &str) -> Result<Rule, Vec<FieldError>> {
    let mut errors = Vec::new();
    let field = CertificateField::parse(&raw.certificate_field);
    if field.is_none() {
        errors.push(FieldError::new(
            format!("{key_path}.certificate_field"),
            format!(
                "'{}' is not a certificate field; IIS knows only 'Subject' and 'Issuer'",
                raw.certificate_field
            ),
        ));
    }
    let oid = oid_for_label(&raw.certificate_sub_field);
    if oid.is_none() {
        errors.push(FieldError::new(
            format!("{key_path}.certificate_sub_field"),
            format!(
                "'{}' is not a known sub-field; use CN, OU, O, L, S, C, E, DC, GN, SN, T, I \
                 or a dotted OID",
                raw.certificate_sub_field
            ),
        ));
    }
    match (field, oid) {
        (Some(field), Some(oid)) => {
            let case_sensitive = raw.compare_case_sensitive.unwrap_or(true);
            Ok(Rule {
                field,
                sub_field: raw.certificate_sub_field.clone(),
                oid,
                criteria: raw.match_criteria.clone(),
                case_sensitive,
                pattern: Pattern::new(&raw.match_criteria, case_sensitive),
            })
        }
        _ => Err(errors),
    }
}

/// The many-to-one mappings of one scope, in file order, which is IIS priority order.
#[derive(Debug, Clone, Default)]
pub struct ManyToOneSet {
    mappings: Vec<ManyToOneMapping>,
}

impl ManyToOneSet {
    /// Compiles a whole `many_to_one_mappings` array. `key_path` is the key of the array, e.g.
    /// `site[0].iis_client_certificate_mapping_authentication.many_to_one_mappings`. Besides the
    /// per-mapping checks this rejects duplicate names, compared case-insensitively because IIS
    /// collection keys are (IIS: 500.19 0x800700b7).
    pub fn compile(raw: &[RawManyToOne], key_path: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut mappings = Vec::with_capacity(raw.len());
        for (i, raw_mapping) in raw.iter().enumerate() {
            let item_key = format!("{key_path}[{i}]");
            let duplicate_of = raw[..i].iter().position(|earlier| {
                !raw_mapping.name.is_empty() && fold_eq(&earlier.name, &raw_mapping.name)
            });
            if let Some(first) = duplicate_of {
                errors.push(FieldError::new(
                    format!("{item_key}.name"),
                    format!(
                        "duplicate mapping name '{}' (first used at {key_path}[{first}])",
                        raw_mapping.name
                    ),
                ));
            }
            match compile(raw_mapping, &item_key) {
                Ok(m) => mappings.push(m),
                Err(mut errs) => errors.append(&mut errs),
            }
        }
        if errors.is_empty() {
            Ok(Self { mappings })
        } else {
            Err(errors)
        }
    }

    /// Builds a set from mappings already compiled, keeping their order.
    pub fn new(mappings: Vec<ManyToOneMapping>) -> Self {
        Self { mappings }
    }

    /// The mappings in priority order.
    pub fn mappings(&self) -> &[ManyToOneMapping] {
        &self.mappings
    }

    /// Number of mappings, live or not.
    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    /// True if there are no mappings at all.
    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// Every warning of every mapping, in order.
    pub fn warnings(&self) -> Vec<String> {
        self.mappings
            .iter()
            .flat_map(|m| m.warnings.iter().cloned())
            .collect()
    }

    /// The first live mapping whose rules all match. Its [`Permission`] decides the outcome;
    /// later mappings are not consulted, so a Deny must come before the Allow it narrows.
    pub fn first_match(&self, facts: &CertFacts) -> Option<&ManyToOneMapping> {
        self.mappings.iter().find(|m| m.matches(facts))
    }

    /// Evaluates every mapping and every rule without short-circuiting, for `certgate explain`.
    /// Exactly one trace (or none) has `selected` set: the mapping [`Self::first_match`] returns.
    pub fn explain(&self, facts: &CertFacts) -> Vec<MappingTrace> {
        let mut selected_seen = false;
        self.mappings
            .iter()
            .enumerate()
            .map(|(index, m)| {
                let rules: Vec<RuleTrace> = m.rules.iter().map(|r| r.trace(facts)).collect();
                let skipped = if !m.enabled {
                    Some(SkipReason::Disabled)
                } else if m.rules.is_empty() {
                    Some(SkipReason::NoRules)
                } else {
                    None
                };
                let all_rules_match = !rules.is_empty() && rules.iter().all(|r| r.matched);
                let selected = !selected_seen && skipped.is_none() && all_rules_match;
                selected_seen |= selected;
                MappingTrace {
                    index,
                    name: m.name.clone(),
                    description: m.description.clone(),
                    permission: m.permission,
                    user_name: m.user_name.clone(),
                    skipped,
                    all_rules_match,
                    selected,
                    rules,
                }
            })
            .collect()
    }
}

/// Why a mapping was not evaluated for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// `enabled = false`.
    Disabled,
    /// The mapping has no rules, which never matches.
    NoRules,
}

/// How one mapping fared against a certificate.
#[derive(Debug, Clone, Serialize)]
pub struct MappingTrace {
    /// Position in file order (priority).
    pub index: usize,
    /// Mapping name.
    pub name: String,
    /// Mapping description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Allow or Deny.
    pub permission: Permission,
    /// Account the mapping maps to.
    pub user_name: String,
    /// Set when the mapping cannot take part in the decision; its rules are still traced so a
    /// disabled mapping can be checked before it is switched on.
    pub skipped: Option<SkipReason>,
    /// Every rule matched (false when there are no rules).
    pub all_rules_match: bool,
    /// This is the mapping that decides: the first live one whose rules all match.
    pub selected: bool,
    /// One entry per rule, in order.
    pub rules: Vec<RuleTrace>,
}

/// How one rule fared against a certificate.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    /// Subject or Issuer.
    pub certificate_field: CertificateField,
    /// Sub-field as written.
    pub certificate_sub_field: String,
    /// Dotted OID of the sub-field.
    pub oid: String,
    /// Criterion as written.
    pub match_criteria: String,
    /// Whether the comparison is case-sensitive.
    pub compare_case_sensitive: bool,
    /// Every value the certificate carries for the sub-field, in DER order.
    pub values: Vec<String>,
    /// Whether any value matched.
    pub matched: bool,
    /// Human-readable explanation, e.g. `value 'Sales' does not match 'Security'`.
    pub reason: String,
}

/// A `*` glob split into literal segments at compile time, so matching walks the value once per
/// segment and never allocates: case folding is applied character by character on the fly.
#[derive(Debug, Clone)]
struct Pattern {
    /// Literal pieces between `*`s, already folded when the comparison ignores case. A pattern
    /// without `*` has exactly one segment and is an exact match.
    segments: Vec<String>,
    case_sensitive: bool,
}

impl Pattern {
    fn new(criteria: &str, case_sensitive: bool) -> Self {
        let segments = criteria
            .split('*')
            .map(|s| {
                if case_sensitive {
                    s.to_owned()
                } else {
                    s.chars().map(fold_char).collect()
                }
            })
            .collect();
        Self {
            segments,
            case_sensitive,
        }
    }

    fn matches(&self, value: &str) -> bool {
        let fold: fn(char) -> char = if self.case_sensitive {
            identity
        } else {
            fold_char
        };
        let (first, rest) = match self.segments.split_first() {
            Some(split) => split,
            None => return value.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            // No `*`: exact match.
            return prefix_len(value, first, fold) == Some(value.len());
        };
        let Some(head) = prefix_len(value, first, fold) else {
            return false;
        };
        let Some(tail) = suffix_start(value, last, fold) else {
            return false;
        };
        // The prefix and the suffix must not overlap: "ab*ba" does not match "aba".
        if tail < head {
            return false;
        }
        let mut window = &value[head..tail];
        for segment in middle {
            match find(window, segment, fold) {
                Some(end) => window = &window[end..],
                None => return false,
            }
        }
        true
    }
}

fn identity(c: char) -> char {
    c
}

/// Unicode simple case folding, approximated by the single-character lowercase mapping.
/// Characters whose lowercase form is several characters (`İ`) stay as they are, which is what
/// simple folding does for them; final sigma folds with sigma. Working per character keeps byte
/// offsets into the original value valid and avoids allocating a folded copy per connection.
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == 'ς' {
        return 'σ';
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn fold_eq(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// If `value` starts with `segment` (after folding), the byte length of that prefix in `value`.
fn prefix_len(value: &str, segment: &str, fold: fn(char) -> char) -> Option<usize> {
    let mut chars = value.char_indices();
    for want in segment.chars() {
        let (_, got) = chars.next()?;
        if fold(got) != want {
            return None;
        }
    }
    Some(chars.next().map_or(value.len(), |(i, _)| i))
}

/// If `value` ends with `segment` (after folding), the byte offset where that suffix starts.
fn suffix_start(value: &str, segment: &str, fold: fn(char) -> char) -> Option<usize> {
    let mut start = value.len();
    let mut chars = value.char_indices().rev();
    for want in segment.chars().rev() {
        let (i, got) = chars.next()?;
        if fold(got) != want {
            return None;
        }
        start = i;
    }
    Some(start)
}

/// Leftmost occurrence of `segment` in `haystack`; returns the byte offset just past it. Leftmost
/// is enough for `*`-only globs: taking the earliest match leaves the most room for the rest.
fn find(haystack: &str, segment: &str, fold: fn(char) -> char) -> Option<usize> {
    if segment.is_empty() {
        return Some(0);
    }
    haystack
        .char_indices()
        .find_map(|(i, _)| prefix_len(&haystack[i..], segment, fold).map(|len| i + len))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use rcgen::string::BmpString;
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::config::raw::RawRule;

    const OU: &[u64] = &[2, 5, 4, 11];

    /// Builds a leaf with the given subject, signed by a CA with the given subject, and parses
    /// it. `DistinguishedName` is keyed by type, so a second `OU` is pushed as a custom type
    /// with the same OID.
    fn cert(subject: &[(DnType, DnValue)], issuer: &[(DnType, DnValue)]) -> CertFacts {
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

    fn dn(attrs: &[(DnType, DnValue)]) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        for (ty, value) in attrs {
            dn.push(ty.clone(), value.clone());
        }
        dn
    }

    fn utf8(s: &str) -> DnValue {
        DnValue::Utf8String(s.to_owned())
    }

    fn standard_cert() -> CertFacts {
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

    fn rule(field: &str, sub: &str, criteria: &str, case: Option<bool>) -> RawRule {
        RawRule {
            certificate_field: field.into(),
            certificate_sub_field: sub.into(),
            match_criteria: criteria.into(),
            compare_case_sensitive: case,
        }
    }

    fn mapping(name: &str, permission: Option<&str>, rules: Vec<RawRule>) -> RawManyToOne {
        RawManyToOne {
            name: name.into(),
            permission_mode: permission.map(str::to_owned),
            user_name: format!("CONTOSO\\{name}"),
            rules,
            ..RawManyToOne::default()
        }
    }

    #[test]
    fn pattern_table() {
        // (criteria, case_sensitive, value, expected)
        let cases: &[(&str, bool, &str, bool)] = &[
            ("Sales", true, "Sales", true),
            ("Sales", true, "Sales Team", false),
            ("Sales", true, "Big Sales", false),
            ("Sales", true, "sales", false),
            ("Sales", false, "sALES", true),
            ("Sal*", true, "Sales", true),
            ("Sal*", true, "Sal", true),
            ("Sal*", true, "xSales", false),
            ("*les", true, "Sales", true),
            ("*les", true, "les", true),
            ("*les", true, "Salesx", false),
            ("S*s", true, "Sales", true),
            ("S*s", true, "Ss", true),
            ("S*s", true, "S", false),
            ("ab*ba", true, "aba", false),
            ("ab*ba", true, "abba", true),
            ("*a*b*", true, "xxaxxbxx", true),
            ("*a*b*", true, "xxbxxaxx", false),
            ("a*b*c", true, "abc", true),
            ("a*b*c", true, "aXbYc", true),
            ("a*b*c", true, "acb", false),
            ("a**c", true, "ac", true),
            ("*", true, "anything", true),
            ("*", true, "", true),
            ("**", true, "", true),
            ("", true, "", true),
            ("", true, "x", false),
            ("x*", true, "", false),
            ("?", true, "a", false),
            ("?", true, "?", true),
            ("a.c", true, "abc", false),
            // Non-ASCII folding, both directions.
            ("Örebro", false, "örebro", true),
            ("örebro", false, "ÖREBRO", true),
            ("Örebro", true, "örebro", false),
            ("*BRO", false, "Örebro", true),
            ("ö*", false, "Ö", true),
            // Kelvin sign folds to a one-byte 'k'; offsets must stay on the original value.
            ("*k", false, "x\u{212A}", true),
            ("\u{212A}*", false, "kelvin", true),
            ("ΣΑΣ", false, "σας", true),
        ];
        for &(criteria, case, value, want) in cases {
            let p = Pattern::new(criteria, case);
            assert_eq!(
                p.matches(value),
                want,
                "criteria {criteria:?} case_sensitive={case} value {value:?}"
            );
        }
    }

    #[test]
    fn rule_table() {
        let facts = standard_cert();
        // (field, sub_field, criteria, case, expected)
        let cases: &[(&str, &str, &str, Option<bool>, bool)] = &[
            ("Subject", "CN", "alice", None, true),
            ("subject", "cn", "alice", None, true),
            ("Subject", "CN", "Alice", None, false),
            ("Subject", "CN", "Alice", Some(false), true),
            ("Subject", "CN", "Alice", Some(true), false),
            // Multi-valued: any value matches.
            ("Subject", "OU", "Sales", None, true),
            ("Subject", "OU", "Security", None, true),
            ("Subject", "OU", "Sec*", None, true),
            ("Subject", "OU", "Marketing", None, false),
            ("Subject", "2.5.4.11", "Security", None, true),
            // Missing sub-field fails, even against a lone `*`.
            ("Subject", "C", "*", None, false),
            ("Subject", "DC", "*", None, false),
            // Present but empty value: `*` and "" match it.
            ("Subject", "T", "*", None, true),
            ("Subject", "title", "", None, true),
            ("Subject", "L", "örebro", Some(false), true),
            ("Subject", "L", "örebro", None, false),
            ("Subject", "E", "*@contoso.test", None, true),
            ("Subject", "Email", "alice@*", None, true),
            ("Subject", "emailAddress", "bob@*", None, false),
            // Subject vs Issuer.
            ("Issuer", "CN", "Contoso Issuing CA", None, true),
            ("Subject", "CN", "Contoso Issuing CA", None, false),
            ("Issuer", "CN", "alice", None, false),
            ("Issuer", "O", "Contoso*", None, true),
            ("Subject", "O", "Contoso Ltd", None, false),
            ("Issuer", "C", "SE", None, true),
            ("Issuer", "S", "*", None, false),
        ];
        for &(field, sub, criteria, case, want) in cases {
            let compiled = compile_rule(&rule(field, sub, criteria, case), "r").unwrap();
            assert_eq!(
                compiled.matches(&facts),
                want,
                "{field}/{sub} ~ {criteria:?} case={case:?}"
            );
        }
    }

    #[test]
    fn bmp_string_values_are_compared_decoded() {
        let facts = cert(
            &[
                (DnType::CommonName, utf8("bob")),
                (
                    DnType::OrganizationalUnitName,
                    DnValue::BmpString(BmpString::from_utf16be(utf16be("Försäljning")).unwrap()),
                ),
            ],
            &[(DnType::CommonName, utf8("CA"))],
        );
        for (criteria, case, want) in [
            ("Försäljning", None, true),
            ("FÖRSÄLJNING", Some(false), true),
            ("FÖRSÄLJNING", None, false),
            ("F*ning", None, true),
        ] {
            let r = compile_rule(&rule("Subject", "OU", criteria, case), "r").unwrap();
            assert_eq!(r.matches(&facts), want, "{criteria}");
        }
    }

    fn utf16be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    #[test]
    fn rules_combine_with_and() {
        let facts = standard_cert();
        let both = mapping(
            "both",
            None,
            vec![
                rule("Issuer", "O", "Contoso Ltd", None),
                rule("Subject", "OU", "Sales", None),
            ],
        );
        assert!(compile(&both, "m").unwrap().matches(&facts));
        let one_fails = mapping(
            "one-fails",
            None,
            vec![
                rule("Issuer", "O", "Contoso Ltd", None),
                rule("Subject", "OU", "HR", None),
            ],
        );
        assert!(!compile(&one_fails, "m").unwrap().matches(&facts));
    }

    #[test]
    fn first_match_wins_in_file_order() {
        let facts = standard_cert();
        let set = ManyToOneSet::compile(
            &[
                mapping("hr", None, vec![rule("Subject", "OU", "HR", None)]),
                mapping(
                    "block-security",
                    Some("deny"),
                    vec![rule("Subject", "OU", "Sec*", None)],
                ),
                mapping(
                    "sales",
                    Some("Allow"),
                    vec![rule("Subject", "OU", "Sales", None)],
                ),
            ],
            "mappings",
        )
        .unwrap();
        let m = set.first_match(&facts).unwrap();
        assert_eq!(m.name(), "block-security");
        assert_eq!(m.permission(), Permission::Deny);

        // The same mappings with Allow first: Deny is not consulted (first match, not
        // deny-overrides).
        let set = ManyToOneSet::compile(
            &[
                mapping("sales", None, vec![rule("Subject", "OU", "Sales", None)]),
                mapping(
                    "block",
                    Some("Deny"),
                    vec![rule("Subject", "OU", "*", None)],
                ),
            ],
            "mappings",
        )
        .unwrap();
        assert_eq!(set.first_match(&facts).unwrap().name(), "sales");
        assert_eq!(
            set.first_match(&facts).unwrap().permission(),
            Permission::Allow
        );
    }

    #[test]
    fn disabled_and_ruleless_mappings_never_match() {
        let facts = standard_cert();
        let mut disabled = mapping("disabled", None, vec![rule("Subject", "CN", "*", None)]);
        disabled.enabled = Some(false);
        let empty = mapping("empty", None, vec![]);
        let fallback = mapping("fallback", None, vec![rule("Subject", "CN", "alice", None)]);
        let set =
            ManyToOneSet::compile(&[disabled, empty.clone(), fallback], "site[0].m2o").unwrap();
        assert_eq!(set.first_match(&facts).unwrap().name(), "fallback");

        let only_empty = ManyToOneSet::compile(&[empty], "site[0].m2o").unwrap();
        assert!(only_empty.first_match(&facts).is_none());
        assert_eq!(
            only_empty.warnings(),
            vec!["site[0].m2o[0]: mapping 'empty' has no rules and never matches".to_owned()]
        );
    }

    #[test]
    fn compile_reports_every_error_with_its_key() {
        let raw = RawManyToOne {
            name: String::new(),
            permission_mode: Some("Maybe".into()),
            user_name: " ".into(),
            rules: vec![
                rule("Subject", "CN", "ok", None),
                rule("Subject", "XX", "a", None),
                rule("SubjectAltName", "CN", "a", None),
                rule("Issuer", "O", "ok", None),
            ],
            ..RawManyToOne::default()
        };
        let base = "site[0].iis_client_certificate_mapping_authentication.many_to_one_mappings[2]";
        let errors = compile(&raw, base).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                format!("{base}.name"),
                format!("{base}.user_name"),
                format!("{base}.permission_mode"),
                format!("{base}.rules[1].certificate_sub_field"),
                format!("{base}.rules[2].certificate_field"),
            ]
        );
        assert!(errors[3].reason.contains("'XX'"), "{}", errors[3]);
    }

    #[test]
    fn known_sub_field_aliases_compile() {
        for sub in [
            "CN",
            "OU",
            "O",
            "L",
            "S",
            "ST",
            "C",
            "E",
            "Email",
            "emailAddress",
            "DC",
            "GN",
            "G",
            "givenName",
            "SN",
            "T",
            "title",
            "I",
            "initials",
            "1.3.6.1.4.1.311.60.2.1.3",
        ] {
            assert!(
                compile_rule(&rule("Issuer", sub, "x", None), "r").is_ok(),
                "{sub}"
            );
        }
    }

    #[test]
    fn duplicate_names_are_rejected_case_insensitively() {
        let rules = || vec![rule("Subject", "CN", "*", None)];
        let errors = ManyToOneSet::compile(
            &[
                mapping("Sales", None, rules()),
                mapping("SALES", None, rules()),
            ],
            "m",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "m[1].name");
    }

    #[test]
    fn explain_traces_every_rule() {
        let facts = standard_cert();
        let mut disabled = mapping("off", None, vec![rule("Subject", "CN", "alice", None)]);
        disabled.enabled = Some(false);
        let set = ManyToOneSet::compile(
            &[
                disabled,
                mapping("empty", None, vec![]),
                mapping(
                    "hr",
                    None,
                    vec![
                        rule("Subject", "OU", "HR", Some(false)),
                        rule("Subject", "C", "SE", None),
                        rule("Subject", "CN", "bob", None),
                    ],
                ),
                mapping("alice", None, vec![rule("Subject", "CN", "al*", None)]),
                mapping("alice-again", None, vec![rule("Subject", "CN", "*", None)]),
            ],
            "m",
        )
        .unwrap();
        let traces = set.explain(&facts);
        assert_eq!(traces.len(), 5);
        assert_eq!(traces[0].skipped, Some(SkipReason::Disabled));
        assert!(traces[0].all_rules_match && !traces[0].selected);
        assert_eq!(traces[1].skipped, Some(SkipReason::NoRules));
        assert!(!traces[1].all_rules_match);

        let hr = &traces[2].rules;
        assert_eq!(hr[0].values, vec!["Sales", "Security"]);
        assert_eq!(
            hr[0].reason,
            "none of the values 'Sales', 'Security' matches 'HR' (case-insensitive)"
        );
        assert_eq!(hr[1].reason, "no C in Subject");
        assert!(hr[1].values.is_empty());
        assert_eq!(hr[2].reason, "value 'alice' does not match 'bob'");
        assert!(!traces[2].selected);

        assert!(traces[3].selected);
        assert_eq!(traces[3].rules[0].reason, "value 'alice' matches 'al*'");
        assert!(traces[4].all_rules_match && !traces[4].selected);
        assert_eq!(
            set.first_match(&facts).map(ManyToOneMapping::name),
            Some("alice")
        );

        let json = serde_json::to_value(&traces).unwrap();
        assert_eq!(json[0]["skipped"], "disabled");
        assert_eq!(json[2]["rules"][1]["certificate_field"], "Subject");
        assert_eq!(json[3]["permission"], "Allow");
    }
}
