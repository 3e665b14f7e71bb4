//! A site's `[site.http_errors]` (see [`crate::error_page::custom`]).

use crate::config::raw::RawSite;
use crate::error_page::HttpErrors;

use super::Loader;

impl Loader<'_> {
    pub(super) fn http_errors(&mut self, key: &str, raw: &RawSite) -> HttpErrors {
        let mut errors = Vec::new();
        let built = crate::error_page::custom::build(
            raw.http_errors.as_ref(),
            &self.base,
            &mut errors,
            &mut self.files,
        );
        for (k, reason) in errors {
            self.error(format!("{key}.http_errors{k}"), reason);
        }
        built
    }
}
