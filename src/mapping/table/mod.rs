//! The one-to-one mapping table: a CSV file for very large `oneToOneMappings`, and its one
//! parser.
//!
//! A million mappings written as TOML make most of a gigabyte that a general TOML parser needs
//! many seconds and gigabytes to read. A table has one shape, so it is read as it streams in, a
//! block of lines at a time, with the per-row work (decode, check, hash) on every core; only
//! the digests and user names stay in memory.
//!
//! The format is what PowerShell's `Export-Csv -NoTypeInformation` writes for
//! `Get-WebConfiguration .../oneToOneMappings/add | Select-Object userName,certificate,enabled`:
//!
//! ```text
//! "userName","certificate","enabled"
//! "EXAMPLE\alice","MIIC...","True"
//! ```
//!
//! - The first line is the header, naming columns by their IIS attribute names
//!   (case-insensitively, in any order): `userName` and `certificate` are required, `enabled`
//!   (`true`/`false`, default true) and `passwordEnv` (the name of an environment variable
//!   holding the account password) are optional. A `password` column is refused: passwords are
//!   never read from a mapping file. Any other column is an error, as an unknown TOML key is.
//! - A Windows PowerShell `#TYPE ...` line before the header is skipped.
//! - UTF-8, with or without a byte-order mark; LF or CRLF line ends; blank lines are skipped.
//! - Fields are separated by commas and may be quoted (RFC 4180: `"` around the field, `""` for
//!   a quote inside it). A field may not span lines, so every record is one line and an error
//!   names its line.
//! - `certificate` is the base64 DER IIS stores (a PEM body also decodes).
//!
//! Every problem is reported, each with its line and column; the loader turns them into
//! configuration errors naming the file.

mod read;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

pub use read::read_table;

use super::one_to_one::{CertificateProblem, digest_certificate_text};

/// The columns a table may have, as IIS names the attributes.
pub(super) const USER_NAME: &str = "userName";
pub(super) const CERTIFICATE: &str = "certificate";
pub(super) const ENABLED: &str = "enabled";
pub(super) const PASSWORD_ENV: &str = "passwordEnv";

/// One usable row of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    /// Line number in the file (1-based).
    pub line: usize,
    /// The Windows account.
    pub user_name: Arc<str>,
    /// SHA-256 of the certificate's DER, the index key.
    pub digest: [u8; 32],
    /// `enabled` (default true).
    pub enabled: bool,
    /// `passwordEnv`: the environment variable holding the account password.
    pub password_env: Option<Box<str>>,
}

/// One problem in a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// Line number (1-based); 0 for the file as a whole.
    pub line: usize,
    /// Column number (1-based) and its header name, when the problem is in one field.
    pub column: Option<(usize, Box<str>)>,
    /// What is wrong.
    pub reason: String,
}

impl TableError {
    fn file(reason: impl Into<String>) -> Self {
        Self {
            line: 0,
            column: None,
            reason: reason.into(),
        }
    }

    fn line(line: usize, reason: impl Into<String>) -> Self {
        Self {
            line,
            column: None,
            reason: reason.into(),
        }
    }

    /// Where the problem is, e.g. `line 7, column 2 (certificate)`; empty for the whole file.
    pub fn position(&self) -> String {
        match (&self.column, self.line) {
            (_, 0) => String::new(),
            (None, line) => format!("line {line}"),
            (Some((n, name)), line) => format!("line {line}, column {n} ({name})"),
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.position();
        if at.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{at}: {}", self.reason)
        }
    }
}

/// What one line of the table gave.
pub type RowResult = Result<TableRow, Vec<TableError>>;

/// Which field of a row holds which column.
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub(super) names: Vec<Box<str>>,
    pub(super) user_name: usize,
    pub(super) certificate: usize,
    pub(super) enabled: Option<usize>,
    pub(super) password_env: Option<usize>,
}

/// The fields of one line (RFC 4180 quoting, no line breaks inside a field), unquoted.
fn fields(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    Ok(field_spans(line)?
        .into_iter()
        .map(|span| unquote(&line[span]))
        .collect())
}

