//! Writing and changing one-to-one mapping tables (the format and its parser are in
//! [`super::table`]).
//!
//! Two writers share this module: [`write_table`] writes a new table as PowerShell's
//! `Export-Csv` does (`import-iis --mappings-file`), and [`TableDocument`] changes one row of an
//! existing table (`certgate mapping add|remove|enable|disable`) the way a person would: every
//! other line, the header, a `#TYPE` line, blank lines, each line's own line end and each
//! field's quoting stay byte for byte as they were. A column is added only when the edit needs
//! one the table lacks (`enabled` to disable a mapping, `passwordEnv` for a password); then the
//! header and every row gain an empty field for it.
//!
//! The editor reads the header and splits fields with the parser's own functions, so there is
//! one definition of the format; whether the edited table is *valid* is decided by the
//! configuration loader, which `certgate mapping` runs on the edited text before writing it.

use std::fmt::Write as _;

use super::table::{
    CERTIFICATE, ENABLED, Header, PASSWORD_ENV, USER_NAME, field_spans, parse_header, unquote,
};

/// One mapping to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    /// The Windows account (IIS `userName`).
    pub user_name: String,
    /// The certificate as IIS stores it: one-line base64 DER.
    pub certificate: String,
    /// IIS `enabled`.
    pub enabled: bool,
    /// The environment variable holding the account password.
    pub password_env: Option<String>,
}

/// Why a table cannot be changed; nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableEditError {
    /// The table's header cannot be read (the loader reports the same problems).
    #[error("{0}")]
    Unreadable(String),
    /// A value cannot be held by a table (a field may not span lines).
    #[error("{0}")]
    Value(String),
    /// No such row.
    #[error("line {0} is not a row of the table")]
    NoRow(usize),
}

/// `"value"` with inner quotes doubled, as `Export-Csv` writes every field.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// `value` quoted only when it must be: it holds a comma or a quote, or has surrounding spaces
/// (which the reader would trim).
fn minimal(value: &str) -> String {
    if value.contains([',', '"']) || value.trim() != value {
        quoted(value)
    } else {
        value.to_owned()
    }
}

fn one_line(what: &str, value: &str) -> Result<(), TableEditError> {
    if value.contains(['\r', '\n']) {
        return Err(TableEditError::Value(format!(
            "{what} holds a line break, which a mapping table cannot hold (a field may not span \
             lines)"
        )));
    }
    Ok(())
}

fn enabled_word(enabled: bool) -> &'static str {
    if enabled { "True" } else { "False" }
}

/// A new table as `Export-Csv -NoTypeInformation` writes it: every field quoted, CRLF line
/// ends, a `passwordEnv` column only when a row names one.
pub fn write_table(rows: &[NewRow]) -> Result<String, TableEditError> {
    let with_password = rows.iter().any(|r| r.password_env.is_some());
    let mut text = [USER_NAME, CERTIFICATE, ENABLED].map(quoted).join(",");
    if with_password {
        text.push(',');
        text.push_str(&quoted(PASSWORD_ENV));
    }
    text.push_str("\r\n");
    for row in rows {
        one_line("the user name", &row.user_name)?;
        one_line("the certificate", &row.certificate)?;
        let _ = write!(
            text,
            "{},{},{}",
            quoted(&row.user_name),
            quoted(&row.certificate),
            quoted(enabled_word(row.enabled))
        );
        if with_password {
            let env = row.password_env.as_deref().unwrap_or("");
            one_line("the passwordEnv value", env)?;
            let _ = write!(text, ",{}", quoted(env));
        }
        text.push_str("\r\n");
    }
    Ok(text)
}

/// One row as written, its values unquoted but not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line number (1-based).
    pub line: usize,
    /// `userName`, trimmed as the loader trims it.
    pub user_name: String,
    /// `certificate`.
    pub certificate: String,
    /// `enabled` (a value other than `false` reads as true here; the loader judges it).
    pub enabled: bool,
    /// `passwordEnv`, when not empty.
    pub password_env: Option<String>,
}

