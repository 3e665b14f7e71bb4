//! Secrets: the one reader of every password certgate takes (the directory's bind password,
//! mapping passwords), and a type that cannot leak through formatting.
//!
//! A secret comes from an environment variable or a file, never from the configuration file
//! itself. Both sources follow the same rules ([`from_env`], [`from_file`]): one trailing line
//! ending (`\n` or `\r\n`) is removed, since editors and `echo` add one; nothing else is trimmed,
//! because spaces can be part of a password; an empty value is refused, because Active Directory
//! treats a simple bind with an empty password as an anonymous bind that *succeeds*. Errors name
//! the variable or the file, never the value.
//!
//! Bind and mapping passwords travel through config structs, errors and log fields that derive
//! `Debug`; one forgotten `{:?}` would print them. Wrapping them in [`Secret`] makes every
//! formatting path print `***`, so the only way to read the value is the explicit
//! [`Secret::expose`], which is easy to grep for.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a secret could not be read. Never carries the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The variable is not set (or not valid Unicode).
    #[error("environment variable `{0}` is not set")]
    EnvUnset(String),
    /// The variable is set to nothing (or only a line ending).
    #[error("environment variable `{0}` is empty")]
    EnvEmpty(String),
    /// The file cannot be read (or is not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds nothing (or only a line ending).
    #[error("{} is empty", .0.display())]
    FileEmpty(PathBuf),
}

/// Reads the secret in environment variable `var` from the process environment.
pub fn from_env(var: &str) -> Result<Secret, SecretError> {
    from_env_with(var, |name| std::env::var(name).ok())
}

/// [`from_env`] with an explicit lookup, so callers and tests need not mutate the process
/// environment.
pub fn from_env_with(
    var: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Secret, SecretError> {
    let value = lookup(var).ok_or_else(|| SecretError::EnvUnset(var.to_owned()))?;
    let value = without_line_ending(&value);
    if value.is_empty() {
        return Err(SecretError::EnvEmpty(var.to_owned()));
    }
    Ok(Secret::new(value))
}

/// Reads the secret in the file at `path`.
pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
        path: path.to_owned(),
        source,
    })?;
    let value = without_line_ending(&text);
    if value.is_empty() {
        return Err(SecretError::FileEmpty(path.to_owned()));
    }
    Ok(Secret::new(value))
}

/// Removes one trailing `\n` or `\r\n`, nothing else.
fn without_line_ending(value: &str) -> &str {
    let value = value.strip_suffix('\n').unwrap_or(value);
    value.strip_suffix('\r').unwrap_or(value)
}

/// A secret string (bind password, mapping password). `Debug` and `Display` print `***`; it
/// implements neither `Serialize` nor `Deserialize`, so it cannot be written back to a file.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that has to send it (an LDAP bind).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the empty string: AD treats a simple bind with an empty password as an
    /// anonymous bind that *succeeds*, so callers must refuse it before any bind.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
        assert!(Secret::new("").is_empty());
    }

    #[test]
    fn env_and_file_follow_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        // (stored value, what is read; None = refused as empty)
        let cases: &[(&str, Option<&str>)] = &[
            ("hunter2", Some("hunter2")),
            ("hunter2\n", Some("hunter2")),
            ("hunter2\r\n", Some("hunter2")),
            ("hunter2\n\n", Some("hunter2\n")),
            (" hunter 2 ", Some(" hunter 2 ")),
            ("\thunter2\t\n", Some("\thunter2\t")),
            ("", None),
            ("\n", None),
            ("\r\n", None),
        ];
        for (i, &(stored, expected)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("pw{i}"));
            std::fs::write(&path, stored).unwrap();
            let from_file = from_file(&path);
            let from_env = from_env_with("PW", |_| Some(stored.to_owned()));
            match expected {
                Some(want) => {
                    assert_eq!(from_file.unwrap().expose(), want, "{stored:?}");
                    assert_eq!(from_env.unwrap().expose(), want, "{stored:?}");
                }
                None => {
                    assert!(
                        matches!(from_file, Err(SecretError::FileEmpty(_))),
                        "{stored:?}"
                    );
                    assert!(
                        matches!(from_env, Err(SecretError::EnvEmpty(_))),
                        "{stored:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_name_the_source_never_the_value() {
        let e = from_env_with("CERTGATE_PW", |_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable `CERTGATE_PW` is not set"
        );
        let e = from_env_with("CERTGATE_PW", |_| Some("\n".into())).unwrap_err();
        assert_eq!(e.to_string(), "environment variable `CERTGATE_PW` is empty");
        let e = from_file(Path::new("/nonexistent/pw")).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read /nonexistent/pw: "),
            "{e}"
        );

        // A value read successfully never shows, whatever formats the result.
        let ok = from_env_with("CERTGATE_PW", |_| Some("s3cret-value".into()));
        assert!(!format!("{ok:?}").contains("s3cret"));
    }
}
