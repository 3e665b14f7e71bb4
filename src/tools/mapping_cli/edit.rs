//! The mapping changes `certgate mapping` makes, applied to a document kept as written.
//!
//! Each change touches only its own entry (or key), so the rest of the file stays byte for byte
//! as it was. Nothing here decides whether the result is a valid configuration: the caller runs
//! the configuration loader on the edited text, exactly as `certgate check` does.

use std::path::Path;

use toml_edit::{DocumentMut, TableLike, Value};

use super::document::{
    self as doc, DocumentError, ListMut, MANY_TO_ONE, NewList, ONE_TO_ONE, RULES, ScopeRef,
};
use crate::identity::CertFacts;
use crate::mapping::one_to_one::decode_certificate_text;

/// Where a mapping's account password comes from (IIS keeps it, encrypted, in the mapping).
#[derive(Debug, Clone, Default)]
pub enum Password {
    /// No password (enough unless the scope verifies credentials against AD).
    #[default]
    None,
    /// `password_env = "VAR"`.
    Env(String),
    /// `password_file = "FILE"`.
    File(String),
}

/// Which one-to-one entries a command is about.
#[derive(Debug, Clone)]
pub enum Select {
    /// The entry mapping this certificate (SHA-256 of its DER): IIS's collection key.
    Certificate([u8; 32]),
    /// Entries for this account, compared case-insensitively as Windows does.
    User(String),
}

/// Which rule of a many-to-one mapping.
#[derive(Debug, Clone)]
pub enum RuleSelect {
    /// Position in the mapping's rules.
    Index(usize),
    /// The rule with these values (field and sub-field case-insensitively).
    Values {
        /// `Subject` or `Issuer`.
        field: String,
        /// `CN`, `OU`, ...
        sub_field: String,
        /// The criteria, exactly.
        criteria: String,
    },
}

/// One change.
#[derive(Debug, Clone)]
pub enum Edit {
    /// `<oneToOneMappings><add>`.
    AddOneToOne {
        /// Account.
        user: String,
        /// The certificate, already parsed.
        cert: Box<CertFacts>,
        /// Account password source.
        password: Password,
        /// `enabled`.
        enabled: bool,
    },
    /// `<oneToOneMappings><remove>`.
    RemoveOneToOne(Select),
    /// `enabled` of a one-to-one entry.
    EnableOneToOne(Select, bool),
    /// `<manyToOneMappings><add>`.
    AddManyToOne {
        /// Unique name.
        name: String,
        /// Account.
        user: String,
        /// `Allow` or `Deny`.
        permission: String,
        /// Free text.
        description: Option<String>,
        /// Account password source.
        password: Password,
        /// `enabled`.
        enabled: bool,
        /// Position (file order is priority); the end when `None`.
        at_index: Option<usize>,
    },
    /// `<manyToOneMappings><remove>`.
    RemoveManyToOne(String),
    /// `enabled` of a many-to-one mapping.
    EnableManyToOne(String, bool),
    /// `<rules><add>`.
    AddRule {
        /// The mapping's name.
        mapping: String,
        /// `Subject` or `Issuer`.
        field: String,
        /// `CN`, `OU`, ...
        sub_field: String,
        /// `*` matches any run of characters.
        criteria: String,
        /// `compare_case_sensitive`.
        case_sensitive: bool,
    },
    /// `<rules><remove>`.
    RemoveRule {
        /// The mapping's name.
        mapping: String,
        /// Which rule.
        which: RuleSelect,
    },
}

/// What an edit did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One line for the person who ran the command.
    pub summary: String,
    /// Things to know (a section created, a disabled mapper).
    pub notes: Vec<String>,
    /// False when the file already said this (nothing to write).
    pub changed: bool,
}

