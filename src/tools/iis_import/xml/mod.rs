//! Reading IIS XML (applicationHost.config and web.config) into owned fragments.
//!
//! Each `<system.webServer>` block, at server level, inside a `<location>` or in a web.config,
//! becomes one [`Fragment`] tagged with the configuration path it applies to and its place in
//! IIS merge order. Values are parsed here, where the XML position is known, so that every
//! malformed value is reported with file, line and column as IIS reports 500.19.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};

use super::ImportError;

mod attrs;
mod mapper;
mod sections;

/// Attributes IIS's configuration system uses for locking; they mean nothing to certgate.
const LOCK_ATTRIBUTES: &[&str] = &[
    "lockAttributes",
    "lockAllAttributesExcept",
    "lockElements",
    "lockAllElementsExcept",
    "lockItem",
];

pub(super) const ACCESS: &str = "system.webServer/security/access";
pub(super) const ANONYMOUS: &str =
    "system.webServer/security/authentication/anonymousAuthentication";
pub(super) const IIS_MAPPER: &str =
    "system.webServer/security/authentication/iisClientCertificateMappingAuthentication";

/// Where something was written, for messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct At {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// `access@sslFlags`: IIS's own parser of it is certgate's ([`crate::iis::SslFlags`]), so an
/// imported value means what the same value in `ssl_flags` means.
pub(super) use crate::iis::SslFlags;

/// A mapping password as IIS stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Password {
    /// Absent, empty, or the empty default `[enc:AesProvider::enc]`.
    Absent,
    /// `[enc:Provider:...:enc]`, only decryptable with the IIS host's machine key.
    Encrypted,
    /// Plain text in the XML.
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OneToOne {
    /// Whitespace already stripped.
    pub certificate: String,
    pub user_name: String,
    pub enabled: Option<bool>,
    pub password: Password,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ManyToOne {
    pub name: String,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub permission: Option<&'static str>,
    pub user_name: String,
    pub password: Password,
    pub rules: Vec<Rule>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub field: &'static str,
    pub sub_field: String,
    pub criteria: String,
    pub case_sensitive: bool,
}

impl Rule {
    /// IIS's combined collection key; `certificateSubField` and `matchCriteria` are
    /// case-sensitive keys in the schema, the enum and the bool are compared by value.
    fn same_key(&self, other: &Self) -> bool {
        self == other
    }

    fn describe(&self) -> String {
        format!(
            "{}/{}={} (compareCaseSensitive={})",
            self.field, self.sub_field, self.criteria, self.case_sensitive
        )
    }
}

/// One step of an IIS collection at one level.
#[derive(Debug, Clone)]
pub(super) enum Op<T> {
    Add(T),
    Remove { key: String, at: At },
    Clear,
}

#[derive(Debug, Clone, Default)]
pub(super) struct MapperFragment {
    pub enabled: Option<bool>,
    pub one_to_one_enabled: Option<bool>,
    pub many_to_one_enabled: Option<bool>,
    pub default_logon_domain: Option<String>,
    pub logon_method: Option<&'static str>,
    pub one_to_one: Vec<Op<OneToOne>>,
    pub many_to_one: Vec<Op<ManyToOne>>,
}

/// One `<system.webServer>` block and where it applies.
#[derive(Debug, Clone)]
pub(super) struct Fragment {
    pub at: At,
    /// Human description of the level, e.g. `<location path="Contoso/app">`.
    pub scope: String,
    /// Configuration path segments: empty for the server level, then site, then URL segments.
    pub path: Vec<String>,
    /// Sort key giving IIS merge order: (file kind, file depth, path depth, document order).
    pub rank: (u8, usize, usize, usize),
    pub from_web_config: bool,
    /// `overrideMode` (or legacy `allowOverride`) of the enclosing `<location>`.
    pub override_allow: Option<bool>,
    /// Sections present in this block, for lock checks.
    pub sections: Vec<&'static str>,
    pub ssl_flags: Option<SslFlags>,
    pub anonymous: Option<bool>,
    /// Other authentication modules and their `enabled`, by element name.
    pub other_auth: Vec<(String, Option<bool>)>,
    pub mapper: Option<MapperFragment>,
}

#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub protocol: String,
    pub information: String,
    pub ssl_flags: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Site {
    pub name: String,
    pub bindings: Vec<Binding>,
}

/// Everything read from one file.
#[derive(Debug, Default)]
pub(super) struct ParsedFile {
    pub fragments: Vec<Fragment>,
    pub sites: Vec<Site>,
    /// `configSections` `overrideModeDefault` by section path; true = Allow.
    pub section_override_default: BTreeMap<String, bool>,
    /// Warnings found while reading values (no-op flags and the like).
    pub warnings: Vec<String>,
    /// Things read but not translated.
    pub untranslated: Vec<String>,
}

/// Which file is being read, which decides its place in merge order.
pub(super) enum FileKind<'a> {
    AppHost,
    /// A web.config that applies at this configuration path (site first).
    WebConfig(&'a [String]),
}

struct Reader<'a, 'input> {
    doc: &'a Document<'input>,
    file: &'a str,
    out: ParsedFile,
    seq: usize,
}

/// Parses one file. `seq_start` keeps document order unique across files.
pub(super) fn parse(
    text: &str,
    file: &str,
    kind: &FileKind<'_>,
    seq_start: usize,
) -> Result<ParsedFile, ImportError> {
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        ImportError::Xml {
            file: file.to_owned(),
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let mut reader = Reader {
        doc: &doc,
        file,
        out: ParsedFile::default(),
        seq: seq_start,
    };
    reader.configuration(kind)?;
    Ok(reader.out)
}

fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

/// Splits a `<location path>` into segments; `""`, `"."` and `"/"` mean "this level".
pub(super) fn split_path(path: &str) -> Vec<String> {
    path.split(['/', '\\'])
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_owned)
        .collect()
}

fn password(value: Option<&str>) -> Password {
    match value.map(str::trim) {
        None | Some("") => Password::Absent,
        Some(v) if v.starts_with("[enc:") && v.ends_with(":enc]") && v.len() >= 10 => {
            let inner = &v[5..v.len() - 5];
            match inner.split_once(':') {
                Some((_, payload)) if !payload.is_empty() => Password::Encrypted,
                _ => Password::Absent,
            }
        }
        Some(_) => Password::Plain,
    }
}

pub(super) fn strip_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn passwords_are_classified() {
        assert_eq!(password(None), Password::Absent);
        assert_eq!(password(Some("")), Password::Absent);
        assert_eq!(password(Some("[enc:AesProvider::enc]")), Password::Absent);
        assert_eq!(
            password(Some("[enc:AesProvider:57686f61:enc]")),
            Password::Encrypted
        );
        assert_eq!(
            password(Some("[enc:Rsa_WAS:jAAAAAECAAAD:enc]")),
            Password::Encrypted
        );
        assert_eq!(password(Some("hunter2")), Password::Plain);
    }

    #[test]
    fn location_paths_split_into_segments() {
        assert!(split_path("").is_empty());
        assert!(split_path(".").is_empty());
        assert_eq!(
            split_path("Contoso Site/a/b/"),
            vec!["Contoso Site", "a", "b"]
        );
        assert_eq!(split_path("/app"), vec!["app"]);
    }
}