/// Where each field of a line is: its raw text, quotes included. The writer
/// ([`super::table_edit`]) changes one field of a row through these and keeps the others as
/// written.
pub(super) fn field_spans(line: &str) -> Result<Vec<Range<usize>>, String> {
    let bytes = line.as_bytes();
    let mut out = Vec::with_capacity(4);
    let mut pos = 0;
    loop {
        if bytes.get(pos) == Some(&b'"') {
            // memchr: the table's load time is dominated by scanning long base64 fields.
            let mut search = pos + 1;
            let end = loop {
                let Some(q) = memchr::memchr(b'"', &bytes[search..]).map(|q| search + q) else {
                    return Err(format!(
                        "field {} opens a quote that is not closed on this line \
                         (a field may not span lines)",
                        out.len() + 1
                    ));
                };
                if bytes.get(q + 1) == Some(&b'"') {
                    search = q + 2;
                } else {
                    break q + 1;
                }
            };
            out.push(pos..end);
            if end == bytes.len() {
                return Ok(out);
            }
            if bytes[end] != b',' {
                return Err(format!(
                    "field {} has text after its closing quote",
                    out.len()
                ));
            }
            pos = end + 1;
        } else {
            let end = memchr::memchr(b',', &bytes[pos..]).map_or(bytes.len(), |c| pos + c);
            if memchr::memchr(b'"', &bytes[pos..end]).is_some() {
                return Err(format!(
                    "field {} has a quote inside an unquoted value; quote the whole field and \
                     double the quote",
                    out.len() + 1
                ));
            }
            out.push(pos..end);
            if end == bytes.len() {
                return Ok(out);
            }
            pos = end + 1;
        }
    }
}

/// A field's value from its raw text: quotes removed, `""` read as `"`. Borrows when nothing
/// was unescaped, the usual case.
pub(super) fn unquote(raw: &str) -> Cow<'_, str> {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        // Inside a field `field_spans` accepted, any quote is half of a doubled one, so a byte
        // search (memchr's SIMD) answers; a substring search over every long base64 field
        // showed in profiles of a million-row load.
        Some(inner) if memchr::memchr(b'"', inner.as_bytes()).is_some() => {
            Cow::Owned(inner.replace("\"\"", "\""))
        }
        Some(inner) => Cow::Borrowed(inner),
        None => Cow::Borrowed(raw),
    }
}

pub(super) fn parse_header(line: usize, bytes: &[u8]) -> Result<Header, Vec<TableError>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| vec![TableError::line(line, "the header is not UTF-8 text")])?;
    let names = fields(text).map_err(|e| vec![TableError::line(line, e)])?;
    let mut errors = Vec::new();
    let mut columns: [Option<usize>; 4] = [None; 4];
    let known = [USER_NAME, CERTIFICATE, ENABLED, PASSWORD_ENV];
    for (i, name) in names.iter().enumerate() {
        let at = |reason: String| TableError {
            line,
            column: Some((i + 1, name.trim().into())),
            reason,
        };
        let name = name.trim();
        match known.iter().position(|k| k.eq_ignore_ascii_case(name)) {
            Some(k) if columns[k].is_some() => errors.push(at(format!("`{name}` is repeated"))),
            Some(k) => columns[k] = Some(i),
            None if name.eq_ignore_ascii_case("password") => errors.push(at(
                "passwords are never read from a mapping table; put the password in an \
                 environment variable and name it in a passwordEnv column"
                    .into(),
            )),
            None => errors.push(at(format!(
                "unknown column `{name}`; the columns are {USER_NAME}, {CERTIFICATE}, \
                 {ENABLED} and {PASSWORD_ENV}"
            ))),
        }
    }
    for (k, required) in [(0, USER_NAME), (1, CERTIFICATE)] {
        if columns[k].is_none() {
            errors.push(TableError::line(
                line,
                format!("the header has no `{required}` column (the first line is the header)"),
            ));
        }
    }
    match columns {
        [Some(user_name), Some(certificate), enabled, password_env] if errors.is_empty() => {
            Ok(Header {
                names: names.iter().map(|n| n.trim().into()).collect(),
                user_name,
                certificate,
                enabled,
                password_env,
            })
        }
        _ => Err(errors),
    }
}