/// Applies `edit` to the scope; `base` resolves `certificate_file` values as the loader does.
pub fn apply(
    document: &mut DocumentMut,
    scope: &ScopeRef,
    edit: &Edit,
    base: &Path,
) -> Result<Outcome, DocumentError> {
    let mut out = Outcome {
        changed: true,
        ..Outcome::default()
    };
    let shape =
        |e: String| DocumentError::Shape(format!("{}.{}: {e}", scope.key_path(), doc::MAPPER));
    let where_ = scope.display_name();
    match edit {
        Edit::AddOneToOne {
            user,
            cert,
            password,
            enabled,
        } => {
            let mapper = doc::mapper_mut(document, scope, &mut out.notes)?;
            mapper_notes(
                mapper.as_like(),
                "one_to_one_certificate_mappings_enabled",
                &mut out.notes,
            );
            let mut list = mapper
                .list(ONE_TO_ONE, Some(NewList::Tables))
                .map_err(shape)?
                .ok_or_else(|| shape("cannot create the collection".into()))?;
            let mut fields = vec![
                ("user_name", Value::from(user.as_str())),
                ("certificate", Value::from(cert.base64_der())),
                ("enabled", Value::from(*enabled)),
            ];
            push_password(&mut fields, password);
            let comment = format!(
                "{}\nissuer {}; thumbprint {}",
                cert.subject,
                cert.issuer,
                cert.thumbprint()
            );
            list.insert(None, fields, &comment);
            out.summary = format!(
                "added one-to-one mapping {user} <- {} (thumbprint {}) to {where_}",
                cert.subject,
                cert.thumbprint()
            );
        }
        Edit::RemoveOneToOne(select) => {
            let mut list = one_to_one_list(document, scope, &mut out.notes)?;
            let index = select_one(&list, select, base, &where_)?;
            let user = list
                .entries()
                .get(index)
                .and_then(|e| doc::str_of(*e, "user_name"))
                .unwrap_or_default()
                .to_owned();
            list.remove(index);
            out.summary = format!("removed one-to-one mapping [{index}] ({user}) from {where_}");
        }
        Edit::EnableOneToOne(select, enabled) => {
            let list = one_to_one_list(document, scope, &mut out.notes)?;
            let index = select_one(&list, select, base, &where_)?;
            let entry = list.entries().get(index).map(|e| {
                (
                    doc::str_of(*e, "user_name").unwrap_or_default().to_owned(),
                    doc::bool_of(*e, "enabled").unwrap_or(true),
                )
            });
            let (user, current) = entry.unwrap_or_default();
            out.changed = current != *enabled;
            if out.changed
                && let Some(mut entry) = list.entry_mut(index)
            {
                entry.set_bool("enabled", *enabled);
            }
            out.summary = format!(
                "one-to-one mapping [{index}] ({user}) in {where_} {} {}",
                if out.changed { "is now" } else { "was already" },
                if *enabled { "enabled" } else { "disabled" }
            );
        }
        Edit::AddManyToOne {
            name,
            user,
            permission,
            description,
            password,
            enabled,
            at_index,
        } => {
            let mapper = doc::mapper_mut(document, scope, &mut out.notes)?;
            mapper_notes(
                mapper.as_like(),
                "many_to_one_certificate_mappings_enabled",
                &mut out.notes,
            );
            let mut list = mapper
                .list(MANY_TO_ONE, Some(NewList::Tables))
                .map_err(shape)?
                .ok_or_else(|| shape("cannot create the collection".into()))?;
            let mut fields = vec![("name", Value::from(name.as_str()))];
            if let Some(d) = description {
                fields.push(("description", Value::from(d.as_str())));
            }
            fields.push(("enabled", Value::from(*enabled)));
            fields.push(("permission_mode", Value::from(permission.as_str())));
            fields.push(("user_name", Value::from(user.as_str())));
            push_password(&mut fields, password);
            list.insert(*at_index, fields, "");
            out.summary =
                format!("added many-to-one mapping `{name}` ({permission} -> {user}) to {where_}");
            out.notes.push(format!(
                "a mapping with no rules never matches; add them with `certgate mapping add-rule --mapping '{name}' ...`"
            ));
        }
        Edit::RemoveManyToOne(name) => {
            let mut list = many_to_one_list(document, scope, &mut out.notes)?;
            let index = find_named(&list, name, &where_)?;
            list.remove(index);
            out.summary = format!("removed many-to-one mapping `{name}` from {where_}");
        }
        Edit::EnableManyToOne(name, enabled) => {
            let list = many_to_one_list(document, scope, &mut out.notes)?;
            let index = find_named(&list, name, &where_)?;
            let current = list
                .entries()
                .get(index)
                .and_then(|e| doc::bool_of(*e, "enabled"))
                .unwrap_or(true);
            out.changed = current != *enabled;
            if out.changed
                && let Some(mut entry) = list.entry_mut(index)
            {
                entry.set_bool("enabled", *enabled);
            }
            out.summary = format!(
                "many-to-one mapping `{name}` in {where_} {} {}",
                if out.changed { "is now" } else { "was already" },
                if *enabled { "enabled" } else { "disabled" }
            );
        }
        Edit::AddRule {
            mapping,
            field,
            sub_field,
            criteria,
            case_sensitive,
        } => {
            let list = many_to_one_list(document, scope, &mut out.notes)?;
            let index = find_named(&list, mapping, &where_)?;
            let entry = list
                .entry_mut(index)
                .ok_or_else(|| shape(format!("many_to_one_mappings[{index}] is not a table")))?;
            let mut rules = entry
                .list(RULES, Some(NewList::Inline))
                .map_err(shape)?
                .ok_or_else(|| shape("cannot create the rules".into()))?;
            let fields = vec![
                ("certificate_field", Value::from(field.as_str())),
                ("certificate_sub_field", Value::from(sub_field.as_str())),
                ("match_criteria", Value::from(criteria.as_str())),
                ("compare_case_sensitive", Value::from(*case_sensitive)),
            ];
            rules.insert(None, fields, "");
            out.summary = format!(
                "added rule {field} {sub_field} = \"{criteria}\"{} to many-to-one mapping `{mapping}` in {where_}",
                if *case_sensitive {
                    ""
                } else {
                    " (case-insensitive)"
                }
            );
        }
        Edit::RemoveRule { mapping, which } => {
            let list = many_to_one_list(document, scope, &mut out.notes)?;
            let index = find_named(&list, mapping, &where_)?;
            let entry = list
                .entry_mut(index)
                .ok_or_else(|| shape(format!("many_to_one_mappings[{index}] is not a table")))?;
            let mut rules = entry.list(RULES, None).map_err(shape)?.ok_or_else(|| {
                DocumentError::Shape(format!("many-to-one mapping `{mapping}` has no rules"))
            })?;
            let rule = find_rule(&rules, which, mapping)?;
            rules.remove(rule);
            out.summary =
                format!("removed rule [{rule}] from many-to-one mapping `{mapping}` in {where_}");
        }
    }
    Ok(out)
}

