//! The fast path for files with very many one-to-one mappings.
//!
//! A million `[[...one_to_one_mappings]]` blocks make a file of most of a gigabyte, and the
//! general TOML parser spends seconds on it: a table, a map and an owned string per entry, then
//! serde copies every certificate again. Those blocks are also the most regular text in the
//! file, so this module reads them itself: runs of consecutive blocks in exactly the form
//! `certgate import-iis` and the docs write,
//!
//! ```toml
//! [[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
//! user_name = "EXAMPLE\\alice"
//! certificate = "MIIC..."
//! ```
//!
//! (the header alone on its line at the start of the line; then only blank lines, comment
//! lines, and `key = value` lines with a known key, each at most once, whose value is a
//! one-line string or `true`/`false` of the right type; basic strings may escape only `\\` and
//! `\"`). Each run is replaced by its header and one placeholder entry whose `user_name` is a
//! per-load random marker naming the run, and the shortened text goes to the TOML parser as
//! usual; the loader then puts the run's entries where the placeholder is, so positions (and
//! with them every key path) are those of the file as written.
//!
//! Anything the scanner does not follow exactly — another header form, a quoted key, another
//! escape, a trailing comment — is simply left in the text for the TOML parser, so the result
//! is the same TOML would give, only faster. To know that a header line is really at the top
//! level (not inside a multi-line string or array), the text around runs is lexed for strings,
//! comments and brackets; anything surprising there gives up on the fast path for the whole
//! file. When the shortened text has any error, the loader parses the file as written instead,
//! so error messages and positions are always the TOML parser's.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};

use crate::config::raw::RawOneToOne;

/// The array-of-tables headers whose blocks are read here: a site's and a location's section.
const HEADERS: [&str; 2] = [
    "[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]",
    "[[site.location.iis_client_certificate_mapping_authentication.one_to_one_mappings]]",
];

/// One `one_to_one_mappings` entry as read by the fast path: [`RawOneToOne`] with its strings
/// borrowed from the file text where they need no unescaping.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FastOneToOne<'t> {
    pub user_name: Cow<'t, str>,
    pub certificate: Option<Cow<'t, str>>,
    pub certificate_file: Option<Cow<'t, str>>,
    pub enabled: Option<bool>,
    pub password_env: Option<Cow<'t, str>>,
    pub password_file: Option<Cow<'t, str>>,
}

/// The file text with its runs of mapping blocks taken out.
pub(super) struct Extracted<'t> {
    /// The text to parse: each run replaced by one placeholder entry.
    pub text: String,
    /// Each run's entries, in file order; the placeholder's `user_name` is `marker` and the
    /// run's position here.
    pub runs: Vec<Vec<FastOneToOne<'t>>>,
    /// The placeholder prefix.
    pub marker: String,
}

/// The run a parsed entry stands for, if it is a placeholder.
pub(super) fn placeholder_run(marker: &str, runs: usize, entry: &RawOneToOne) -> Option<usize> {
    if marker.is_empty() {
        return None;
    }
    let index = entry.user_name.strip_prefix(marker)?.parse().ok()?;
    (index < runs).then_some(index)
}

/// Takes the runs of mapping blocks out of `text`; `None` when there are none, or when the text
/// around them is anything the lexer here does not follow.
pub(super) fn extract(text: &str) -> Option<Extracted<'_>> {
    let b = text.as_bytes();
    // Cheap exit for files without a single block in the canonical form.
    if !HEADERS.iter().any(|h| text.contains(h)) {
        return None;
    }
    let state = RandomState::new();
    let marker = format!(
        "certgate-fast-path-{:016x}{:016x}-",
        state.hash_one(1u8),
        state.hash_one(2u8)
    );
    let mut out = String::new();
    let mut runs = Vec::new();
    let mut copied = 0;
    let mut pos = 0;
    // Open `[` and `{` of values (arrays and inline tables may span lines).
    let mut depth = 0usize;
    let mut line_start = true;
    while pos < b.len() {
        if line_start && depth == 0 {
            line_start = false;
            if let Some(header) = HEADERS.iter().find(|h| header_line(b, pos, h).is_some()) {
                let (end, entries) = run(text, pos, header);
                if !entries.is_empty() {
                    out.push_str(&text[copied..pos]);
                    let _ = writeln!(out, "{header}\nuser_name = \"{marker}{}\"", runs.len());
                    runs.push(entries);
                    copied = end;
                    pos = end;
                    line_start = true;
                    continue;
                }
            }
            while pos < b.len() && matches!(b[pos], b' ' | b'\t') {
                pos += 1;
            }
            if b.get(pos) == Some(&b'[') {
                // A table header: its keys may be quoted, and it ends with its line.
                pos = header_end(text, pos)?;
                line_start = true;
            }
            continue;
        }
        match b[pos] {
            b'"' | b'\'' => pos = string_end(b, pos)?,
            b'#' => pos = line_end(text, pos),
            b'[' | b'{' => {
                depth += 1;
                pos += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                pos += 1;
            }
            b'\n' => {
                pos += 1;
                line_start = depth == 0;
            }
            _ => pos += 1,
        }
    }
    if runs.is_empty() || depth != 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(Extracted {
        text: out,
        runs,
        marker,
    })
}

