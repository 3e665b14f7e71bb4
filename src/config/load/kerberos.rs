//! `[kerberos]` and the per-scope `backend_kerberos` (Kerberos to the backend).

use std::sync::Arc;

use crate::kerberos::{
    BackendKerberos, Kerberos, KerberosSettings, RawBackendKerberos, RawKerberos,
};

use super::Loader;

impl Loader<'_> {
    pub(super) fn kerberos(&mut self, raw: &RawKerberos) -> Option<Arc<Kerberos>> {
        let env = |name: &str| std::env::var(name).ok();
        match KerberosSettings::from_raw(raw, &self.base, "kerberos", env) {
            Ok(settings) => Some(Arc::new(Kerberos::new(settings))),
            Err(issues) => {
                for issue in issues {
                    self.error(issue.key, issue.reason);
                }
                None
            }
        }
    }

    /// A scope's effective `backend_kerberos` (`parent`: the enclosing scope's); it needs
    /// `[kerberos]`.
    pub(super) fn backend_kerberos(
        &mut self,
        raw: Option<&RawBackendKerberos>,
        parent: Option<&Arc<BackendKerberos>>,
        key: &str,
    ) -> Option<Arc<BackendKerberos>> {
        let realm = self.kerberos_realm.clone();
        match BackendKerberos::from_raw(raw, parent, realm.as_deref(), key) {
            Ok(Some(target)) if realm.is_none() => {
                self.error(
                    key,
                    "Kerberos to the backend needs a [kerberos] section (the service account)",
                );
                Some(target)
            }
            Ok(target) => target,
            Err(issues) => {
                for issue in issues {
                    self.error(issue.key, issue.reason);
                }
                None
            }
        }
    }
}