pub(super) fn parse_row(
    header: &Header,
    line: usize,
    bytes: &[u8],
    scratch: &mut Vec<u8>,
) -> RowResult {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| vec![TableError::line(line, "the line is not UTF-8 text")])?;
    let values = fields(text).map_err(|e| vec![TableError::line(line, e)])?;
    if values.len() != header.names.len() {
        return Err(vec![TableError::line(
            line,
            format!(
                "{} fields, but the header has {} columns",
                values.len(),
                header.names.len()
            ),
        )]);
    }
    let mut errors = Vec::new();
    let mut at = |column: usize, reason: String| {
        errors.push(TableError {
            line,
            column: Some((column + 1, header.names[column].clone())),
            reason,
        });
    };
    let user_name = values[header.user_name].trim();
    if user_name.is_empty() {
        at(header.user_name, "the mapping names no user".into());
    }
    let digest = match digest_certificate_text(&values[header.certificate], scratch) {
        Ok(d) => Some(d),
        Err(problem) => {
            at(header.certificate, describe(problem));
            None
        }
    };
    let enabled = match header.enabled.map(|c| (c, values[c].trim())) {
        None | Some((_, "")) => true,
        Some((_, v)) if v.eq_ignore_ascii_case("true") => true,
        Some((_, v)) if v.eq_ignore_ascii_case("false") => false,
        Some((c, v)) => {
            at(c, format!("`{v}` is not true or false"));
            true
        }
    };
    let password_env = header
        .password_env
        .map(|c| values[c].trim())
        .filter(|v| !v.is_empty())
        .map(Box::from);
    match digest {
        Some(digest) if errors.is_empty() => Ok(TableRow {
            line,
            user_name: user_name.into(),
            digest,
            enabled,
            password_env,
        }),
        _ => Err(errors),
    }
}

