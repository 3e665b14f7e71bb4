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

impl ErrorMode {
    /// Whether a client (local: on this machine) gets the detailed page.
    pub fn detailed_for(self, local: bool) -> bool {
        match self {
            Self::Detailed => true,
            Self::DetailedLocalOnly => local,
            Self::Custom => false,
        }
    }
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
        self.mode.detailed_for(local)
    }
}

/// A location's own `[site.location.http_errors]` (IIS `<location path="..."><httpErrors>`),
/// already laid over any enclosing location's: its entries add to the site's and replace a
/// site entry for the same status and sub-status, and its `error_mode`, when set, replaces the
/// site's (IIS merges a child `<httpErrors>` collection into its parent's the same way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationErrors {
    /// `error_mode`, when the location (or an enclosing one) sets it.
    pub mode: Option<ErrorMode>,
    /// The location's pages, then the enclosing locations' pages it does not replace.
    pub pages: Vec<CustomPage>,
}

impl LocationErrors {
    /// `own` (built from the location's raw section, whose `error_mode` was set when
    /// `mode_set`) over the enclosing location's settings.
    pub fn over(own: HttpErrors, mode_set: bool, parent: Option<&LocationErrors>) -> Self {
        let mut pages = own.pages;
        if let Some(parent) = parent {
            for page in &parent.pages {
                if !pages
                    .iter()
                    .any(|p| (p.status, p.substatus) == (page.status, page.substatus))
                {
                    pages.push(page.clone());
                }
            }
        }
        Self {
            mode: if mode_set {
                Some(own.mode)
            } else {
                parent.and_then(|p| p.mode)
            },
            pages,
        }
    }
}

/// The error settings that apply to one request: the site's, under its location's.
#[derive(Debug, Clone, Copy)]
pub struct Effective<'a> {
    site: &'a HttpErrors,
    location: Option<&'a LocationErrors>,
}

impl<'a> Effective<'a> {
    /// The custom page: an exact sub-status entry first (the location's, else the site's),
    /// then an any-sub-status one (likewise), as IIS looks up the merged collection.
    pub fn find(&self, status: u16, substatus: u16) -> Option<&'a PageBody> {
        let location = self.location.map_or(&[][..], |l| &l.pages[..]);
        let exact = |pages: &'a [CustomPage]| {
            pages
                .iter()
                .find(|p| p.status == status && p.substatus == Some(substatus))
        };
        let any = |pages: &'a [CustomPage]| {
            pages
                .iter()
                .find(|p| p.status == status && p.substatus.is_none())
        };
        exact(location)
            .or_else(|| exact(&self.site.pages))
            .or_else(|| any(location))
            .or_else(|| any(&self.site.pages))
            .map(|p| &p.body)
    }

    /// Whether a client gets the detailed page (the location's `error_mode` when set).
    pub fn detailed_for(&self, local: bool) -> bool {
        let mode = self.location.and_then(|l| l.mode).unwrap_or(self.site.mode);
        mode.detailed_for(local)
    }
}

impl HttpErrors {
    /// The settings for a request in a location with `location`'s own settings (none: the
    /// site's).
    pub fn at<'a>(&'a self, location: Option<&'a LocationErrors>) -> Effective<'a> {
        Effective {
            site: self,
            location,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page(status: u16, substatus: Option<u16>, name: &str) -> CustomPage {
        CustomPage {
            status,
            substatus,
            body: PageBody::ExecuteUrl(name.into()),
        }
    }

    fn found(e: Effective<'_>, status: u16, substatus: u16) -> Option<String> {
        match e.find(status, substatus) {
            Some(PageBody::ExecuteUrl(n)) => Some(n.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_location_replaces_per_status_and_sub_status_and_inherits_the_rest() {
        let site = HttpErrors {
            mode: ErrorMode::DetailedLocalOnly,
            pages: vec![
                page(403, Some(7), "/site-403.7"),
                page(401, None, "/site-401"),
            ],
        };
        let outer = LocationErrors::over(
            HttpErrors {
                mode: ErrorMode::Custom,
                pages: vec![
                    page(403, None, "/outer-403"),
                    page(401, Some(2), "/outer-401.2"),
                ],
            },
            true,
            None,
        );
        // An inner location replaces the outer one's 403 and keeps its 401.2 and its mode.
        let inner = LocationErrors::over(
            HttpErrors {
                mode: ErrorMode::default(),
                pages: vec![page(403, None, "/inner-403")],
            },
            false,
            Some(&outer),
        );
        assert_eq!(inner.mode, Some(ErrorMode::Custom));
        let at = site.at(Some(&inner));
        // An exact sub-status entry wins over an any-sub-status one, wherever it is set.
        assert_eq!(found(at, 403, 7).as_deref(), Some("/site-403.7"));
        assert_eq!(found(at, 403, 4).as_deref(), Some("/inner-403"));
        assert_eq!(found(at, 401, 2).as_deref(), Some("/outer-401.2"));
        assert_eq!(found(at, 401, 1).as_deref(), Some("/site-401"));
        assert!(!at.detailed_for(true));
        assert!(site.at(None).detailed_for(true));
        assert_eq!(found(site.at(None), 403, 4), None);
    }
}
