//! A site's `[site.http_errors]` and a location's `[site.location.http_errors]` (see
//! [`crate::error_page::custom`]).

use std::sync::Arc;

use crate::config::raw::{RawLocation, RawSite};
use crate::error_page::{HttpErrors, LocationErrors};

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

impl Loader<'_> {
    /// A location's own error settings over its enclosing location's (`parent`); `None` when
    /// neither has any.
    pub(super) fn location_http_errors(
        &mut self,
        key: &str,
        raw: &RawLocation,
        parent: Option<&Arc<LocationErrors>>,
    ) -> Option<Arc<LocationErrors>> {
        let Some(own) = &raw.http_errors else {
            return parent.cloned();
        };
        let mut errors = Vec::new();
        let built =
            crate::error_page::custom::build(Some(own), &self.base, &mut errors, &mut self.files);
        for (k, reason) in errors {
            self.error(format!("{key}.http_errors{k}"), reason);
        }
        Some(Arc::new(LocationErrors::over(
            built,
            own.error_mode.is_some(),
            parent.map(Arc::as_ref),
        )))
    }
}
