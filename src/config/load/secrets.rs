//! Mapping passwords (`password_env`, `password_file`), never read from the file itself.

use std::sync::Arc;

use crate::directory::Secret;
use crate::mapping::{MappedUser, MappingKind, MappingSource};

use super::Loader;

impl Loader<'_> {
    /// A mapping password from `password_env` or `password_file`; never from the file itself.
    /// A password that cannot be read is returned as `Err((key, reason))`: it only matters
    /// where a scope verifies credentials, which [`Self::check_directory_use`] decides.
    pub(super) fn password(
        &mut self,
        key: &str,
        env: Option<&str>,
        file: Option<&str>,
    ) -> Result<Option<Secret>, (String, String)> {
        match (env, file) {
            (Some(_), Some(_)) => {
                self.error(key, "set either password_env or password_file, not both");
                Ok(None)
            }
            (Some(var), None) => match std::env::var(var) {
                Ok(value) => Ok(Some(Secret::new(value))),
                Err(_) => Err((
                    format!("{key}.password_env"),
                    format!("environment variable `{var}` is not set"),
                )),
            },
            (None, Some(path)) => {
                let Some(path) = self.file_value(&format!("{key}.password_file"), path) else {
                    return Ok(None);
                };
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(Secret::new(text.trim_end_matches(['\r', '\n'])))),
                    Err(e) => Err((
                        format!("{key}.password_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )),
                }
            }
            (None, None) => Ok(None),
        }
    }

    /// Builds a mapped user, remembering a password that could not be read.
    pub(super) fn mapped_user(
        &mut self,
        user_name: &str,
        kind: MappingKind,
        source: MappingSource,
        password: Result<Option<Secret>, (String, String)>,
    ) -> Arc<MappedUser> {
        let (password, unresolved) = match password {
            Ok(p) => (p, None),
            Err(e) => (None, Some(e)),
        };
        let user = Arc::new(MappedUser {
            user_name: user_name.into(),
            kind,
            source,
            password,
        });
        if let Some((key, reason)) = unresolved {
            // The entry keeps the user alive, so its address cannot be reused by another user
            // while the loader runs (a duplicate one-to-one entry is dropped from the index).
            self.unresolved_passwords.insert(
                Arc::as_ptr(&user) as usize,
                (Arc::clone(&user), key, reason),
            );
        }
        user
    }
}
