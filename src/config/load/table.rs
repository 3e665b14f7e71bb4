//! `one_to_one_mappings_file`: a section's one-to-one mapping table (see
//! [`crate::mapping::table`] for the format), read into the section's index after its inline
//! entries. Errors in the table name the table file, the line and the column.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::ConfigError;
use crate::mapping::table::read_table;
use crate::mapping::{MappedUser, MappingKind, MappingSource};

use super::Loader;
use super::mapping::Place;

impl Loader<'_> {
    /// Reads the table `value` names into `indexed` (with each entry's place and the error
    /// count after it in `placed`); returns the table's path when it could be opened.
    pub(super) fn one_to_one_table(
        &mut self,
        section: &str,
        value: &str,
        indexed: &mut Vec<([u8; 32], Arc<MappedUser>)>,
        placed: &mut Vec<(Place, usize)>,
    ) -> Option<PathBuf> {
        let key = format!("{section}.one_to_one_mappings_file");
        let path = self.file_value(&key, value)?;
        let file: Box<dyn std::io::Read + Send> = match self.pending_table {
            Some((pending, text)) if pending == path => Box::new(text),
            _ => match std::fs::File::open(&path) {
                Ok(file) => Box::new(file),
                Err(e) => {
                    self.error(key, format!("cannot read {}: {e}", path.display()));
                    return None;
                }
            },
        };
        // Logs and `explain` show a row as `mappings.csv line 7`, the file as configured.
        let shown: Arc<str> = value.into();
        read_table(file, |row| match row {
            Err(errors) => {
                for e in errors {
                    self.errors.push(ConfigError {
                        file: path.clone(),
                        key: e.position(),
                        reason: e.reason,
                    });
                }
            }
            Ok(row) if !row.enabled => {}
            Ok(row) => {
                let source = MappingSource::Row {
                    file: Arc::clone(&shown),
                    line: row.line,
                };
                let user = match &row.password_env {
                    None => Arc::new(MappedUser {
                        user_name: row.user_name,
                        kind: MappingKind::OneToOne,
                        source,
                        password: None,
                    }),
                    Some(var) => {
                        let password = self.password(&key, Some(var), None).map_err(|(_, why)| {
                            (
                                format!("{key} ({value} line {}, passwordEnv)", row.line),
                                why,
                            )
                        });
                        self.mapped_user(&row.user_name, MappingKind::OneToOne, source, password)
                    }
                };
                indexed.push((row.digest, user));
                placed.push((Place::Row(row.line), self.errors.len()));
            }
        });
        Some(path)
    }
}