/// Consecutive blocks under `header` from `pos`: where the run ends (the start of the first
/// line that is not part of it) and its entries.
fn run<'t>(text: &'t str, mut pos: usize, header: &str) -> (usize, Vec<FastOneToOne<'t>>) {
    let b = text.as_bytes();
    let mut entries = Vec::new();
    while let Some(body) = header_line(b, pos, header) {
        let Some((end, entry)) = block(text, body) else {
            break;
        };
        entries.push(entry);
        pos = end;
    }
    (pos, entries)
}

/// When `pos` starts a line that is exactly `header` (trailing spaces allowed), the start of the
/// next line.
fn header_line(b: &[u8], pos: usize, header: &str) -> Option<usize> {
    let rest = b.get(pos..)?.strip_prefix(header.as_bytes())?;
    let mut at = pos + header.len();
    let trailing = rest
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    at += trailing;
    next_line(b, at)
}

/// At the end of a line's content (`\n`, `\r\n` or the end of the text), the start of the next
/// line; `None` anywhere else.
fn next_line(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at..)? {
        [] => Some(at),
        [b'\n', ..] => Some(at + 1),
        [b'\r', b'\n', ..] => Some(at + 2),
        _ => None,
    }
}

/// The key/value lines of one block, from `pos` (just after its header line) to the next
/// header line or the end of the text: where the block ends and its entry.
fn block(text: &str, mut pos: usize) -> Option<(usize, FastOneToOne<'_>)> {
    let b = text.as_bytes();
    let blank = |c: &u8| matches!(c, b' ' | b'\t');
    let mut entry = FastOneToOne::default();
    let mut seen = [false; 6];
    while pos < b.len() {
        let start = pos + b[pos..].iter().take_while(|c| blank(c)).count();
        match b.get(start..) {
            Some([] | [b'\n', ..] | [b'\r', b'\n', ..]) => {
                pos = next_line(b, start)?;
                continue;
            }
            Some([b'[', ..]) => return Some((pos, entry)),
            Some([b'#', ..]) => {
                let end = line_end(text, start);
                let comment = text[start..end]
                    .strip_suffix('\r')
                    .unwrap_or(&text[start..end]);
                if !comment.bytes().all(|c| c == b'\t' || !c.is_ascii_control()) {
                    return None;
                }
                pos = next_line(b, end)?;
                continue;
            }
            _ => {}
        }
        let key_len = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
            .count();
        let slot = match &text[start..start + key_len] {
            "user_name" => 0,
            "certificate" => 1,
            "certificate_file" => 2,
            "enabled" => 3,
            "password_env" => 4,
            "password_file" => 5,
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        let mut at = start + key_len;
        at += b[at..].iter().take_while(|c| blank(c)).count();
        if b.get(at) != Some(&b'=') {
            return None;
        }
        at += 1;
        at += b[at..].iter().take_while(|c| blank(c)).count();
        let value_end;
        if slot == 3 {
            let (value, len) = if b[at..].starts_with(b"true") {
                (true, 4)
            } else if b[at..].starts_with(b"false") {
                (false, 5)
            } else {
                return None;
            };
            entry.enabled = Some(value);
            value_end = at + len;
        } else {
            let (value, end) = string_at(text, at)?;
            match slot {
                0 => entry.user_name = value,
                1 => entry.certificate = Some(value),
                2 => entry.certificate_file = Some(value),
                4 => entry.password_env = Some(value),
                _ => entry.password_file = Some(value),
            }
            value_end = end;
        }
        let trailing = b[value_end..].iter().take_while(|c| blank(c)).count();
        pos = next_line(b, value_end + trailing)?;
    }
    Some((pos, entry))
}

/// The one-line string value starting at `at` and where it ends. The common case, a basic
/// string without escapes (every certificate), is found in one vectorised pass; anything else
/// goes through [`string`] with its line.
fn string_at(text: &str, at: usize) -> Option<(Cow<'_, str>, usize)> {
    let b = text.as_bytes();
    if b.get(at) == Some(&b'"') && !b[at..].starts_with(b"\"\"\"") {
        let close = at + 1 + first_special(&b[at + 1..]);
        match b.get(close) {
            Some(b'"') => return Some((Cow::Borrowed(&text[at + 1..close]), close + 1)),
            Some(b'\\') => {}
            _ => return None,
        }
    }
    // Escapes or a literal string: the value is the rest of the line, less trailing blanks.
    let end = line_end(text, at);
    let line = &text[at..end];
    let line = line.strip_suffix('\r').unwrap_or(line);
    let value = line.trim_end_matches([' ', '\t']);
    Some((string(value)?, at + value.len()))
}

/// A whole one-line value that is a TOML basic string escaping at most `\\` and `\"`, or a
/// literal string.
fn string(value: &str) -> Option<Cow<'_, str>> {
    let b = value.as_bytes();
    if b.len() < 2 || b.starts_with(b"\"\"\"") || b.starts_with(b"'''") {
        return None;
    }
    let (quote, inner) = (b[0], &value[1..value.len() - 1]);
    if b[b.len() - 1] != quote {
        return None;
    }
    match quote {
        b'"' if plain(inner.as_bytes()) => Some(Cow::Borrowed(inner)),
        b'"' => unescape(inner).map(Cow::Owned),
        b'\''
            if !inner
                .bytes()
                .any(|c| c == b'\'' || (c != b'\t' && c.is_ascii_control())) =>
        {
            Some(Cow::Borrowed(inner))
        }
        _ => None,
    }
}

