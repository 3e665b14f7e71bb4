//! `many_to_one_mappings` as written in the TOML file (and by `import-iis`), before
//! [`super::compile`] checks it. It lives with the matcher, which is its only reader;
//! [`crate::config::raw`] re-exports it as part of the file's shape.

use serde::{Deserialize, Serialize};

/// `<manyToOneMappings><add>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManyToOne {
    /// Unique name of the mapping.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `"Allow"` (default) or `"Deny"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// Windows account matching certificates map to.
    #[serde(default)]
    pub user_name: String,
    /// Environment variable holding the account password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the account password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// All must match (AND).
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// `<rules><add>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// `"Subject"` or `"Issuer"`.
    pub certificate_field: String,
    /// `CN`, `OU`, `O`, `L`, `S`, `C`, `E`, `DC`, ... or a dotted OID.
    pub certificate_sub_field: String,
    /// The value; `*` matches any run of characters.
    pub match_criteria: String,
    /// Default true, as in IIS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_case_sensitive: Option<bool>,
}