fn push_password(fields: &mut Vec<(&str, Value)>, password: &Password) {
    match password {
        Password::None => {}
        Password::Env(v) => fields.push(("password_env", Value::from(v.as_str()))),
        Password::File(f) => fields.push(("password_file", Value::from(f.as_str()))),
    }
}

/// Tells the person when what they add will not be used yet.
pub(super) fn mapper_notes(mapper: &dyn TableLike, family: &str, notes: &mut Vec<String>) {
    if doc::bool_of(mapper, "enabled") != Some(true) {
        notes.push(
            "the mapper section is not enabled (enabled = true) in this scope: the mapping is not \
             used until it is"
                .to_owned(),
        );
    }
    if doc::bool_of(mapper, family) == Some(false) {
        notes.push(format!(
            "{family} = false in this scope: the mapping is not used until it is true"
        ));
    }
}

fn one_to_one_list<'a>(
    document: &'a mut DocumentMut,
    scope: &ScopeRef,
    notes: &mut Vec<String>,
) -> Result<ListMut<'a>, DocumentError> {
    existing_list(document, scope, ONE_TO_ONE, "one-to-one mappings", notes)
}

fn many_to_one_list<'a>(
    document: &'a mut DocumentMut,
    scope: &ScopeRef,
    notes: &mut Vec<String>,
) -> Result<ListMut<'a>, DocumentError> {
    existing_list(document, scope, MANY_TO_ONE, "many-to-one mappings", notes)
}

fn existing_list<'a>(
    document: &'a mut DocumentMut,
    scope: &ScopeRef,
    key: &str,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<ListMut<'a>, DocumentError> {
    let none = || DocumentError::Shape(format!("{} has no {what}", scope.display_name()));
    if doc::mapper(document, scope).is_none() {
        return Err(none());
    }
    doc::mapper_mut(document, scope, notes)?
        .list(key, None)
        .map_err(|e| DocumentError::Shape(format!("{}: {e}", scope.key_path())))?
        .ok_or_else(none)
}

