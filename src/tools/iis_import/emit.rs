//! Writing certgate's raw configuration for each imported site: effective settings per path,
//! password placeholders, and the warnings and untranslated items found on the way.

use super::*;

/// Output state shared across sites: messages and password placeholders.
pub(super) struct Emit<'a> {
    pub(super) opts: &'a ImportOptions,
    pub(super) warnings: Vec<String>,
    pub(super) untranslated: Vec<String>,
    /// (description, env var) of mappings whose password is `[enc:...:enc]`.
    pub(super) encrypted: Vec<(String, String)>,
    /// (description, env var) of mappings with a plain-text password in the XML.
    pub(super) plain: Vec<(String, String)>,
    /// One-to-one entries already validated, so a corrupt blob is reported once.
    pub(super) checked_certificates: Vec<At>,
}

/// Per-site password placeholder numbering: one variable per source `<add>` element, shared by
/// every location that inherits it.
pub(super) struct SitePasswords {
    pub(super) prefix: String,
    pub(super) assigned: Vec<(At, String)>,
}

impl SitePasswords {
    pub(super) fn new(site: &str) -> Self {
        let mut prefix = String::from("CERTGATE_PW_");
        let mut last_underscore = true;
        for c in site.chars() {
            if c.is_ascii_alphanumeric() {
                prefix.push(c.to_ascii_uppercase());
                last_underscore = false;
            } else if !last_underscore {
                prefix.push('_');
                last_underscore = true;
            }
        }
        if !prefix.ends_with('_') {
            prefix.push('_');
        }
        Self {
            prefix,
            assigned: Vec::new(),
        }
    }

    /// Returns the variable for the element at `at`, and whether it was newly assigned.
    pub(super) fn env_for(&mut self, at: &At) -> (String, bool) {
        if let Some((_, name)) = self.assigned.iter().find(|(a, _)| a == at) {
            return (name.clone(), false);
        }
        let name = format!("{}{}", self.prefix, self.assigned.len() + 1);
        self.assigned.push((at.clone(), name.clone()));
        (name, true)
    }
}

