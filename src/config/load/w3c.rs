//! A site's W3C logging: `[site.log_file]` over the top-level `[log_file]` (see [`crate::w3c`]).

use std::sync::Arc;

use crate::config::raw::RawSite;
use crate::w3c::{Issues, RawLogFile, SiteLog, build};

use super::Loader;

impl Loader<'_> {
    pub(super) fn w3c(&mut self, key: &str, raw: &RawSite) -> Option<Arc<SiteLog>> {
        let merged = RawLogFile::merged(self.log_defaults.as_ref(), raw.log_file.as_ref());
        let mut issues = Issues::default();
        let log = build(merged.as_ref(), &raw.name, raw.id, &self.base, &mut issues);
        let section = if raw.log_file.is_some() {
            format!("{key}.log_file")
        } else {
            "log_file".to_owned()
        };
        for (k, reason) in issues.errors {
            self.error(format!("{section}{k}"), reason);
        }
        for (k, message) in issues.warnings {
            self.warn(&format!("{section}{k}"), message);
        }
        log.map(Arc::new)
    }
}
