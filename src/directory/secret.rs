//! A password that cannot leak through formatting.
//!
//! Bind and mapping passwords travel through config structs, errors and log fields that derive
//! `Debug`; one forgotten `{:?}` would print them. Wrapping them in [`Secret`] makes every
//! formatting path print `***`, so the only way to read the value is the explicit
//! [`Secret::expose`], which is easy to grep for.

use std::fmt;

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
}
