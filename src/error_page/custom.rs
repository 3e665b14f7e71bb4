//! `[site.http_errors]`: IIS `<httpErrors>` — the error mode and custom pages per status and
//! sub-status. `File` pages are read once at configuration load (a missing file is a
//! configuration error, never a surprise at request time); `ExecuteURL` pages are fetched from
//! the site's backend when needed.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// `[site.http_errors]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpErrors {
    /// IIS `errorMode`: `DetailedLocalOnly` (default), `Detailed` or `Custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<String>,
    /// IIS `<error>` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<RawHttpError>,
}

/// `[[site.http_errors.error]]`: IIS `<error statusCode subStatusCode path responseMode>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpError {
    /// HTTP status, 400–599.
    pub status_code: u16,
    /// IIS sub-status; absent or -1 for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_status_code: Option<i32>,
    /// `File`: an HTML file; `ExecuteURL`: a URL path on the site's backend.
    pub path: String,
    /// `File` (default) or `ExecuteURL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
}

/// IIS `errorMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorMode {
    /// Detailed page for local clients, custom (or short) page for remote ones.
    #[default]
    DetailedLocalOnly,
    /// Detailed page for everyone.
    Detailed,
    /// Custom (or short) page for everyone.
    Custom,
}

/// A custom page's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageBody {
    /// The file's contents, read at load.
    File(Bytes),
    /// A path on the site's backend (`/errors/403.html`).
    ExecuteUrl(String),
}

/// One custom page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPage {
    /// Status it answers.
    pub status: u16,
    /// Sub-status, `None` for any.
    pub substatus: Option<u16>,
    /// The page.
    pub body: PageBody,
}

/// A site's validated `<httpErrors>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpErrors {
    /// Which page a client gets.
    pub mode: ErrorMode,
    /// Custom pages in file order.
    pub pages: Vec<CustomPage>,
}

impl HttpErrors {
    /// The custom page for a status: an exact sub-status entry first, else an any-sub-status
    /// one (as IIS chooses).
    pub fn find(&self, status: u16, substatus: u16) -> Option<&PageBody> {
        self.pages
            .iter()
            .find(|p| p.status == status && p.substatus == Some(substatus))
            .or_else(|| {
                self.pages
                    .iter()
                    .find(|p| p.status == status && p.substatus.is_none())
            })
            .map(|p| &p.body)
    }

    /// Whether a client gets the detailed page.
    pub fn detailed_for(&self, local: bool) -> bool {
        match self.mode {
            ErrorMode::Detailed => true,
            ErrorMode::DetailedLocalOnly => local,
            ErrorMode::Custom => false,
        }
    }
}

/// Validates a site's `http_errors`; `errors` get `(key suffix, reason)`, `files` every file
/// read (for the watcher).
pub fn build(
    raw: Option<&RawHttpErrors>,
    base: &Path,
    errors: &mut Vec<(String, String)>,
    files: &mut Vec<PathBuf>,
) -> HttpErrors {
    let Some(raw) = raw else {
        return HttpErrors::default();
    };
    let mode = match raw.error_mode.as_deref().map(str::trim) {
        None => ErrorMode::DetailedLocalOnly,
        Some(m) if m.eq_ignore_ascii_case("DetailedLocalOnly") => ErrorMode::DetailedLocalOnly,
        Some(m) if m.eq_ignore_ascii_case("Detailed") => ErrorMode::Detailed,
        Some(m) if m.eq_ignore_ascii_case("Custom") => ErrorMode::Custom,
        Some(other) => {
            errors.push((
                ".error_mode".into(),
                format!(
                    "unknown error mode `{other}` (IIS modes: DetailedLocalOnly, Detailed, Custom)"
                ),
            ));
            ErrorMode::DetailedLocalOnly
        }
    };
    let mut pages = Vec::new();
    for (i, e) in raw.error.iter().enumerate() {
        let key = format!(".error[{i}]");
        if !(400..=599).contains(&e.status_code) {
            errors.push((
                format!("{key}.status_code"),
                format!("{} is not an error status (400-599)", e.status_code),
            ));
            continue;
        }
        let substatus = match e.sub_status_code {
            None | Some(-1) => None,
            Some(n) => match u16::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push((
                        format!("{key}.sub_status_code"),
                        format!("{n} is not a sub-status (0-65535, or -1 for any)"),
                    ));
                    continue;
                }
            },
        };
        let mode = e.response_mode.as_deref().unwrap_or("File").trim();
        let body = if mode.eq_ignore_ascii_case("File") {
            let path = base.join(e.path.trim());
            match std::fs::read(&path) {
                Ok(bytes) => {
                    files.push(path);
                    PageBody::File(Bytes::from(bytes))
                }
                Err(err) => {
                    errors.push((
                        format!("{key}.path"),
                        format!("{}: cannot read the error page: {err}", path.display()),
                    ));
                    continue;
                }
            }
        } else if mode.eq_ignore_ascii_case("ExecuteURL") {
            if !e.path.starts_with('/') || e.path.contains("://") {
                errors.push((
                    format!("{key}.path"),
                    "an ExecuteURL path is a URL path on the site's backend, starting with `/`"
                        .into(),
                ));
                continue;
            }
            PageBody::ExecuteUrl(e.path.clone())
        } else {
            errors.push((
                format!("{key}.response_mode"),
                format!(
                    "`{mode}` is not supported (File, ExecuteURL; IIS Redirect is not emulated)"
                ),
            ));
            continue;
        };
        pages.push(CustomPage {
            status: e.status_code,
            substatus,
            body,
        });
    }
    HttpErrors { mode, pages }
}