impl Emit<'_> {
    pub(super) fn site(
        &mut self,
        site: &Site,
        fragments: &[Fragment],
    ) -> Result<RawSite, ImportError> {
        let root = vec![site.name.clone()];
        let root_eff = resolve(fragments, &root, &mut self.warnings)?;
        let mut passwords = SitePasswords::new(&site.name);

        let mut raw = RawSite {
            name: site.name.clone(),
            ..RawSite::default()
        };
        self.bindings(site, &mut raw);
        match &self.opts.pfx {
            Some(pfx) => raw.pfx = Some(pfx.clone()),
            None => {
                raw.certificate = Some(
                    self.opts
                        .certificate
                        .clone()
                        .unwrap_or_else(|| placeholder("--certificate")),
                );
                raw.private_key = Some(
                    self.opts
                        .private_key
                        .clone()
                        .unwrap_or_else(|| placeholder("--private-key")),
                );
            }
        }
        raw.client_ca = if self.opts.client_ca.is_empty() {
            vec![placeholder("--client-ca")]
        } else {
            self.opts.client_ca.clone()
        };
        raw.backend = self
            .opts
            .backend
            .clone()
            .unwrap_or_else(|| placeholder("--backend"));
        raw.ssl_flags = Some(root_eff.ssl_flags.to_string());
        raw.anonymous_authentication = Some(root_eff.anonymous);
        raw.iis_client_certificate_mapping_authentication = root_eff
            .mapper
            .as_ref()
            .map(|m| self.mapping(&site.name, m, &mut passwords));
        self.scope_notes(&site.name, "/", &root_eff);

        // Every deeper path some level configures, shallowest first.
        let mut sub_paths: Vec<Vec<String>> = Vec::new();
        for frag in fragments {
            if frag.path.len() > 1
                && is_prefix(&root, &frag.path)
                && !sub_paths
                    .iter()
                    .any(|p| is_prefix(p, &frag.path) && p.len() == frag.path.len())
            {
                sub_paths.push(frag.path.clone());
            }
        }
        sub_paths.sort_by_key(Vec::len);
        let mut emitted: Vec<(Vec<String>, Effective)> = vec![(root, root_eff)];
        for path in sub_paths {
            let eff = resolve(fragments, &path, &mut self.warnings)?;
            let url = format!("/{}", path[1..].join("/"));
            self.scope_notes(&site.name, &url, &eff);
            let parent = emitted
                .iter()
                .filter(|(p, _)| is_prefix(p, &path))
                .max_by_key(|(p, _)| p.len())
                .map(|(_, e)| e);
            if parent.is_some_and(|p| p.emitted_eq(&eff)) {
                continue;
            }
            raw.locations.push(RawLocation {
                path: url,
                ssl_flags: Some(eff.ssl_flags.to_string()),
                anonymous_authentication: Some(eff.anonymous),
                iis_client_certificate_mapping_authentication: eff
                    .mapper
                    .as_ref()
                    .map(|m| self.mapping(&site.name, m, &mut passwords)),
                directory: None,
                backend_kerberos: None,
                http_errors: None,
            });
            emitted.push((path, eff));
        }
        Ok(raw)
    }

    pub(super) fn bindings(&mut self, site: &Site, raw: &mut RawSite) {
        for b in &site.bindings {
            if !b.protocol.eq_ignore_ascii_case("https") {
                self.untranslated.push(format!(
                    "site '{}': {} binding '{}' not imported (certgate terminates https only)",
                    site.name, b.protocol, b.information
                ));
                continue;
            }
            let host = b.information.rsplit_once(':').map_or("", |(_, h)| h).trim();
            if host.is_empty() {
                self.warnings.push(format!(
                    "site '{}': https binding '{}' has no host name, so IIS serves every name on \
                     that address; certgate selects sites by SNI: list the names in host_names \
                     (the first such site becomes server.default_site)",
                    site.name, b.information
                ));
            } else if !raw.host_names.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                raw.host_names.push(host.to_owned());
            }
            if let Some(flags) = &b.ssl_flags {
                self.binding_flags(&site.name, &b.information, flags);
            }
        }
    }

    pub(super) fn binding_flags(&mut self, site: &str, info: &str, flags: &str) {
        let Ok(n) = flags.trim().parse::<u32>() else {
            self.untranslated.push(format!(
                "site '{site}': binding '{info}' sslFlags=\"{flags}\" is not a number; ignored"
            ));
            return;
        };
        const MEANINGS: &[(u32, &str)] = &[
            (
                2,
                "Central Certificate Store (supply the certificate with --certificate/--pfx)",
            ),
            (4, "HTTP/2 disabled"),
            (8, "OCSP stapling disabled"),
            (16, "QUIC disabled"),
            (32, "TLS 1.3 over TCP disabled"),
            (64, "legacy TLS disabled"),
        ];
        // Bit 1 (SNI) is what certgate always does.
        let mut rest = n & !1;
        for (bit, meaning) in MEANINGS {
            if rest & bit != 0 {
                self.untranslated.push(format!(
                    "site '{site}': binding '{info}' sslFlags {bit}: {meaning}; not translated"
                ));
                rest &= !bit;
            }
        }
        if rest != 0 {
            self.untranslated.push(format!(
                "site '{site}': binding '{info}' sslFlags has unknown bits {rest}; ignored"
            ));
        }
    }

    /// Warnings and untranslated items about one scope's effective settings.
    pub(super) fn scope_notes(&mut self, site: &str, url: &str, eff: &Effective) {
        for (name, enabled) in eff.other_auth.values() {
            if *enabled {
                if name == "clientCertificateMappingAuthentication" {
                    self.untranslated.push(format!(
                        "site '{site}' path {url}: {name} (the Active Directory mapper) is \
                         enabled; IIS keeps its domain controllers outside the XML, so set it up \
                         by hand: a [directory] section and [site.directory.certificate_mapping] \
                         enabled = true (README: Active Directory)"
                    ));
                } else {
                    self.untranslated.push(format!(
                        "site '{site}' path {url}: {name} is enabled; certgate does not \
                         implement it"
                    ));
                }
            }
        }
        let Some(m) = &eff.mapper else { return };
        if !m.enabled {
            return;
        }
        if !eff.ssl_flags.negotiate_cert && !eff.ssl_flags.require_cert {
            self.warnings.push(format!(
                "site '{site}' path {url}: the certificate mapper is enabled but sslFlags lacks \
                 SslNegotiateCert, so IIS never asks for a certificate (401.2); imported as is"
            ));
        }
        if eff.anonymous {
            self.warnings.push(format!(
                "site '{site}' path {url}: anonymous authentication is enabled alongside the \
                 certificate mapper, so requests without a matching certificate are served \
                 anonymously; imported as is"
            ));
        }
    }

    pub(super) fn mapping(
        &mut self,
        site: &str,
        m: &MapperState,
        pw: &mut SitePasswords,
    ) -> RawIisMapping {
        let one_to_one = m
            .one_to_one
            .iter()
            .map(|e| {
                self.check_certificate(site, e);
                RawOneToOne {
                    user_name: e.user_name.clone(),
                    certificate: Some(e.certificate.clone()),
                    enabled: e.enabled,
                    password_env: self.password_env(
                        pw,
                        e.password,
                        &e.at,
                        format!("site '{site}', one-to-one user '{}'", e.user_name),
                    ),
                    ..RawOneToOne::default()
                }
            })
            .collect();
        for e in m
            .many_to_one
            .iter()
            .filter(|e| e.user_name.trim().is_empty())
        {
            self.warnings.push(format!(
                "{}: site '{site}', many-to-one mapping '{}' has no userName; IIS rejects it \
                 (nonEmptyString) and so does `certgate check`",
                e.at, e.name
            ));
        }
        let many_to_one = m
            .many_to_one
            .iter()
            .map(|e| RawManyToOne {
                name: e.name.clone(),
                description: e.description.clone(),
                enabled: e.enabled,
                permission_mode: Some(e.permission.unwrap_or("Allow").to_owned()),
                user_name: e.user_name.clone(),
                password_env: self.password_env(
                    pw,
                    e.password,
                    &e.at,
                    format!(
                        "site '{site}', many-to-one mapping '{}' (user '{}')",
                        e.name, e.user_name
                    ),
                ),
                password_file: None,
                rules: e
                    .rules
                    .iter()
                    .map(|r| RawRule {
                        certificate_field: r.field.to_owned(),
                        certificate_sub_field: r.sub_field.clone(),
                        match_criteria: r.criteria.clone(),
                        compare_case_sensitive: Some(r.case_sensitive),
                    })
                    .collect(),
            })
            .collect();
        RawIisMapping {
            enabled: m.enabled,
            one_to_one_certificate_mappings_enabled: Some(m.one_to_one_enabled),
            many_to_one_certificate_mappings_enabled: Some(m.many_to_one_enabled),
            default_logon_domain: (!m.default_logon_domain.is_empty())
                .then(|| m.default_logon_domain.clone()),
            logon_method: Some(m.logon_method.to_owned()),
            one_to_one_mappings_file: None,
            one_to_one_mappings: one_to_one,
            many_to_one_mappings: many_to_one,
        }
    }

    pub(super) fn password_env(
        &mut self,
        pw: &mut SitePasswords,
        password: Password,
        at: &At,
        what: String,
    ) -> Option<String> {
        let list = match password {
            Password::Absent => return None,
            Password::Encrypted => &mut self.encrypted,
            Password::Plain => &mut self.plain,
        };
        let (env, new) = pw.env_for(at);
        if new {
            list.push((what, env.clone()));
        }
        Some(env)
    }

    pub(super) fn check_certificate(&mut self, site: &str, e: &OneToOne) {
        if self.checked_certificates.contains(&e.at) {
            return;
        }
        self.checked_certificates.push(e.at.clone());
        let parsed = STANDARD
            .decode(&e.certificate)
            .map_err(|err| err.to_string())
            .and_then(|der| {
                CertFacts::parse(&CertificateDer::from(der)).map_err(|err| err.to_string())
            });
        if let Err(err) = parsed {
            self.warnings.push(format!(
                "{}: site '{site}', one-to-one mapping for user '{}': the certificate does not \
                 decode ({err}); IIS answers 401.1 (0x80093102) for it; emitted unchanged so \
                 `certgate check` rejects it visibly",
                e.at, e.user_name
            ));
        }
    }

    pub(super) fn listeners(&mut self, sites: &[&Site], config: &mut RawConfig) {
        if !self.opts.listen.is_empty() {
            config.server.listen.clone_from(&self.opts.listen);
            return;
        }
        for site in sites {
            for b in site
                .bindings
                .iter()
                .filter(|b| b.protocol.eq_ignore_ascii_case("https"))
            {
                let Some((addr, _host)) = b.information.rsplit_once(':') else {
                    continue;
                };
                let Some((ip, port)) = addr.rsplit_once(':') else {
                    continue;
                };
                let ip = match ip.trim() {
                    "*" | "" => "0.0.0.0",
                    other => other,
                };
                let listen = format!("{ip}:{}", port.trim());
                if !config.server.listen.contains(&listen) {
                    config.server.listen.push(listen);
                }
            }
        }
        let wildcard_ports: Vec<&str> = config
            .server
            .listen
            .iter()
            .filter_map(|l| l.strip_prefix("0.0.0.0:"))
            .collect();
        for l in &config.server.listen {
            if let Some((ip, port)) = l.rsplit_once(':')
                && ip != "0.0.0.0"
                && !ip.starts_with('[')
                && wildcard_ports.contains(&port)
            {
                self.warnings.push(format!(
                    "listeners 0.0.0.0:{port} and {l} overlap; http.sys shares the port, a \
                     Linux socket cannot: keep one (or pass --listen)"
                ));
            }
        }
        // IIS serves a binding without a host name to every name on its address; the closest
        // certgate equivalent is the site used when no other matches.
        if config.server.default_site.is_none() {
            config.server.default_site = sites
                .iter()
                .find(|s| {
                    s.bindings.iter().any(|b| {
                        b.protocol.eq_ignore_ascii_case("https")
                            && b.information
                                .rsplit_once(':')
                                .is_some_and(|(_, h)| h.trim().is_empty())
                    })
                })
                .map(|s| s.name.clone());
        }
    }

    pub(super) fn finish_passwords(&mut self) {
        if !self.encrypted.is_empty() {
            let list: Vec<String> = self
                .encrypted
                .iter()
                .map(|(what, env)| format!("{env} <- {what}"))
                .collect();
            self.warnings.push(format!(
                "{} mapping password(s) are encrypted with the IIS host's machine key \
                 ([enc:...:enc]) and cannot be decrypted here; set these environment variables \
                 before starting certgate:\n{}",
                list.len(),
                list.join("\n")
            ));
        }
        if !self.plain.is_empty() {
            let list: Vec<String> = self
                .plain
                .iter()
                .map(|(what, env)| format!("{env} <- {what}"))
                .collect();
            self.warnings.push(format!(
                "{} mapping password(s) are stored in plain text in the XML; they were not \
                 copied into the TOML: set these environment variables instead (and remove \
                 the passwords from the IIS configuration):\n{}",
                list.len(),
                list.join("\n")
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn at(line: u32) -> At {
        At {
            file: "applicationHost.config".into(),
            line,
            column: 1,
        }
    }

    #[test]
    fn password_variables_are_named_per_site_and_shared_per_element() {
        let mut pw = SitePasswords::new("Contoso Site (prod)");
        assert_eq!(
            pw.env_for(&at(10)),
            ("CERTGATE_PW_CONTOSO_SITE_PROD_1".into(), true)
        );
        assert_eq!(
            pw.env_for(&at(20)),
            ("CERTGATE_PW_CONTOSO_SITE_PROD_2".into(), true)
        );
        // A location inheriting the first element reuses its variable.
        assert_eq!(
            pw.env_for(&at(10)),
            ("CERTGATE_PW_CONTOSO_SITE_PROD_1".into(), false)
        );
        assert_eq!(SitePasswords::new("--").prefix, "CERTGATE_PW_");
    }
}
