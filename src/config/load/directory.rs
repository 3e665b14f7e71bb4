//! `[directory]` and the per-scope directory checks, and whether a scope may use them.

use std::sync::Arc;

use crate::config::Scope;
use crate::config::raw::{RawDirectory, RawSiteDirectory};
use crate::directory::Directory;
use crate::directory::config::{DirectorySettings, SitePolicy, VerifyMode};
use crate::mapping::MappedUser;

use super::Loader;

impl Loader<'_> {
    pub(super) fn directory(&mut self, raw: &RawDirectory) -> Option<Directory> {
        let settings = match DirectorySettings::from_raw(raw, &self.base, "directory") {
            Ok(s) => s,
            Err(issues) => {
                for issue in issues {
                    self.error(issue.key, issue.reason);
                }
                return None;
            }
        };
        match Directory::new(&settings) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error("directory", e.to_string());
                None
            }
        }
    }

    pub(super) fn site_policy(
        &mut self,
        raw: Option<&RawSiteDirectory>,
        parent: Option<&SitePolicy>,
        key: &str,
    ) -> SitePolicy {
        match SitePolicy::from_raw(raw, parent, key) {
            Ok(policy) => policy,
            Err(issues) => {
                for issue in issues {
                    self.error(issue.key, issue.reason);
                }
                SitePolicy::default()
            }
        }
    }

    pub(super) fn check_directory_use(&mut self, key: &str, scope: &Scope) {
        let at = if scope.canonical.is_empty() {
            format!("{key}.directory")
        } else {
            format!("{key} location `{}`: directory", scope.path)
        };
        if scope.directory.needs_directory() && !self.has_directory {
            self.error(
                at.clone(),
                "directory checks need a [directory] section (the domain controllers to ask)",
            );
        }
        if scope.directory.certificate_mapping.is_some() && scope.mapper.enabled {
            self.error(
                at.clone(),
                "the Active Directory certificate mapper and the IIS mapper cannot both be on for \
                 one scope (IIS does not support it either); disable one of them",
            );
        }
        let credentials = scope
            .directory
            .verification
            .as_ref()
            .is_some_and(|v| v.mode == VerifyMode::Credentials);
        if credentials && scope.mapper.enabled {
            let users: Vec<Arc<MappedUser>> = scope
                .mapper
                .one_to_one
                .users()
                .chain(&scope.mapper.many_to_one_users)
                .cloned()
                .collect();
            for user in &users {
                if let Some((_, pkey, reason)) = self
                    .unresolved_passwords
                    .get(&(Arc::as_ptr(user) as usize))
                    .cloned()
                {
                    self.error(
                        pkey,
                        format!("{reason}; verify = \"credentials\" needs this mapping's password"),
                    );
                }
            }
            let without: Vec<String> = users
                .iter()
                .filter(|u| u.password.is_none())
                .map(|u| u.source.to_string())
                .collect();
            if !without.is_empty() {
                self.warn(
                    &at,
                    format!(
                        "verify = \"credentials\" but these mappings have no password, so their \
                         users get 401.1: {}",
                        without.join(", ")
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::testing::{loader, raw, reason};
    use crate::config::raw::RawSite;
    use crate::tls::server::ResumptionKeys;

    #[test]
    fn directory_checks_need_a_directory_section() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw(
            "name = \"s\"\nssl_flags = \"Ssl, SslNegotiateCert\"\n[directory]\nverify = \"account\"\n\
             [[location]]\npath = \"/x\"\n",
        );
        l.scopes("site[0]", &site);
        assert!(reason(&l, "site[0].directory").contains("need a [directory] section"));
        // The location inherits the check, and is named by its path.
        assert!(!reason(&l, "site[0] location `/x`: directory").is_empty());
        l.errors.clear();
        l.has_directory = true;
        l.scopes("site[0]", &site);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
    }

    #[test]
    fn the_ad_mapper_and_the_iis_mapper_exclude_each_other() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        l.has_directory = true;
        let site: RawSite = raw("name = \"s\"\nssl_flags = \"Ssl, SslNegotiateCert\"\n\
             [iis_client_certificate_mapping_authentication]\nenabled = true\n\
             [directory.certificate_mapping]\nenabled = true\n");
        l.scopes("site[0]", &site);
        assert!(reason(&l, "site[0].directory").contains("cannot both be on"));
    }

    #[test]
    fn bad_site_directory_keys_are_reported_with_their_path() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw("name = \"s\"\n[directory]\nverify = \"sometimes\"\n");
        l.scopes("site[0]", &site);
        assert!(
            l.errors.iter().any(|e| e.key == "site[0].directory.verify"),
            "{:?}",
            l.errors
        );
    }
}
