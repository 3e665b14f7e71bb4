//! Loading `[revocation]` and `[site.revocation]`: the validation lives in
//! [`crate::revocation::config`]; this only reports its errors with the file and builds the
//! per-site checker over the shared cache.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

use super::Loader;
use crate::config::raw::{RawConfig, RawSite};
use crate::directory::Directory;
use crate::revocation::cache::Store;
use crate::revocation::chain::Link;
use crate::revocation::config::{Legacy, limits, shared_store, site_policy};
use crate::revocation::crl::Crl;
use crate::revocation::ldap::LdapSource;
use crate::revocation::{FileCrl, Revocation};

impl Loader<'_> {
    /// The revocation cache for this configuration (the previous load's, when it is alive).
    pub(super) fn revocation_store(
        &mut self,
        raw: &RawConfig,
        directory: Option<&Directory>,
    ) -> Arc<Store> {
        let section = raw.revocation.as_ref();
        let limits = match limits(section) {
            Ok(l) => l,
            Err(errors) => {
                for (key, reason) in errors {
                    self.error(key, reason);
                }
                Default::default()
            }
        };
        let state_dir = section
            .and_then(|s| s.state_dir.as_deref())
            .filter(|d| !d.trim().is_empty())
            .map(|d| self.resolve(d));
        // Host-less ldap:/// distribution points are read from [directory]; its URLs and bind
        // DN (never the password) tell two directory configurations apart.
        let ldap = directory.zip(raw.directory.as_ref()).map(|(d, settings)| {
            Arc::new(LdapSource::new(
                d.clone(),
                format!("{:?}|{}", settings.urls, settings.bind_dn),
            ))
        });
        shared_store(limits, state_dir, ldap, &self.file)
    }

    /// A site's revocation checker: its policy, its CA certificates and its CRL files.
    pub(super) fn revocation(
        &mut self,
        key: &str,
        raw: &RawSite,
        anchors: &[CertificateDer<'static>],
        crls: Vec<(String, CertificateRevocationListDer<'static>)>,
    ) -> Option<Arc<Revocation>> {
        let legacy = Legacy {
            crl_check: raw.crl_check.as_deref(),
            allow_unknown_status: raw.allow_unknown_revocation_status,
            allow_expired_crl: raw.allow_expired_crl,
        };
        let policy = match site_policy(key, raw.revocation.as_ref(), &legacy) {
            Ok(p) => p,
            Err(errors) => {
                for (k, reason) in errors {
                    self.error(k, reason);
                }
                return None;
            }
        };
        let mut files = Vec::new();
        for (name, der) in crls {
            match Crl::parse(der.as_ref()) {
                Ok(crl) => files.push(FileCrl {
                    name,
                    crl: Arc::new(crl),
                }),
                Err(e) => self.error(format!("{key}.crl"), format!("{name}: {e}")),
            }
        }
        let anchors = anchors.iter().filter_map(|c| Link::parse(c)).collect();
        let store = Arc::clone(
            self.revocation_store
                .get_or_insert_with(|| Arc::new(Store::new(Default::default(), None, None))),
        );
        Some(Arc::new(Revocation::new(policy, anchors, files, store)))
    }
}
