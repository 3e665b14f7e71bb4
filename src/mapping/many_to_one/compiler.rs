//! Compiling `[[...many_to_one_mappings]]` from TOML into matchable rules, reporting every
//! problem with its full key.

use super::pattern::{Pattern, fold_eq};
use super::raw::{RawManyToOne, RawRule};
use super::{CertificateField, FieldError, ManyToOneMapping, ManyToOneSet, Permission, Rule};
use crate::identity::dn::oid_for_label;

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

pub(super) fn compile_rule(raw: &RawRule, key_path: &str) -> Result<Rule, Vec<FieldError>> {
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::fixtures::*;
    use super::*;

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
}
