//! One-to-one edits of a scope that keeps its mappings in a mapping table
//! (`one_to_one_mappings_file`, see [`crate::mapping::table`]).
//!
//! When the scope's mapper section names a table, `mapping add` appends a row to it, and
//! `mapping remove|enable|disable` change the row that maps the certificate (or account);
//! a mapping still written inline in the TOML is changed there, as before. The table is edited
//! as written ([`TableDocument`]), and the caller validates the result with the configuration
//! loader before replacing the file, exactly as for the TOML.

use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use super::document::{self as doc, DocumentError, ScopeRef};
use super::edit::{self, Edit, Password, Select};
use crate::mapping::one_to_one::decode_certificate_text;
use crate::mapping::table_edit::{NewRow, Record, TableDocument};

/// The mapper key naming the table.
pub const TABLE_KEY: &str = "one_to_one_mappings_file";

/// An edit of a mapping table, ready to validate and write.
#[derive(Debug)]
pub struct TableChange {
    /// The table's path, resolved as the loader resolves it.
    pub path: PathBuf,
    /// The table as read (the atomic write checks nobody changed it meanwhile).
    pub original: Vec<u8>,
    /// The edited table.
    pub text: String,
    /// One line for the person who ran the command.
    pub summary: String,
    /// False when the table already said this.
    pub changed: bool,
    /// Things to know (a disabled mapper or family).
    pub notes: Vec<String>,
}

/// The table the scope's own mapper section names, as written and resolved against `base`,
/// the configuration's directory (as the loader resolves it).
pub fn table_of(
    document: &DocumentMut,
    scope: &ScopeRef,
    base: &Path,
) -> Option<(String, PathBuf)> {
    let value = doc::str_of(doc::mapper(document, scope)?, TABLE_KEY)?.to_owned();
    let path = if Path::new(&value).is_absolute() {
        PathBuf::from(&value)
    } else {
        base.join(&value)
    };
    Some((value, path))
}

/// Reads and parses a table for editing or listing.
pub fn read(path: &Path) -> Result<(Vec<u8>, TableDocument), DocumentError> {
    let bytes = std::fs::read(path).map_err(|e| {
        DocumentError::Shape(format!(
            "{}: cannot read the mapping table: {e}",
            path.display()
        ))
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        DocumentError::Shape(format!(
            "{}: the mapping table is not UTF-8 text",
            path.display()
        ))
    })?;
    let table = TableDocument::parse(text)
        .map_err(|e| DocumentError::Shape(format!("{}: {e}", path.display())))?;
    Ok((bytes, table))
}

/// The SHA-256 of a row's certificate, decoded as the loader decodes it.
pub fn record_digest(record: &Record) -> Option<[u8; 32]> {
    decode_certificate_text(&record.certificate)
        .ok()
        .map(|der| crate::identity::sha256(&der))
}

/// The table edit for `edit`, when the scope has a table and the edit is about it; `None`
/// leaves the edit to the TOML.
pub fn apply(
    document: &DocumentMut,
    scope: &ScopeRef,
    edit: &Edit,
    config: &Path,
) -> Result<Option<TableChange>, DocumentError> {
    let Some((value, path)) = table_of(document, scope, &super::base_dir(config)) else {
        return Ok(None);
    };
    let where_ = scope.display_name();
    let edit_error = |e: crate::mapping::table_edit::TableEditError| {
        DocumentError::Shape(format!("{}: {e}", path.display()))
    };
    match edit {
        Edit::AddOneToOne {
            user,
            cert,
            password,
            enabled,
        } => {
            let password_env = match password {
                Password::None => None,
                Password::Env(var) => Some(var.clone()),
                Password::File(_) => {
                    return Err(DocumentError::Shape(format!(
                        "{where_} keeps its one-to-one mappings in the table {value}, which names \
                         a password only by environment variable (passwordEnv): use \
                         --password-env instead of --password-file"
                    )));
                }
            };
            let mut notes = Vec::new();
            if let Some(mapper) = doc::mapper(document, scope) {
                edit::mapper_notes(
                    mapper,
                    "one_to_one_certificate_mappings_enabled",
                    &mut notes,
                );
            }
            let (original, mut table) = read(&path)?;
            let line = table
                .append(&NewRow {
                    user_name: user.clone(),
                    certificate: cert.base64_der(),
                    enabled: *enabled,
                    password_env,
                })
                .map_err(edit_error)?;
            Ok(Some(TableChange {
                summary: format!(
                    "added one-to-one mapping {user} <- {} (thumbprint {}) to {where_} ({value} \
                     line {line})",
                    cert.subject,
                    cert.thumbprint()
                ),
                path,
                original,
                text: table.to_string(),
                changed: true,
                notes,
            }))
        }
        Edit::RemoveOneToOne(select) | Edit::EnableOneToOne(select, _) => {
            let (original, mut table) = read(&path)?;
            let Some(record) = select_row(&table, select, document, scope, config, &value)? else {
                return Ok(None);
            };
            let (summary, changed) = match edit {
                Edit::EnableOneToOne(_, enabled) => {
                    let changed = record.enabled != *enabled;
                    if changed {
                        table
                            .set_enabled(record.line, *enabled)
                            .map_err(edit_error)?;
                    }
                    (
                        format!(
                            "one-to-one mapping {} ({value} line {}) in {where_} {} {}",
                            record.user_name,
                            record.line,
                            if changed { "is now" } else { "was already" },
                            if *enabled { "enabled" } else { "disabled" }
                        ),
                        changed,
                    )
                }
                _ => {
                    table.remove(record.line).map_err(edit_error)?;
                    (
                        format!(
                            "removed one-to-one mapping {} ({value} line {}) from {where_}",
                            record.user_name, record.line
                        ),
                        true,
                    )
                }
            };
            Ok(Some(TableChange {
                path,
                original,
                text: table.to_string(),
                summary,
                changed,
                notes: Vec::new(),
            }))
        }
        _ => Ok(None),
    }
}

/// The one row `select` names; `None` when no row does (the TOML may hold the mapping). A
/// selection that names rows and inline entries together is refused.
fn select_row(
    table: &TableDocument,
    select: &Select,
    document: &DocumentMut,
    scope: &ScopeRef,
    config: &Path,
    value: &str,
) -> Result<Option<Record>, DocumentError> {
    let matches: Vec<Record> = table
        .records()
        .into_iter()
        .filter(|r| match select {
            Select::Certificate(digest) => record_digest(r).as_ref() == Some(digest),
            Select::User(user) => r.user_name.eq_ignore_ascii_case(user),
        })
        .collect();
    let inline = edit::inline_matches(document, scope, select, &super::base_dir(config));
    match (matches.as_slice(), inline) {
        ([], 0) => Err(DocumentError::Shape(format!(
            "no one-to-one mapping in {} ({value} or the configuration) {}",
            scope.display_name(),
            match select {
                Select::Certificate(_) => "maps this certificate".to_owned(),
                Select::User(user) => format!("is for `{user}`"),
            }
        ))),
        ([], _) => Ok(None),
        ([one], 0) => Ok(Some(one.clone())),
        (rows, inline) => Err(DocumentError::Shape(format!(
            "{} one-to-one mappings in {} match ({value} lines {}{}); name the certificate with \
             --cert",
            rows.len() + inline,
            scope.display_name(),
            rows.iter()
                .map(|r| r.line.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if inline > 0 {
                format!(", and {inline} in the configuration")
            } else {
                String::new()
            }
        ))),
    }
}