/// A certificate problem in the words a person fixing the table needs.
pub fn describe(problem: CertificateProblem) -> String {
    match problem {
        CertificateProblem::Text(e) => e.to_string(),
        CertificateProblem::NotX509(e) => {
            format!("decodes, but is not an X.509 certificate ({e}); IIS would answer 401.1")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn certificate(name: &str) -> (String, [u8; 32]) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let der = c.cert.der();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        (b64, crate::identity::sha256(der))
    }

    fn read(text: &[u8]) -> Vec<RowResult> {
        let mut out = Vec::new();
        read_table(text, |r| out.push(r));
        out
    }

    fn errors(text: &[u8]) -> Vec<String> {
        read(text)
            .into_iter()
            .filter_map(Result::err)
            .flatten()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn what_export_csv_writes_loads() {
        let (a, a_digest) = certificate("a");
        let (b, b_digest) = certificate("b");
        let text = format!(
            "#TYPE Selected.Microsoft.IIs.PowerShell.Framework.ConfigurationElement\r\n\
             \"userName\",\"certificate\",\"enabled\"\r\n\
             \"EXAMPLE\\alice\",\"{a}\",\"True\"\r\n\
             \"EXAMPLE\\bob\",\"{b}\",\"False\"\r\n"
        );
        let rows: Vec<TableRow> = read(text.as_bytes())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 3);
        assert_eq!(&*rows[0].user_name, "EXAMPLE\\alice");
        assert_eq!(rows[0].digest, a_digest);
        assert!(rows[0].enabled);
        assert_eq!(rows[1].digest, b_digest);
        assert!(!rows[1].enabled);
    }

    #[test]
    fn plain_fields_any_column_order_bom_and_blank_lines() {
        let (a, a_digest) = certificate("a");
        let text = format!("\u{feff}Certificate,PASSWORDENV,username\n\n{a},ALICE_PW,alice\n\n");
        let rows = read(text.as_bytes());
        assert_eq!(rows.len(), 1);
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.line, 3);
        assert_eq!(&*row.user_name, "alice");
        assert_eq!(row.digest, a_digest);
        assert_eq!(row.password_env.as_deref(), Some("ALICE_PW"));
        assert!(row.enabled);
    }

    #[test]
    fn quoted_fields_unescape_doubled_quotes_and_keep_commas() {
        let got = fields(r#""a ""b"", c",plain,"""""#).unwrap();
        assert_eq!(got, ["a \"b\", c", "plain", "\""]);
        assert!(matches!(
            &fields(r#""x",y"#).unwrap()[0],
            Cow::Borrowed("x")
        ));
        assert_eq!(fields("a,,").unwrap(), ["a", "", ""]);
        assert!(fields(r#""open"#).unwrap_err().contains("not closed"));
        assert!(
            fields(r#""a"b"#)
                .unwrap_err()
                .contains("after its closing quote")
        );
        assert!(fields(r#"a"b"#).unwrap_err().contains("unquoted value"));
    }

    #[test]
    fn an_empty_file_and_a_file_of_blank_lines_have_no_header() {
        for text in ["", "\n\r\n", "\u{feff}"] {
            let e = errors(text.as_bytes());
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].starts_with("the file is empty"), "{e:?}");
        }
        assert!(
            read(b"userName,certificate\n").is_empty(),
            "a header alone is no rows"
        );
    }

    #[test]
    fn bad_headers_are_all_reported() {
        let e = errors(b"userName,password,colour,userName\n");
        assert_eq!(
            e,
            [
                "line 1, column 2 (password): passwords are never read from a mapping table; \
                 put the password in an environment variable and name it in a passwordEnv column",
                "line 1, column 3 (colour): unknown column `colour`; the columns are userName, \
                 certificate, enabled and passwordEnv",
                "line 1, column 4 (userName): `userName` is repeated",
                "line 1: the header has no `certificate` column (the first line is the header)",
            ]
        );
        assert!(errors(&[0xff, 0xfe, b'u', 0])[0].contains("UTF-16"));
    }

    #[test]
    fn bad_rows_are_all_reported_with_line_and_column() {
        let (a, _) = certificate("a");
        let not_x509 = base64::engine::general_purpose::STANDARD.encode(b"hello");
        let text = format!(
            "userName,certificate,enabled\n\
             alice,{a},yes\n\
             ,!!!,true\n\
             carol,{not_x509},\n\
             dave,{a}\n\
             erin,{a},true,extra\n\
             \"frank,{a},true\n\
             gina,,true\n"
        );
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"h\xffi,x,true\n");
        let e = errors(&bytes);
        assert_eq!(e.len(), 9, "{e:#?}");
        assert_eq!(
            e[0],
            "line 2, column 3 (enabled): `yes` is not true or false"
        );
        assert_eq!(
            e[1],
            "line 3, column 1 (userName): the mapping names no user"
        );
        assert!(
            e[2].starts_with("line 3, column 2 (certificate): not valid base64"),
            "{}",
            e[2]
        );
        assert!(e[3].starts_with("line 4, column 2 (certificate): decodes, but is not an X.509"));
        assert_eq!(e[4], "line 5: 2 fields, but the header has 3 columns");
        assert_eq!(e[5], "line 6: 4 fields, but the header has 3 columns");
        assert!(
            e[6].starts_with("line 7: field 1 opens a quote"),
            "{}",
            e[6]
        );
        assert_eq!(
            e[7],
            "line 8, column 2 (certificate): the certificate is empty"
        );
        assert_eq!(e[8], "line 9: the line is not UTF-8 text");
    }

    #[test]
    fn a_missing_final_line_end_is_fine() {
        let (a, _) = certificate("a");
        let rows = read(format!("userName,certificate\r\nalice,{a}").as_bytes());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].as_ref().unwrap().line, 2);
    }
}
