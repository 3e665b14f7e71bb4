//! What `certgate explain` shows of many-to-one matching: every mapping and every rule with the
//! certificate's values and why each matched or not.

use serde::Serialize;

use super::{CertificateField, ManyToOneSet, Permission, Rule};
use crate::identity::CertFacts;
use crate::identity::dn::label_for_oid;

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
impl Rule {
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

impl ManyToOneSet {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::fixtures::*;
    use super::*;
    use crate::mapping::many_to_one::ManyToOneMapping;

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