/// The SHA-256 of an entry's certificate, read as the loader reads it.
fn entry_digest(entry: &dyn TableLike, base: &Path) -> Option<[u8; 32]> {
    let der = match (
        doc::str_of(entry, "certificate"),
        doc::str_of(entry, "certificate_file"),
    ) {
        (Some(text), _) => decode_certificate_text(text).ok()?,
        (None, Some(file)) => {
            let path = base.join(file);
            crate::tls::load_certificates(&path)
                .ok()?
                .into_iter()
                .next()?
                .as_ref()
                .to_vec()
        }
        (None, None) => return None,
    };
    Some(crate::identity::sha256(&der))
}

/// Whether an inline entry is the one `select` names.
fn selects(entry: &dyn TableLike, select: &Select, base: &Path) -> bool {
    match select {
        Select::Certificate(digest) => entry_digest(entry, base).as_ref() == Some(digest),
        Select::User(user) => {
            doc::str_of(entry, "user_name").is_some_and(|u| u.eq_ignore_ascii_case(user))
        }
    }
}

/// How many inline one-to-one entries of the scope `select` names (the mapping table's rows
/// are matched by [`super::table`]).
pub fn inline_matches(
    document: &DocumentMut,
    scope: &ScopeRef,
    select: &Select,
    base: &Path,
) -> usize {
    doc::mapper(document, scope).map_or(0, |mapper| {
        doc::entries(mapper, ONE_TO_ONE)
            .into_iter()
            .filter(|e| selects(*e, select, base))
            .count()
    })
}

/// The one entry `select` names; several entries for one account must be told apart by
/// certificate.
fn select_one(
    list: &ListMut<'_>,
    select: &Select,
    base: &Path,
    where_: &str,
) -> Result<usize, DocumentError> {
    let entries = list.entries();
    let matches: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| selects(**e, select, base))
        .map(|(i, _)| i)
        .collect();
    match (matches.as_slice(), select) {
        ([one], _) => Ok(*one),
        ([], Select::Certificate(_)) => Err(DocumentError::Shape(format!(
            "no one-to-one mapping in {where_} maps this certificate"
        ))),
        ([], Select::User(user)) => Err(DocumentError::Shape(format!(
            "no one-to-one mapping in {where_} is for `{user}`"
        ))),
        (several, _) => Err(DocumentError::Shape(format!(
            "{} one-to-one mappings in {where_} match (entries {}); name the certificate with \
             --cert",
            several.len(),
            several
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A many-to-one mapping by name, case-insensitively as IIS compares collection keys.
fn find_named(list: &ListMut<'_>, name: &str, where_: &str) -> Result<usize, DocumentError> {
    list.entries()
        .iter()
        .position(|e| doc::str_of(*e, "name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            let names: Vec<String> = list
                .entries()
                .iter()
                .filter_map(|e| doc::str_of(*e, "name"))
                .map(|n| format!("`{n}`"))
                .collect();
            DocumentError::Shape(format!(
                "no many-to-one mapping in {where_} is named `{name}` (mappings: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
}

fn find_rule(
    rules: &ListMut<'_>,
    which: &RuleSelect,
    mapping: &str,
) -> Result<usize, DocumentError> {
    let entries = rules.entries();
    let found = match which {
        RuleSelect::Index(i) => (*i < entries.len()).then_some(*i),
        RuleSelect::Values {
            field,
            sub_field,
            criteria,
        } => entries.iter().position(|r| {
            doc::str_of(*r, "certificate_field").is_some_and(|f| f.eq_ignore_ascii_case(field))
                && doc::str_of(*r, "certificate_sub_field")
                    .is_some_and(|s| s.eq_ignore_ascii_case(sub_field))
                && doc::str_of(*r, "match_criteria") == Some(criteria.as_str())
        }),
    };
    found.ok_or_else(|| {
        DocumentError::Shape(format!(
            "many-to-one mapping `{mapping}` has no such rule ({} rule(s); `certgate mapping list` \
             shows them)",
            entries.len()
        ))
    })
}
