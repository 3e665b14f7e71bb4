//! A site's scopes: the root and its `[[site.location]]`s, each inheriting from its nearest
//! enclosing scope.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Scope;
use crate::config::raw::{RawLocation, RawSite};
use crate::forward::path::{canonical_location, in_location};
use crate::iis::SslFlags;
use crate::mapping::Mapper;

use super::{Loader, MAPPING_KEY};

impl Loader<'_> {
    fn ssl_flags(&mut self, key: &str, text: &str) -> SslFlags {
        match SslFlags::parse(text) {
            Ok((flags, warnings)) => {
                for w in warnings {
                    self.warn(key, w);
                }
                flags
            }
            Err(e) => {
                self.error(key, e.to_string());
                SslFlags::default()
            }
        }
    }

    pub(super) fn scopes(&mut self, key: &str, raw: &RawSite) -> Vec<Scope> {
        let root_flags = self.ssl_flags(
            &format!("{key}.ssl_flags"),
            raw.ssl_flags.as_deref().unwrap_or("Ssl"),
        );
        let root_mapper = Arc::new(match &raw.iis_client_certificate_mapping_authentication {
            Some(section) => self.mapper(&format!("{key}.{MAPPING_KEY}"), section),
            None => Mapper::default(),
        });
        let root_directory =
            self.site_policy(raw.directory.as_ref(), None, &format!("{key}.directory"));
        let root = Scope {
            path: "/".into(),
            canonical: String::new(),
            ssl_flags: root_flags,
            anonymous: raw.anonymous_authentication.unwrap_or(false),
            mapper: root_mapper,
            directory: root_directory,
            kerberos: self.backend_kerberos(
                raw.backend_kerberos.as_ref(),
                None,
                &format!("{key}.backend_kerberos"),
            ),
            http_errors: None,
        };

        // Parents before children, so each location inherits from its nearest enclosing scope.
        let mut located: Vec<(usize, &RawLocation, String)> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (k, loc) in raw.locations.iter().enumerate() {
            let lkey = format!("{key}.location[{k}].path");
            match canonical_location(&loc.path) {
                Ok(c) if c.is_empty() => self.error(
                    lkey,
                    "a location for the site root; put these settings on the [[site]] itself",
                ),
                Ok(c) => {
                    if let Some(first) = seen.insert(c.clone(), k) {
                        self.error(
                            lkey,
                            format!("`{}` is the same location as location[{first}]", loc.path),
                        );
                    } else {
                        located.push((k, loc, c));
                    }
                }
                Err(e) => self.error(lkey, format!("`{}`: {e}", loc.path)),
            }
        }
        located.sort_by_key(|(_, _, c)| c.matches('/').count());

        let mut scopes: Vec<Scope> = Vec::new();
        for (k, loc, canonical) in located {
            let lkey = format!("{key}.location[{k}]");
            let parent = scopes
                .iter()
                .filter(|s| in_location(&canonical, &s.canonical))
                .max_by_key(|s| s.canonical.len())
                .unwrap_or(&root);
            let (parent_flags, parent_anon, parent_mapper) = (
                parent.ssl_flags,
                parent.anonymous,
                Arc::clone(&parent.mapper),
            );
            let parent_directory = parent.directory.clone();
            let parent_kerberos = parent.kerberos.clone();
            let parent_errors = parent.http_errors.clone();
            let ssl_flags = match &loc.ssl_flags {
                Some(text) => self.ssl_flags(&format!("{lkey}.ssl_flags"), text),
                None => parent_flags,
            };
            let mapper = match &loc.iis_client_certificate_mapping_authentication {
                Some(section) => Arc::new(self.mapper(&format!("{lkey}.{MAPPING_KEY}"), section)),
                None => parent_mapper,
            };
            let directory = self.site_policy(
                loc.directory.as_ref(),
                Some(&parent_directory),
                &format!("{lkey}.directory"),
            );
            scopes.push(Scope {
                path: loc.path.clone(),
                canonical,
                ssl_flags,
                anonymous: loc.anonymous_authentication.unwrap_or(parent_anon),
                mapper,
                directory,
                kerberos: self.backend_kerberos(
                    loc.backend_kerberos.as_ref(),
                    parent_kerberos.as_ref(),
                    &format!("{lkey}.backend_kerberos"),
                ),
                http_errors: self.location_http_errors(&lkey, loc, parent_errors.as_ref()),
            });
        }
        scopes.sort_by_key(|s| std::cmp::Reverse(s.canonical.len()));
        scopes.push(root);

        let mut reported = std::collections::HashSet::new();
        for scope in &scopes {
            self.check_directory_use(key, scope);
            self.check_kerberos_passwords(key, scope, &mut reported);
            if scope.mapper.enabled && !scope.ssl_flags.wants_certificate() {
                self.warn(
                    key,
                    format!(
                        "scope `{}` enables certificate mapping but ssl_flags `{}` never asks \
                         for a certificate (add SslNegotiateCert), so it can only answer 401.2",
                        scope.path, scope.ssl_flags
                    ),
                );
            }
        }
        scopes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::testing::{loader, raw, reason};
    use crate::config::raw::RawSite;
    use crate::tls::server::ResumptionKeys;

    #[test]
    fn locations_inherit_from_the_nearest_enclosing_scope_most_specific_first() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw(
            "name = \"s\"\nssl_flags = \"Ssl, SslNegotiateCert\"\nanonymous_authentication = true\n\
             [[location]]\npath = \"/api/v1\"\n\
             [[location]]\npath = \"/API\"\nssl_flags = \"Ssl, SslNegotiateCert, SslRequireCert\"\n\
             anonymous_authentication = false\n",
        );
        let scopes = l.scopes("site[0]", &site);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let paths: Vec<&str> = scopes.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/api/v1", "/API", "/"]);
        // /api/v1 sets nothing, so it takes /API's settings, not the root's.
        assert!(scopes[0].ssl_flags.require_cert && !scopes[0].anonymous);
        assert!(!scopes[2].ssl_flags.require_cert && scopes[2].anonymous);
        assert!(scopes[2].ssl_flags.negotiate_cert);
    }

    #[test]
    fn root_and_repeated_locations_and_bad_flags_are_errors() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw("name = \"s\"\nssl_flags = \"Ssl, Sometimes\"\n\
             [[location]]\npath = \"/\"\n\
             [[location]]\npath = \"/a\"\nssl_flags = \"Never\"\n\
             [[location]]\npath = \"/A/\"\n");
        let scopes = l.scopes("site[0]", &site);
        assert_eq!(scopes.len(), 2);
        assert!(!reason(&l, "site[0].ssl_flags").is_empty());
        assert!(reason(&l, "site[0].location[0].path").contains("site root"));
        assert!(reason(&l, "site[0].location[2].path").contains("same location as location[1]"));
        assert!(!reason(&l, "site[0].location[1].ssl_flags").is_empty());
    }

    #[test]
    fn a_mapper_that_can_never_see_a_certificate_is_a_warning() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite =
            raw("name = \"s\"\n[iis_client_certificate_mapping_authentication]\nenabled = true\n");
        l.scopes("site[0]", &site);
        assert!(l.errors.is_empty());
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains("never asks for a certificate"))
        );
    }
}
