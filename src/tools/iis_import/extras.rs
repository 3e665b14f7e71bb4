//! The site's id, its `<logFile>` (over `<siteDefaults>`) and its `<httpErrors>` entries for
//! 401.x/403.x, as `id`, `[site.log_file]` and `[site.http_errors]`.
//!
//! These keys belong to the W3C log and error page features, whose types live with them
//! (`crate::w3c`, `crate::error_page`), so they are rendered here as TOML tables of their own
//! and added to the emitted text rather than to [`crate::config::raw::RawSite`].

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use super::inherit::is_prefix;
use super::xml::{Fragment, HttpError, LogFile, Op, Site};
use crate::config::raw::{RawLocation, RawSite};
use crate::error_page::RawHttpErrors;
use crate::error_page::custom::RawHttpError;

/// What one imported site carries beyond [`crate::config::raw::RawSite`].
#[derive(Debug, Clone, Default)]
pub struct SiteExtras {
    /// IIS site id (`W3SVC<id>`).
    pub id: Option<u32>,
    /// `[site.log_file]`.
    pub log_file: Option<Table>,
    /// `[site.http_errors]` with its `[[site.http_errors.error]]` entries.
    pub http_errors: Option<Table>,
    /// The https bindings as `(bindingInformation, sslFlags)`, to find the site's http.sys
    /// bindings in a `netsh http show sslcert` dump.
    pub https_bindings: Vec<(String, Option<String>)>,
}

/// A path written for Windows (`%SystemDrive%\...`, `D:\...`): kept as is, with a warning.
fn windows_path(path: &str) -> bool {
    path.contains('%')
        || path.contains('\\')
        || path.as_bytes().get(1) == Some(&b':') && path.as_bytes()[0].is_ascii_alphabetic()
}

/// The extras of `site`, with what could not be carried reported.
pub(super) fn site_extras(
    site: &Site,
    log_defaults: Option<&LogFile>,
    fragments: &[Fragment],
    warnings: &mut Vec<String>,
    untranslated: &mut Vec<String>,
) -> SiteExtras {
    SiteExtras {
        id: site.id,
        log_file: log_file(site, log_defaults, warnings, untranslated),
        http_errors: http_errors(site, fragments, warnings, untranslated),
        https_bindings: site
            .bindings
            .iter()
            .filter(|b| b.protocol.eq_ignore_ascii_case("https"))
            .map(|b| (b.information.clone(), b.ssl_flags.clone()))
            .collect(),
    }
}

fn log_file(
    site: &Site,
    defaults: Option<&LogFile>,
    warnings: &mut Vec<String>,
    untranslated: &mut Vec<String>,
) -> Option<Table> {
    let log = match (&site.log_file, defaults) {
        (None, None) => return None,
        (Some(own), d) => own.over(d),
        (None, Some(d)) => d.clone(),
    };
    if let Some(format) = log.log_format.as_deref()
        && !format.eq_ignore_ascii_case("W3C")
    {
        untranslated.push(format!(
            "site '{}': <logFile logFormat=\"{format}\"> is not translated (certgate writes W3C \
             extended files only)",
            site.name
        ));
        return None;
    }
    let mut t = Table::new();
    t.insert("enabled", value(log.enabled.unwrap_or(true)));
    if let Some(dir) = &log.directory {
        if windows_path(dir) {
            warnings.push(format!(
                "log_file.directory \"{dir}\" is IIS's Windows path, written as is: set a \
                 directory on this machine (the files go to W3SVC<id> below it)"
            ));
        }
        t.insert("directory", value(dir.as_str()));
    }
    if let Some(flags) = &log.log_ext_file_flags {
        t.insert("log_ext_file_flags", value(flags.as_str()));
    }
    if let Some(period) = &log.period {
        t.insert("period", value(period.as_str()));
    }
    if let Some(local) = log.local_time_rollover {
        t.insert("local_time_rollover", value(local));
    }
    Some(t)
}

/// `<httpErrors>` merged as IIS merges it at `path` (site name, then URL segments): the
/// server level, then each `<location>`/web.config level whose path contains it, in IIS merge
/// order (`fragments` are sorted so).
fn merged(fragments: &[Fragment], path: &[String]) -> (Option<String>, Vec<HttpError>) {
    let mut mode: Option<String> = None;
    let mut entries: Vec<HttpError> = Vec::new();
    for frag in fragments {
        let Some(errors) = &frag.http_errors else {
            continue;
        };
        if !is_prefix(&frag.path, path) {
            continue;
        }
        if let Some(m) = &errors.error_mode {
            mode = Some(m.clone());
        }
        for op in &errors.errors {
            match op {
                Op::Clear => entries.clear(),
                Op::Remove { key, .. } => {
                    entries.retain(|e| format!("{}.{}", e.status_code, e.sub_status_code) != *key);
                }
                Op::Add(e) => {
                    entries.retain(|x| {
                        (x.status_code, x.sub_status_code) != (e.status_code, e.sub_status_code)
                    });
                    entries.push(e.clone());
                }
            }
        }
    }
    (mode, entries)
}

