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

use crate::identity::CertFacts;
use crate::identity::dn::Dn;

mod compiler;
#[cfg(test)]
mod fixtures;
mod pattern;
pub mod raw;
mod trace;

pub use compiler::compile;
use pattern::Pattern;
pub use trace::{MappingTrace, RuleTrace, SkipReason};

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

/// The many-to-one mappings of one scope, in file order, which is IIS priority order.
#[derive(Debug, Clone, Default)]
pub struct ManyToOneSet {
    mappings: Vec<ManyToOneMapping>,
}

impl ManyToOneSet {
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use rcgen::string::BmpString;
    use rcgen::{DnType, DnValue};

    use super::compiler::compile_rule;
    use super::fixtures::*;
    use super::*;

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
}