/// Whether a byte needs attention in a TOML basic string: a quote, a backslash, or a control
/// character other than tab (a line end included).
fn special(c: u8) -> bool {
    (c < 0x20 && c != b'\t') | (c == b'"') | (c == b'\\') | (c == 0x7f)
}

/// Whether basic-string content needs no attention (no [`special`] byte).
fn plain(b: &[u8]) -> bool {
    first_special(b) == b.len()
}

/// The position of the first [`special`] byte, or the length. Certificates are hundreds of bytes
/// without one, so whole chunks are tested with a fold the compiler vectorises.
fn first_special(b: &[u8]) -> usize {
    let mut at = 0;
    for chunk in b.chunks(64) {
        if chunk.iter().fold(false, |any, &c| any | special(c)) {
            return at
                + chunk
                    .iter()
                    .position(|&c| special(c))
                    .unwrap_or(chunk.len());
        }
        at += chunk.len();
    }
    b.len()
}

/// Basic-string content with `\\` and `\"` escapes; `None` for anything else TOML would need to
/// judge (other escapes, a bare quote, control characters).
fn unescape(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                c @ ('\\' | '"') => out.push(c),
                _ => return None,
            },
            '"' => return None,
            c if c != '\t' && c.is_ascii_control() => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The position of the `\n` ending the line that contains `pos`, or the end of the text.
fn line_end(text: &str, pos: usize) -> usize {
    // `str::find(char)` uses the standard library's word-at-a-time memchr.
    text[pos..].find('\n').map_or(text.len(), |i| pos + i)
}