/// Reports `<httpErrors>` attributes that are not translated, for the levels exactly at `path`
/// (or, for the site root, every level that applies to it).
fn note_attributes(
    fragments: &[Fragment],
    path: &[String],
    exact: bool,
    untranslated: &mut Vec<String>,
) {
    for frag in fragments {
        let Some(errors) = &frag.http_errors else {
            continue;
        };
        let at = if exact {
            frag.path.len() == path.len() && is_prefix(&frag.path, path)
        } else {
            is_prefix(&frag.path, path)
        };
        if at && !errors.other_attributes.is_empty() {
            untranslated.push(format!(
                "{}: {}: httpErrors@{} not translated",
                frag.at,
                frag.scope,
                errors.other_attributes.join(", @")
            ));
        }
    }
}

/// `<httpErrors>` as it applies at the site's root.
fn http_errors(
    site: &Site,
    fragments: &[Fragment],
    warnings: &mut Vec<String>,
    untranslated: &mut Vec<String>,
) -> Option<Table> {
    let root = [site.name.clone()];
    note_attributes(fragments, &root, false, untranslated);
    let (mode, entries) = merged(fragments, &root);
    let list = translate(
        &format!("site '{}'", site.name),
        &entries,
        warnings,
        untranslated,
    );
    if mode.is_none() && list.is_empty() {
        return None;
    }
    let mut t = Table::new();
    if let Some(m) = mode {
        t.insert("error_mode", value(m));
    }
    if !list.is_empty() {
        let mut tables = ArrayOfTables::new();
        for e in &list {
            let mut t = Table::new();
            t.insert("status_code", value(i64::from(e.status_code)));
            if let Some(sub) = e.sub_status_code {
                t.insert("sub_status_code", value(i64::from(sub)));
            }
            t.insert("path", value(e.path.as_str()));
            if let Some(mode) = &e.response_mode {
                t.insert("response_mode", value(mode.as_str()));
            }
            tables.push(t);
        }
        t.insert("error", Item::ArrayOfTables(tables));
    }
    Some(t)
}

/// `<location path="Site/dir"><httpErrors>` (and a web.config's below the root) as
/// `[site.location.http_errors]`: at each such path, the entries and the error mode that differ
/// from the enclosing path's, since certgate lays a location's pages over the enclosing ones
/// per status and sub-status as IIS merges the collection. A location without a
/// `[[site.location]]` of its own gets one holding only its path and pages (it inherits
/// everything else). An entry removed below the root cannot be expressed, and is reported.
pub(super) fn location_http_errors(
    site: &Site,
    raw: &mut RawSite,
    fragments: &[Fragment],
    warnings: &mut Vec<String>,
    untranslated: &mut Vec<String>,
) {
    let mut paths: Vec<&[String]> = Vec::new();
    for frag in fragments {
        if frag.http_errors.is_some()
            && frag.path.len() > 1
            && frag.path[0].eq_ignore_ascii_case(&site.name)
            && !paths
                .iter()
                .any(|p| p.len() == frag.path.len() && is_prefix(p, &frag.path))
        {
            paths.push(&frag.path);
        }
    }
    paths.sort_by_key(|p| p.len());
    for path in paths {
        let url = format!("/{}", path[1..].join("/"));
        let label = format!("site '{}' location '{url}'", site.name);
        note_attributes(fragments, path, true, untranslated);
        let (parent_mode, parent) = merged(fragments, &path[..path.len() - 1]);
        let (mode, entries) = merged(fragments, path);
        let same = |a: &HttpError, b: &HttpError| {
            (
                a.status_code,
                a.sub_status_code,
                &a.path,
                &a.response_mode,
                &a.prefix_language_file_path,
            ) == (
                b.status_code,
                b.sub_status_code,
                &b.path,
                &b.response_mode,
                &b.prefix_language_file_path,
            )
        };
        for gone in parent.iter().filter(|p| {
            !entries
                .iter()
                .any(|e| (e.status_code, e.sub_status_code) == (p.status_code, p.sub_status_code))
        }) {
            untranslated.push(format!(
                "{label}: the enclosing <error statusCode=\"{}\" subStatusCode=\"{}\"> is \
                 removed here, which certgate cannot express (a location's pages add to and \
                 replace the enclosing ones); that page still applies",
                gone.status_code, gone.sub_status_code
            ));
        }
        let added: Vec<HttpError> = entries
            .into_iter()
            .filter(|e| !parent.iter().any(|p| same(p, e)))
            .collect();
        let error = translate(&label, &added, warnings, untranslated);
        let error_mode = mode.filter(|m| Some(m) != parent_mode.as_ref());
        if error_mode.is_none() && error.is_empty() {
            continue;
        }
        let section = RawHttpErrors { error_mode, error };
        let norm = |p: &str| p.trim_end_matches('/').to_ascii_lowercase();
        match raw
            .locations
            .iter_mut()
            .find(|l| norm(&l.path) == norm(&url))
        {
            Some(location) => location.http_errors = Some(section),
            None => raw.locations.push(RawLocation {
                path: url,
                http_errors: Some(section),
                ..RawLocation::default()
            }),
        }
    }
}