/// A table kept as written, for changing a row.
#[derive(Debug, Clone)]
pub struct TableDocument {
    /// Each line without its end, and its end (`\r\n`, `\n`, or empty for a last line without).
    lines: Vec<(String, &'static str)>,
    /// Index of the header in `lines`.
    header_at: usize,
    header: Header,
}

impl TableDocument {
    /// Reads a table's text (UTF-8; a byte-order mark stays part of the first line).
    pub fn parse(text: &str) -> Result<Self, TableEditError> {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, end, next) = match rest.find('\n') {
                Some(n) if rest[..n].ends_with('\r') => (&rest[..n - 1], "\r\n", &rest[n + 1..]),
                Some(n) => (&rest[..n], "\n", &rest[n + 1..]),
                None => (rest, "", ""),
            };
            lines.push((line.to_owned(), end));
            rest = next;
        }
        // The header is found as the reader finds it: the first line that is not blank or a
        // `#TYPE` line 1.
        let header_at = lines
            .iter()
            .enumerate()
            .position(|(i, (l, _))| {
                let l = if i == 0 {
                    l.strip_prefix('\u{feff}').unwrap_or(l)
                } else {
                    l
                };
                !(l.is_empty() || (i == 0 && l.starts_with("#TYPE")))
            })
            .ok_or_else(|| {
                TableEditError::Unreadable(
                    "the table is empty: it has no header line to add rows under".into(),
                )
            })?;
        let header_text = Self::strip_bom(header_at, &lines[header_at].0);
        let header = parse_header(header_at + 1, header_text.as_bytes()).map_err(|errors| {
            TableEditError::Unreadable(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(Self {
            lines,
            header_at,
            header,
        })
    }

    fn strip_bom(index: usize, line: &str) -> &str {
        if index == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        }
    }

    /// Every row whose fields can be split and counted; rows the loader would refuse for their
    /// shape are left out (the loader reports them).
    pub fn records(&self) -> Vec<Record> {
        let h = &self.header;
        self.lines
            .iter()
            .enumerate()
            .skip(self.header_at + 1)
            .filter(|(_, (l, _))| !l.is_empty())
            .filter_map(|(i, (line, _))| {
                let spans = field_spans(line).ok()?;
                if spans.len() != h.names.len() {
                    return None;
                }
                let value = |c: usize| unquote(&line[spans[c].clone()]).trim().to_owned();
                Some(Record {
                    line: i + 1,
                    user_name: value(h.user_name),
                    certificate: value(h.certificate),
                    enabled: h
                        .enabled
                        .is_none_or(|c| !value(c).eq_ignore_ascii_case("false")),
                    password_env: h.password_env.map(value).filter(|v| !v.is_empty()),
                })
            })
            .collect()
    }

    /// Whether the header is written Export-Csv style (quoted), which new fields follow.
    fn quoted_style(&self) -> bool {
        Self::strip_bom(self.header_at, &self.lines[self.header_at].0).starts_with('"')
    }

    fn field(&self, value: &str) -> String {
        if self.quoted_style() {
            quoted(value)
        } else {
            minimal(value)
        }
    }

    /// The line end new lines get: the header's (a header without one gets CRLF when the file
    /// has any, else LF).
    fn line_end(&self) -> &'static str {
        match self.lines[self.header_at].1 {
            "" if self.lines.iter().any(|(_, e)| *e == "\r\n") => "\r\n",
            "" => "\n",
            end => end,
        }
    }

    /// Adds a column at the end of the header, and an empty field for it to every row.
    fn add_column(&mut self, name: &str) -> usize {
        let empty = self.field("");
        let header_field = self.field(name);
        let column = self.header.names.len();
        for (i, (line, _)) in self.lines.iter_mut().enumerate().skip(self.header_at) {
            if i == self.header_at {
                line.push(',');
                line.push_str(&header_field);
            } else if !line.is_empty() {
                line.push(',');
                line.push_str(&empty);
            }
        }
        self.header.names.push(name.into());
        column
    }

