//! Replacing the current configuration with a file's: SIGHUP, the file watcher and the admin
//! `POST /reload` all come here.

use std::path::Path;
use std::sync::Arc;

use super::Shared;
use crate::config::{ConfigErrors, Runtime};
use crate::metrics as m;

impl Shared {
    /// Loads `path` and, only if it is valid as a whole, makes it current. A rejected file is
    /// logged with every error and counted; the previous configuration keeps serving. Reloads
    /// run one at a time, so a slow load of an older file can never overwrite a newer one.
    pub fn reload(&self, path: &Path) -> Result<(), ConfigErrors> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match Runtime::load(path, &self.resumption) {
            Ok(runtime) => {
                for w in &runtime.warnings {
                    tracing::warn!("{w}");
                }
                let current = self.runtime();
                if runtime.server.listen != current.server.listen
                    || runtime.server.admin_listen != current.server.admin_listen
                    || runtime.server.max_connections != current.server.max_connections
                {
                    tracing::warn!(
                        "listen, admin_listen and max_connections changes take effect after a restart"
                    );
                }
                self.runtime.store(Arc::new(runtime));
                metrics::counter!(m::CONFIG_RELOADS, "result" => "ok").increment(1);
                self.reloads.record("ok", 0);
                tracing::info!(config = %path.display(), "configuration reloaded");
                Ok(())
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!("{e}");
                }
                metrics::counter!(m::CONFIG_RELOADS, "result" => "failed").increment(1);
                self.reloads.record("rejected", errors.0.len());
                tracing::error!(
                    config = %path.display(),
                    errors = errors.0.len(),
                    "configuration reload rejected; still serving the previous configuration"
                );
                Err(errors)
            }
        }
    }
}