/// Past the end of a table header line starting at `pos` (`[`), its quoted keys skipped.
fn header_end(text: &str, mut pos: usize) -> Option<usize> {
    let b = text.as_bytes();
    while pos < b.len() {
        match b[pos] {
            b'"' | b'\'' => pos = string_end(b, pos)?,
            b'#' => pos = line_end(text, pos),
            b'\n' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
    Some(pos)
}

/// Past the end of the string starting at `pos`, of any of the four kinds. `None` when it does
/// not end as TOML requires, or when what follows it is not something that can follow a string
/// (so the lexer here can never disagree with TOML's about where the string ends).
fn string_end(b: &[u8], pos: usize) -> Option<usize> {
    let quote = b[pos];
    let multi = b.get(pos..pos + 3) == Some(&[quote; 3][..]);
    let mut at = if multi { pos + 3 } else { pos + 1 };
    loop {
        let c = *b.get(at)?;
        if c == b'\\' && quote == b'"' {
            at += 2;
        } else if c == quote {
            if !multi {
                at += 1;
                break;
            }
            if b.get(at..at + 3) == Some(&[quote; 3][..]) {
                // Up to two more quotes belong to the content.
                at += 3;
                let extra = b[at..].iter().take_while(|c| **c == quote).count();
                if extra > 2 {
                    return None;
                }
                at += extra;
                break;
            }
            at += 1;
        } else if c == b'\n' && !multi {
            return None;
        } else {
            at += 1;
        }
    }
    let follower = b[at..].iter().find(|c| !matches!(c, b' ' | b'\t'));
    match follower {
        None | Some(b',' | b']' | b'}' | b'#' | b'\n' | b'\r' | b'=' | b'.') => Some(at),
        Some(_) => None,
    }
}

impl<'t> From<&'t RawOneToOne> for FastOneToOne<'t> {
    fn from(raw: &'t RawOneToOne) -> Self {
        Self {
            user_name: Cow::Borrowed(&raw.user_name),
            certificate: raw.certificate.as_deref().map(Cow::Borrowed),
            certificate_file: raw.certificate_file.as_deref().map(Cow::Borrowed),
            enabled: raw.enabled,
            password_env: raw.password_env.as_deref().map(Cow::Borrowed),
            password_file: raw.password_file.as_deref().map(Cow::Borrowed),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::config::raw::RawConfig;

    const SITE: &str = "[[site]]\nname = \"a\"\n\n[site.iis_client_certificate_mapping_authentication]\nenabled = true\n";
    const H: &str = HEADERS[0];

    /// The file as the loader would see it through the fast path: the parsed shortened text with
    /// each placeholder replaced by its run's entries.
    fn through_fast_path(text: &str) -> Option<Vec<Vec<RawOneToOne>>> {
        let extracted = extract(text)?;
        let raw: RawConfig = toml::from_str(&extracted.text).unwrap();
        let own = |e: &FastOneToOne<'_>| RawOneToOne {
            user_name: e.user_name.to_string(),
            certificate: e.certificate.as_deref().map(str::to_owned),
            certificate_file: e.certificate_file.as_deref().map(str::to_owned),
            enabled: e.enabled,
            password_env: e.password_env.as_deref().map(str::to_owned),
            password_file: e.password_file.as_deref().map(str::to_owned),
        };
        Some(lists(&raw, |entry| {
            match placeholder_run(&extracted.marker, extracted.runs.len(), entry) {
                Some(run) => extracted.runs[run].iter().map(own).collect(),
                None => vec![entry.clone()],
            }
        }))
    }

    fn lists(
        raw: &RawConfig,
        expand: impl Fn(&RawOneToOne) -> Vec<RawOneToOne>,
    ) -> Vec<Vec<RawOneToOne>> {
        let mut out = Vec::new();
        for site in &raw.sites {
            let sections = std::iter::once(&site.iis_client_certificate_mapping_authentication)
                .chain(
                    site.locations
                        .iter()
                        .map(|l| &l.iis_client_certificate_mapping_authentication),
                );
            for section in sections.flatten() {
                out.push(
                    section
                        .one_to_one_mappings
                        .iter()
                        .flat_map(&expand)
                        .collect(),
                );
            }
        }
        out
    }

    fn through_toml(text: &str) -> Result<Vec<Vec<RawOneToOne>>, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(lists(&raw, |e| vec![e.clone()]))
    }

    fn key(lists: &[Vec<RawOneToOne>]) -> String {
        format!("{lists:?}")
    }

    /// The fast path gives exactly what TOML gives, and takes `blocks` blocks out.
    fn same(text: &str, blocks: usize) {
        let expected = through_toml(text).unwrap();
        let extracted = extract(text);
        let taken: usize = extracted
            .as_ref()
            .map_or(0, |e| e.runs.iter().map(Vec::len).sum());
        assert_eq!(taken, blocks, "blocks read by the fast path in:\n{text}");
        if let Some(fast) = through_fast_path(text) {
            assert_eq!(key(&fast), key(&expected), "{text}");
        }
    }

    #[test]
    fn reads_canonical_blocks_and_keeps_positions() {
        let text = format!(
            "{SITE}\n{H}\nuser_name = \"EXAMPLE\\\\alice\"\ncertificate = \"QUJD\"\n\n\
             {H}\r\nuser_name = 'EXAMPLE\\bob'  \r\n# a comment\r\ncertificate = \"REVG\"\r\n\
             enabled = false\npassword_env = \"PW\"\n\n\
             {H}\nuser_name = \"x\"\ncertificate = \"QUJD\" # trailing comments go to TOML\n\
             {H}\n  user_name   =   \"carol\"\n\tcertificate_file = \"c.crt\"\npassword_file=\"p\"\n\
             [[site.location]]\npath = \"/a\"\n\
             [[site.location.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
             user_name = \"dave \\\"the\\\" admin\"\ncertificate = \"R0hJ\"\n\
             [site.location.iis_client_certificate_mapping_authentication]\nenabled = true\n"
        );
        same(&text, 4);
        let fast = through_fast_path(&text).unwrap();
        assert_eq!(fast[0].len(), 4);
        assert_eq!(fast[0][0].user_name, "EXAMPLE\\alice");
        assert_eq!(fast[0][1].user_name, "EXAMPLE\\bob");
        assert_eq!(fast[0][1].enabled, Some(false));
        assert_eq!(fast[0][2].user_name, "x");
        assert_eq!(fast[1][0].user_name, "dave \"the\" admin");
    }

    #[test]
    fn leaves_everything_else_to_toml() {
        let cases = [
            format!("{SITE}{H}\nuser_name = \"a\\tb\"\n"),
            format!("{SITE}{H}\n\"user_name\" = \"a\"\n"),
            format!("{SITE}{H}\nuser_name = \"a\"\nuser_name = \"b\"\n"),
            format!("{SITE}{H}\nuser_name = \"\"\"a\"\"\"\n"),
            format!("{SITE}{H}\nenabled = \"true\"\n"),
            format!("{SITE}{H}\nuser = \"a\"\n"),
            format!("{SITE}{H}\nuser_name = \"a\" \"b\"\n"),
            format!("{SITE}{H}\nuser_name = \"a\u{1}\"\n"),
            format!("{SITE}{H}\ncertificate = 'a'b'\n"),
            format!("{SITE}{H}\nuser_name.x = \"a\"\n"),
            format!("{SITE}{H} # comment\nuser_name = \"a\"\n"),
            format!("{SITE} {H}\nuser_name = \"a\"\n"),
        ];
        for text in &cases {
            assert!(
                extract(text).is_none(),
                "fast path read a block it should leave to TOML:\n{text}"
            );
        }
    }

    #[test]
    fn edge_forms_agree_with_toml() {
        // Read by the fast path, with TOML's values.
        for (body, blocks) in [
            ("user_name = \"a\tb\"\ncertificate = \"QUJD\"\n", 1),
            ("user_name = \"a\\\\b\"\t\r\ncertificate = \"QUJD\"", 1),
            ("user_name=\"a\"\nenabled=true   \n\n\n", 1),
            ("\n  # only a comment\n\n", 1),
            ("certificate = \"\"\nuser_name = ''\n", 1),
            ("user_name = \"é ü \u{1F600}\"\n", 1),
        ] {
            same(&format!("{SITE}{H}\n{body}"), blocks);
        }
        // Left to TOML.
        for body in [
            "enabled = trueish\n",
            "enabled = true # yes\n",
            "user_name = \"a\\\\b\" # c\n",
            "user_name = \"a\"\rcertificate = \"b\"\n",
            "user_name = \"a\nb\"\n",
            "user_name = \"a\u{7f}\"\n",
            "user_name = 'a\u{1}'\n",
            "# bad \u{1} comment\n",
            "user_name = \"a\\\"\n",
        ] {
            let text = format!("{SITE}{H}\n{body}");
            assert!(extract(&text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn headers_inside_strings_and_arrays_are_not_headers() {
        let block = format!("{H}\nuser_name = \"a\"\ncertificate = \"QUJD\"\n");
        for text in [
            format!("{SITE}x = \"\"\"\n{block}\"\"\"\n"),
            format!("{SITE}x = '''\n{block}'''\n"),
            format!("{SITE}x = \"\"\"\\\"\"\"\n{block}\"\"\"\n"),
            format!("{SITE}x = [\n\"a\",\n]\ny = \"\"\"a\"\"\"\"\"\n{block}"),
        ] {
            let taken = extract(&text).map_or(0, |e| e.runs.len());
            if through_toml(&text).is_ok() {
                same(&text, taken);
            }
        }
        // Inside a multi-line string: not taken.
        let text = format!("[server]\nx = \"\"\"\n{block}\"\"\"\n");
        assert!(extract(&text).is_none());
        // An unterminated string or unbalanced brackets: the whole file goes to TOML.
        assert!(extract(&format!("{SITE}x = \"\"\"\n{block}")).is_none());
        assert!(extract(&format!("{SITE}x = [\n{block}")).is_none());
        assert!(extract(&format!("{SITE}x = ]\n{block}")).is_none());
    }

    #[test]
    fn a_block_toml_would_reject_is_left_in_place() {
        // The second block is not in the simple form, so the run stops before it; the third
        // starts a new run.
        let text = format!(
            "{SITE}{H}\nuser_name = \"a\"\n{H}\nuser_name = \"b\"\nbogus = 1\n\
             {H}\nuser_name = \"c\"\n"
        );
        let extracted = extract(&text).unwrap();
        assert_eq!(extracted.runs.len(), 2);
        assert!(extracted.text.contains("bogus = 1"));
        assert!(toml::from_str::<RawConfig>(&extracted.text).is_err());
        assert!(through_toml(&text).is_err());
    }

    #[test]
    fn plain_matches_the_definition() {
        for c in 0u8..=127 {
            let s = [b'a', c, b'b'];
            let expected = !(c == b'"' || c == b'\\' || (c != b'\t' && c.is_ascii_control()));
            assert_eq!(plain(&s), expected, "{c:#x}");
        }
        let long = vec![b'A'; 1000];
        assert!(plain(&long));
        let mut bad = long.clone();
        bad[999] = b'"';
        assert!(!plain(&bad));
    }

    /// The loader gives the same runtime and the same errors, in the same order, whether the
    /// blocks go through the fast path or (with a comment after each header, which the fast
    /// path leaves alone) through TOML.
    #[test]
    fn the_loader_answers_the_same_either_way() {
        use crate::config::Runtime;
        use crate::pki::{Authority, ClientSpec};
        use crate::tls::server::ResumptionKeys;
        use base64::Engine;

        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("fast CA").unwrap();
        let server = ca.server(&["localhost"]).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &ca.cert_pem).unwrap();
        std::fs::write(dir.path().join("server.crt"), &server.cert_pem).unwrap();
        std::fs::write(dir.path().join("server.key"), &server.key_pem).unwrap();
        let certs: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| ca.client(&ClientSpec::new(n)).unwrap())
            .collect();
        std::fs::write(dir.path().join("d.crt"), &certs[3].cert_pem).unwrap();
        let b64 = |i: usize| base64::engine::general_purpose::STANDARD.encode(&certs[i].der);
        let site = |mappings: &str| {
            format!(
                "[server]\nlisten = [\"127.0.0.1:0\"]\n[[site]]\nname = \"s\"\n\
                 certificate = \"server.crt\"\nprivate_key = \"server.key\"\n\
                 client_ca = [\"ca.crt\"]\nssl_flags = \"Ssl, SslNegotiateCert\"\n\
                 backend = \"http://127.0.0.1:9\"\n\
                 [site.iis_client_certificate_mapping_authentication]\nenabled = true\n{mappings}\
                 [[site.location]]\npath = \"/x\"\n{}\nuser_name = \"loc\"\ncertificate = \"{}\"\n",
                HEADERS[1],
                b64(1)
            )
        };
        let mappings = [
            format!(
                "user_name = \"EXAMPLE\\\\a\"\ncertificate = \"{}\"\n",
                b64(0)
            ),
            format!(
                "user_name = 'EXAMPLE\\b'\ncertificate = '{}'\nenabled = true\n",
                b64(1)
            ),
            format!(
                "user_name = \"off\"\ncertificate = \"{}\"\nenabled = false\n",
                b64(2)
            ),
            "user_name = \"bad\"\ncertificate = \"MIIC!!notbase64\"\n".to_owned(),
            "user_name = \"bad\"\ncertificate = \"aGVsbG8gd29ybGQ=\"\n".to_owned(),
            "user_name = \"nothing\"\n".to_owned(),
            format!("user_name = \"  \"\ncertificate = \"{}\"\n", b64(2)),
            format!("user_name = \"dup\"\ncertificate = \"{}\"\n", b64(0)),
            "user_name = \"file\"\ncertificate_file = \"d.crt\"\n".to_owned(),
            "user_name = \"missing\"\ncertificate_file = \"nope.crt\"\n".to_owned(),
            format!(
                "user_name = \"pw\"\ncertificate = \"{}\"\npassword_env = \"CERTGATE_FAST_TEST_UNSET\"\n",
                b64(2)
            ),
            format!(
                "user_name = \"both\"\ncertificate = \"{}\"\ncertificate_file = \"d.crt\"\n",
                b64(2)
            ),
        ];
        let fast: String = mappings.iter().map(|m| format!("{H}\n{m}")).collect();
        let slow: String = mappings
            .iter()
            .map(|m| format!("{H} # slow\n{m}"))
            .collect();
        let slow_location =
            |text: String| text.replace(HEADERS[1], &format!("{} # slow", HEADERS[1]));
        let (fast, slow) = (site(&fast), slow_location(site(&slow)));
        assert_eq!(
            extract(&fast)
                .unwrap()
                .runs
                .iter()
                .map(Vec::len)
                .sum::<usize>(),
            13
        );
        assert!(extract(&slow).is_none());

        let load = |text: &str| {
            let path = dir.path().join("certgate.toml");
            Runtime::from_toml(text, &path, &ResumptionKeys::default())
        };
        let errors = |text: &str| {
            let errors = load(text).unwrap_err().0;
            errors
                .iter()
                .map(|e| format!("{}: {}", e.key, e.reason))
                .collect::<Vec<_>>()
        };
        let fast_errors = errors(&fast);
        assert_eq!(fast_errors, errors(&slow));
        // In entry order, each duplicate right after the entry's other errors.
        let keys: Vec<&str> = fast_errors
            .iter()
            .map(|e| {
                e.split(": ")
                    .next()
                    .unwrap()
                    .rsplit("mappings")
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            keys,
            [
                "[3].certificate",
                "[4].certificate",
                "[5].certificate",
                "[6].user_name",
                "[7]",
                "[9].certificate_file",
                // An unset password_env is only an error where a scope verifies credentials.
                "[10]",
                "[11]"
            ],
            "{fast_errors:#?}"
        );
        assert!(fast_errors.iter().any(|e| {
            e.contains("one_to_one_mappings[4].certificate: decodes, but is not an X.509")
        }));
        assert!(fast_errors.iter().any(|e| e.contains("one_to_one_mappings[7]: the same certificate is already mapped by site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0]")));

        // Without the broken entries both load, to the same index.
        let good = [0, 1, 2, 8];
        let keep = |headers: &[String]| -> String {
            good.iter()
                .map(|&i| format!("{}\n{}", headers[0], mappings[i]))
                .collect()
        };
        let fast = site(&keep(&[H.to_owned()]));
        let slow = slow_location(site(&keep(&[format!("{H} # slow")])));
        let (fast, slow) = (load(&fast).unwrap(), load(&slow).unwrap());
        for runtime in [&fast, &slow] {
            let mappers: Vec<_> = runtime.sites[0].scopes.iter().map(|s| &s.mapper).collect();
            let root = &mappers[1];
            assert_eq!(root.one_to_one.len(), 3);
            let a = root
                .one_to_one
                .lookup(&crate::identity::sha256(&certs[0].der))
                .unwrap();
            assert_eq!(&*a.user_name, "EXAMPLE\\a");
            let b = root
                .one_to_one
                .lookup(&crate::identity::sha256(&certs[1].der))
                .unwrap();
            assert_eq!(&*b.user_name, "EXAMPLE\\b");
            assert_eq!(
                b.source.to_string(),
                "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[1]"
            );
            let d = root
                .one_to_one
                .lookup(&crate::identity::sha256(&certs[3].der))
                .unwrap();
            assert_eq!(
                d.source.to_string(),
                "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[3]"
            );
            assert!(
                root.one_to_one
                    .lookup(&crate::identity::sha256(&certs[2].der))
                    .is_none()
            );
            let location = &mappers[0];
            let loc = location
                .one_to_one
                .lookup(&crate::identity::sha256(&certs[1].der))
                .unwrap();
            assert_eq!(
                loc.source.to_string(),
                "site[0].location[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0]"
            );
        }
    }
}