    /// Appends a row after the last one.
    pub fn append(&mut self, row: &NewRow) -> Result<usize, TableEditError> {
        one_line("the user name", &row.user_name)?;
        one_line("the certificate", &row.certificate)?;
        if let Some(env) = &row.password_env {
            one_line("the passwordEnv value", env)?;
        }
        if !row.enabled && self.header.enabled.is_none() {
            self.header.enabled = Some(self.add_column(ENABLED));
        }
        if row.password_env.is_some() && self.header.password_env.is_none() {
            self.header.password_env = Some(self.add_column(PASSWORD_ENV));
        }
        let h = &self.header;
        let mut fields = vec![String::new(); h.names.len()];
        fields[h.user_name] = row.user_name.clone();
        fields[h.certificate] = row.certificate.clone();
        if let Some(c) = h.enabled {
            fields[c] = enabled_word(row.enabled).to_owned();
        }
        if let (Some(c), Some(env)) = (h.password_env, &row.password_env) {
            fields[c] = env.clone();
        }
        let line: Vec<String> = fields.iter().map(|f| self.field(f)).collect();
        // After the last line that is not blank; blank lines at the end stay at the end.
        let end = self.line_end();
        let at = self
            .lines
            .iter()
            .rposition(|(l, _)| !l.is_empty())
            .map_or(self.lines.len(), |i| i + 1);
        if let Some((_, last_end)) = self.lines.get_mut(at - 1)
            && last_end.is_empty()
        {
            *last_end = end;
        }
        self.lines.insert(at, (line.join(","), end));
        Ok(at + 1)
    }

    /// Removes the row at `line` (1-based) with its line end.
    pub fn remove(&mut self, line: usize) -> Result<(), TableEditError> {
        self.row_index(line)?;
        self.lines.remove(line - 1);
        Ok(())
    }

    /// Sets `enabled` of the row at `line`, keeping its other fields as written; adds an
    /// `enabled` column when the table has none.
    pub fn set_enabled(&mut self, line: usize, enabled: bool) -> Result<(), TableEditError> {
        let index = self.row_index(line)?;
        let column = match self.header.enabled {
            Some(c) => c,
            None => {
                let c = self.add_column(ENABLED);
                self.header.enabled = Some(c);
                c
            }
        };
        let text = &self.lines[index].0;
        let spans = field_spans(text).map_err(|_| TableEditError::NoRow(line))?;
        let span = spans
            .get(column)
            .cloned()
            .ok_or(TableEditError::NoRow(line))?;
        let was_quoted = text[span.clone()].starts_with('"');
        let word = enabled_word(enabled);
        let value = if was_quoted || self.quoted_style() {
            quoted(word)
        } else {
            word.to_owned()
        };
        self.lines[index].0.replace_range(span, &value);
        Ok(())
    }

    fn row_index(&self, line: usize) -> Result<usize, TableEditError> {
        let index = line.checked_sub(1).ok_or(TableEditError::NoRow(line))?;
        match self.lines.get(index) {
            Some((l, _)) if index > self.header_at && !l.is_empty() => Ok(index),
            _ => Err(TableEditError::NoRow(line)),
        }
    }
}

impl std::fmt::Display for TableDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (line, end) in &self.lines {
            f.write_str(line)?;
            f.write_str(end)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::mapping::table::read_table;

    fn row(user: &str, cert: &str, enabled: bool, env: Option<&str>) -> NewRow {
        NewRow {
            user_name: user.into(),
            certificate: cert.into(),
            enabled,
            password_env: env.map(Into::into),
        }
    }

    #[test]
    fn export_csv_form() {
        let text = write_table(&[
            row("EX\\alice", "MIIBalice", true, None),
            row("EX\\\"q\", u", "MIIBq", false, Some("PW")),
        ])
        .unwrap();
        assert_eq!(
            text,
            "\"userName\",\"certificate\",\"enabled\",\"passwordEnv\"\r\n\
             \"EX\\alice\",\"MIIBalice\",\"True\",\"\"\r\n\
             \"EX\\\"\"q\"\", u\",\"MIIBq\",\"False\",\"PW\"\r\n"
        );
        assert!(write_table(&[row("a\nb", "c", true, None)]).is_err());
    }

