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
            (Some(var), None) => crate::secret::from_env(var)
                .map(Some)
                .map_err(|e| (format!("{key}.password_env"), e.to_string())),
            (None, Some(path)) => {
                let Some(path) = self.file_value(&format!("{key}.password_file"), path) else {
                    return Ok(None);
                };
                crate::secret::from_file(&path)
                    .map(Some)
                    .map_err(|e| (format!("{key}.password_file"), e.to_string()))
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::testing::{loader, reason};
    use crate::tls::server::ResumptionKeys;

    #[test]
    fn a_password_has_one_source() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let p = l.password("m[0]", Some("A"), Some("a.txt"));
        assert!(matches!(p, Ok(None)));
        assert!(reason(&l, "m[0]").contains("either password_env or password_file"));
        assert!(matches!(l.password("m[1]", None, None), Ok(None)));
    }

    #[test]
    fn an_unreadable_password_is_returned_with_its_key_not_reported() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let (key, why) = l
            .password("m[0]", Some("CERTGATE_TEST_UNSET_MAPPING_PASSWORD"), None)
            .unwrap_err();
        assert_eq!(key, "m[0].password_env");
        assert!(why.contains("`CERTGATE_TEST_UNSET_MAPPING_PASSWORD` is not set"));
        let (key, why) = l
            .password("m[1]", None, Some("/nonexistent/password"))
            .unwrap_err();
        assert_eq!(key, "m[1].password_file");
        assert!(why.contains("/nonexistent/password"));
        // Only a scope that verifies credentials turns these into errors.
        assert!(l.errors.is_empty());
        let user = l.mapped_user(
            "u",
            crate::mapping::MappingKind::OneToOne,
            crate::mapping::MappingSource::Named("n".into()),
            Err((key, why)),
        );
        assert!(user.password.is_none());
        assert_eq!(l.unresolved_passwords.len(), 1);
    }

    #[test]
    fn a_password_file_is_read_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").unwrap();
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let secret = l.password("m[0]", None, path.to_str()).unwrap().unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert!(!format!("{secret:?}").contains("s3cret"));
    }
}
