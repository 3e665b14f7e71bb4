//! `[kerberos]` and the per-scope `backend_kerberos` (Kerberos to the backend).

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::{ConfigError, Scope};
use crate::kerberos::{
    BackendKerberos, Kerberos, KerberosMode, KerberosSettings, RawBackendKerberos, RawKerberos,
};
use crate::mapping::many_to_one::Permission;
use crate::mapping::{MappedUser, MappingSource};

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

/// At most this many mappings without a password are named one by one; the rest are counted.
const LISTED: usize = 50;

impl Loader<'_> {
    /// A scope with `backend_kerberos.mode = "password"` logs each user on with the mapping's
    /// password, so every mapping that can map a user there needs one: enabled one-to-one
    /// entries (inline and table rows) and live Allow many-to-one mappings. Users of the Active
    /// Directory certificate mapper have no mapping password, so that mapper cannot serve such a
    /// scope. `reported` holds the users already named (scopes share mappers).
    pub(super) fn check_kerberos_passwords(
        &mut self,
        key: &str,
        scope: &Scope,
        reported: &mut HashSet<usize>,
    ) {
        let Some(target) = &scope.kerberos else {
            return;
        };
        if target.mode != KerberosMode::Password {
            return;
        }
        let at = if scope.canonical.is_empty() {
            format!("{key}.backend_kerberos.mode")
        } else {
            format!("{key} location `{}`: backend_kerberos.mode", scope.path)
        };
        if scope.directory.certificate_mapping.is_some() && !scope.mapper.enabled {
            self.error(
                at.clone(),
                "mode = \"password\" logs users on with their IIS mapping's password, and users \
                 found by the Active Directory certificate mapper have none; use mode = \"s4u\"",
            );
        }
        if !scope.mapper.enabled {
            return;
        }
        let need = format!(
            "backend_kerberos mode = \"password\" (scope `{}`) logs the user on with this \
             mapping's password",
            scope.path
        );
        let mut users: Vec<(Arc<MappedUser>, Option<String>)> = Vec::new();
        if scope.mapper.one_to_one_enabled {
            let mut one: Vec<&Arc<MappedUser>> = scope.mapper.one_to_one.users().collect();
            one.sort_by_cached_key(|u| match &u.source {
                MappingSource::Entry { list, index } => (0, list.to_string(), *index),
                MappingSource::Row { file, line } => (1, file.to_string(), *line),
                _ => (2, u.source.to_string(), 0),
            });
            users.extend(one.into_iter().map(|u| (Arc::clone(u), None)));
        }
        if scope.mapper.many_to_one_enabled {
            let mappings = scope.mapper.many_to_one.mappings();
            for (m, user) in mappings.iter().zip(&scope.mapper.many_to_one_users) {
                if m.is_live() && m.permission() == Permission::Allow {
                    users.push((Arc::clone(user), Some(m.key_path().to_owned())));
                }
            }
        }
        let (mut listed, mut unlisted) = (0usize, 0usize);
        for (user, m2o_key) in users {
            if !reported.insert(Arc::as_ptr(&user) as usize) {
                continue;
            }
            let unresolved = self
                .unresolved_passwords
                .get(&(Arc::as_ptr(&user) as usize))
                .map(|(_, k, r)| (k.clone(), r.clone()));
            if unresolved.is_none() && user.password.is_some() {
                continue;
            }
            if listed == LISTED {
                unlisted += 1;
                continue;
            }
            listed += 1;
            match (unresolved, &user.source, m2o_key) {
                (Some((pkey, reason)), _, _) => self.error(pkey, format!("{reason}; {need}")),
                (None, MappingSource::Row { file, line }, _) => {
                    let file = self.resolve(file);
                    self.errors.push(ConfigError {
                        file,
                        key: format!("line {line}"),
                        reason: format!("the row has no passwordEnv; {need}"),
                    });
                }
                (None, _, key) => self.error(
                    key.unwrap_or_else(|| user.source.to_string()),
                    format!("the mapping has no password_env or password_file; {need}"),
                ),
            }
        }
        if unlisted > 0 {
            self.error(
                at,
                format!(
                    "{unlisted} more mappings of this scope have no password (only the first \
                     {LISTED} are listed); {need}"
                ),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use base64::Engine as _;

    use super::super::testing::{keys, loader, raw, reason};
    use crate::config::raw::RawSite;
    use crate::tls::server::ResumptionKeys;

    const M: &str = "site[0].iis_client_certificate_mapping_authentication";

    fn certificate(name: &str) -> String {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        base64::engine::general_purpose::STANDARD.encode(c.cert.der().as_ref())
    }

    /// A site in `mode` whose mapper has alice (with `alice_extra`), a many-to-one Allow
    /// without a password and a Deny; `/s4u` switches to s4u, `/own` has its own mapper.
    fn site(mode: &str, alice_extra: &str, pw: &std::path::Path) -> RawSite {
        raw(&format!(
            "name = \"s\"\nssl_flags = \"Ssl, SslNegotiateCert\"\n\
             [backend_kerberos]\nspn = \"HTTP/app.example.test\"\nmode = \"{mode}\"\n\
             [iis_client_certificate_mapping_authentication]\nenabled = true\n\
             [[iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
             user_name = 'EX\\alice'\ncertificate = \"{alice}\"\n{alice_extra}\n\
             [[iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
             user_name = 'EX\\bob'\ncertificate = \"{bob}\"\npassword_file = \"{pw}\"\n\
             [[iis_client_certificate_mapping_authentication.many_to_one_mappings]]\n\
             name = \"Team\"\nuser_name = 'EX\\team'\n\
             rules = [{{ certificate_field = \"Issuer\", certificate_sub_field = \"CN\", match_criteria = \"CA\" }}]\n\
             [[iis_client_certificate_mapping_authentication.many_to_one_mappings]]\n\
             name = \"No\"\npermission_mode = \"Deny\"\nuser_name = 'EX\\nobody'\n\
             rules = [{{ certificate_field = \"Issuer\", certificate_sub_field = \"CN\", match_criteria = \"Bad\" }}]\n\
             [[location]]\npath = \"/s4u\"\nbackend_kerberos = {{ mode = \"s4u\" }}\n\
             [[location]]\npath = \"/own\"\n\
             [location.iis_client_certificate_mapping_authentication]\nenabled = true\n\
             many_to_one_certificate_mappings_enabled = false\n\
             [[location.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
             user_name = 'EX\\carol'\ncertificate = \"{carol}\"\n",
            alice = certificate("alice"),
            bob = certificate("bob"),
            carol = certificate("carol"),
            pw = pw.display(),
        ))
    }

    #[test]
    fn password_mode_needs_a_password_on_every_mapping_that_can_map_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw.txt");
        std::fs::write(&pw, "secret\n").unwrap();
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        l.kerberos_realm = Some("EXAMPLE.TEST".into());
        l.scopes("site[0]", &site("password", "", &pw));
        // carol in /own (the most specific scope comes first), then alice and the Allow
        // mapping (each once, though two scopes share the mapper); bob has a password, the Deny
        // mapping never logs anyone on.
        assert_eq!(
            keys(&l),
            [
                "site[0].location[1].iis_client_certificate_mapping_authentication.one_to_one_mappings[0]".to_owned(),
                format!("{M}.one_to_one_mappings[0]"),
                format!("{M}.many_to_one_mappings[0]"),
            ],
        );
        let why = reason(&l, &format!("{M}.one_to_one_mappings[0]"));
        assert!(why.contains("no password_env or password_file"), "{why}");
        assert!(why.contains("mode = \"password\" (scope `/`)"), "{why}");

        // An unset password variable is named with its key; s4u needs no password at all.
        let mut l = loader(&k);
        l.kerberos_realm = Some("EXAMPLE.TEST".into());
        let unset = "password_env = \"CERTGATE_TEST_SURELY_UNSET\"";
        l.scopes("site[0]", &site("password", unset, &pw));
        let why = reason(&l, &format!("{M}.one_to_one_mappings[0].password_env"));
        assert!(why.contains("CERTGATE_TEST_SURELY_UNSET"), "{why}");
        assert!(why.contains("mode = \"password\""), "{why}");
        let mut l = loader(&k);
        l.kerberos_realm = Some("EXAMPLE.TEST".into());
        l.scopes("site[0]", &site("s4u", unset, &pw));
        assert!(l.errors.is_empty(), "{:#?}", l.errors);
    }

    #[test]
    fn password_mode_cannot_serve_users_of_the_ad_certificate_mapper() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        l.kerberos_realm = Some("EXAMPLE.TEST".into());
        l.has_directory = true;
        let site: RawSite = raw("name = \"s\"\nssl_flags = \"Ssl, SslNegotiateCert\"\n\
             [backend_kerberos]\nspn = \"HTTP/app.example.test\"\nmode = \"password\"\n\
             [directory]\nverify = \"account\"\n[directory.certificate_mapping]\nenabled = true\n");
        l.scopes("site[0]", &site);
        assert!(
            reason(&l, "site[0].backend_kerberos.mode")
                .contains("Active Directory certificate mapper"),
            "{:#?}",
            l.errors
        );
    }
}