    #[test]
    fn append_keeps_every_other_byte_and_follows_the_style() {
        let text = "\u{feff}#TYPE x\r\n\"userName\",\"certificate\",\"enabled\"\r\n\"a\",\"A\",\"True\"\r\n";
        let mut doc = TableDocument::parse(text).unwrap();
        assert_eq!(doc.append(&row("b", "B", true, None)).unwrap(), 4);
        assert_eq!(doc.to_string(), format!("{text}\"b\",\"B\",\"True\"\r\n"));

        // Plain style, LF, no final line end, columns in another order.
        let text = "certificate,userName\nA,a";
        let mut doc = TableDocument::parse(text).unwrap();
        doc.append(&row("x, y", "B", true, None)).unwrap();
        assert_eq!(doc.to_string(), "certificate,userName\nA,a\nB,\"x, y\"\n");
    }

    #[test]
    fn columns_are_added_when_an_edit_needs_them() {
        let text = "userName,certificate\n\na,A\n";
        let mut doc = TableDocument::parse(text).unwrap();
        doc.append(&row("b", "B", false, Some("PW_B"))).unwrap();
        assert_eq!(
            doc.to_string(),
            "userName,certificate,enabled,passwordEnv\n\na,A,,\nb,B,False,PW_B\n"
        );
        let mut doc = TableDocument::parse("userName,certificate\na,A\n").unwrap();
        doc.set_enabled(2, false).unwrap();
        assert_eq!(doc.to_string(), "userName,certificate,enabled\na,A,False\n");
    }

    #[test]
    fn set_enabled_and_remove_touch_one_line() {
        let text =
            "\"userName\",\"certificate\",\"enabled\"\r\n\"a\",\"A\",\"True\"\r\nb,B,true\r\n";
        let mut doc = TableDocument::parse(text).unwrap();
        let records = doc.records();
        assert_eq!(records.len(), 2);
        assert_eq!((records[1].line, records[1].user_name.as_str()), (3, "b"));
        doc.set_enabled(3, false).unwrap();
        doc.set_enabled(2, false).unwrap();
        assert_eq!(
            doc.to_string(),
            "\"userName\",\"certificate\",\"enabled\"\r\n\"a\",\"A\",\"False\"\r\nb,B,\"False\"\r\n"
        );
        doc.remove(2).unwrap();
        assert_eq!(
            doc.to_string(),
            "\"userName\",\"certificate\",\"enabled\"\r\nb,B,\"False\"\r\n"
        );
        assert_eq!(doc.remove(1), Err(TableEditError::NoRow(1)));
        assert_eq!(doc.remove(9), Err(TableEditError::NoRow(9)));
    }

    #[test]
    fn the_reader_reads_what_the_editor_writes() {
        let cert = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.cert.der().as_ref());
        let mut doc = TableDocument::parse("userName,certificate\n").unwrap();
        doc.append(&row("EX\\\"odd\", name", &b64, false, Some("PW")))
            .unwrap();
        let mut rows = Vec::new();
        read_table(doc.to_string().as_bytes(), |r| rows.push(r.unwrap()));
        assert_eq!(rows.len(), 1);
        assert_eq!(&*rows[0].user_name, "EX\\\"odd\", name");
        assert!(!rows[0].enabled);
        assert_eq!(rows[0].password_env.as_deref(), Some("PW"));
    }

    #[test]
    fn a_table_without_a_usable_header_is_not_edited() {
        assert!(matches!(
            TableDocument::parse("\n\n"),
            Err(TableEditError::Unreadable(_))
        ));
        let e = TableDocument::parse("userName,colour\n").unwrap_err();
        assert!(e.to_string().contains("unknown column `colour`"), "{e}");
    }
}