/// The entries certgate can serve: 401.x and 403.x (its own answers), as `File` or
/// `ExecuteURL`, not IIS's stock per-language pages; the rest is reported.
fn translate(
    label: &str,
    entries: &[HttpError],
    warnings: &mut Vec<String>,
    untranslated: &mut Vec<String>,
) -> Vec<RawHttpError> {
    let mut list = Vec::new();
    let mut other_codes: Vec<String> = Vec::new();
    for e in entries {
        let code = if e.sub_status_code < 0 {
            e.status_code.to_string()
        } else {
            format!("{}.{}", e.status_code, e.sub_status_code)
        };
        if e.status_code != 401 && e.status_code != 403 {
            other_codes.push(code);
            continue;
        }
        if let Some(prefix) = &e.prefix_language_file_path {
            // IIS's own per-language pages (%SystemDrive%\inetpub\custerr\<lang>\401.htm):
            // certgate's IIS-style pages stand in for them.
            untranslated.push(format!(
                "{}: {label}: <error statusCode=\"{code}\"> is IIS's stock page \
                 ({prefix}\\<language>\\{}); certgate's own IIS-style page is used",
                e.at, e.path
            ));
            continue;
        }
        let mode = e.response_mode.as_deref().unwrap_or("File");
        let mode = if mode.eq_ignore_ascii_case("File") {
            "File"
        } else if mode.eq_ignore_ascii_case("ExecuteURL") {
            "ExecuteURL"
        } else {
            untranslated.push(format!(
                "{}: {label}: <error statusCode=\"{code}\" responseMode=\"{mode}\"> is not \
                 translated (File and ExecuteURL are)",
                e.at
            ));
            continue;
        };
        if mode == "File" && windows_path(&e.path) {
            warnings.push(format!(
                "{}: {label}: custom error page for {code} \"{}\" is a Windows path, written as \
                 is: copy the file to this machine and set http_errors.error.path",
                e.at, e.path
            ));
        }
        list.push(RawHttpError {
            status_code: e.status_code,
            sub_status_code: (e.sub_status_code >= 0).then_some(e.sub_status_code),
            path: e.path.clone(),
            response_mode: Some(mode.to_owned()),
        });
    }
    if !other_codes.is_empty() {
        untranslated.push(format!(
            "{label}: <httpErrors> entries for {} are not translated (certgate's custom pages \
             cover its own 401.x and 403.x answers)",
            other_codes.join(", ")
        ));
    }
    list
}

/// Adds each site's extras to the emitted TOML (`[[site]]` tables in the same order).
pub(super) fn render(text: &str, extras: &[SiteExtras]) -> String {
    if extras
        .iter()
        .all(|e| e.id.is_none() && e.log_file.is_none() && e.http_errors.is_none())
    {
        return text.to_owned();
    }
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return text.to_owned();
    };
    let Some(sites) = doc.get_mut("site").and_then(Item::as_array_of_tables_mut) else {
        return text.to_owned();
    };
    for (site, extra) in sites.iter_mut().zip(extras) {
        if let Some(id) = extra.id {
            // Right after the name, as an IIS administrator reads a <site> element.
            let rest: Vec<(String, Item)> = site
                .iter()
                .filter(|(k, _)| *k != "name")
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect();
            site.retain(|k, _| k == "name");
            site.insert("id", value(i64::from(id)));
            for (k, v) in rest {
                site.insert(&k, v);
            }
        }
        for (key, table) in [
            ("log_file", &extra.log_file),
            ("http_errors", &extra.http_errors),
        ] {
            if let Some(t) = table {
                let mut t = t.clone();
                t.set_position(site.position());
                site.insert(key, Item::Table(t));
            }
        }
    }
    doc.to_string()
}

/// `text` without the keys this module adds, for tests that read the output back into
/// [`crate::config::raw::RawConfig`] before the W3C log and error page keys are part of it.
#[cfg(test)]
pub(super) fn without_extras(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return text.to_owned();
    };
    if let Some(sites) = doc.get_mut("site").and_then(Item::as_array_of_tables_mut) {
        for site in sites.iter_mut() {
            site.retain(|k, _| !matches!(k, "id" | "log_file" | "http_errors"));
        }
    }
    doc.to_string()
}
