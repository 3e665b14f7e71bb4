//! The section walk: `<configuration>`, `<configSections>`, `<location>`s and the
//! `<system.webServer>` parts certgate translates.

use super::*;

impl<'input> Reader<'_, 'input> {
    pub(super) fn configuration(&mut self, kind: &FileKind<'_>) -> Result<(), ImportError> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "configuration" {
            return Err(self.invalid(
                root,
                format!(
                    "root element is <{}>, expected <configuration>",
                    root.tag_name().name()
                ),
            ));
        }
        let base: Vec<String> = match kind {
            FileKind::AppHost => Vec::new(),
            FileKind::WebConfig(path) => path.to_vec(),
        };
        let mut skipped_top = Vec::new();
        for child in elements(root) {
            match child.tag_name().name() {
                "configSections" if matches!(kind, FileKind::AppHost) => {
                    self.config_sections(child, "");
                }
                "configProtectedData" => {}
                "system.applicationHost" if matches!(kind, FileKind::AppHost) => {
                    self.application_host(child);
                }
                "system.webServer" => {
                    let scope = match kind {
                        FileKind::AppHost => "server level".to_owned(),
                        FileKind::WebConfig(_) => format!("web.config for '{}'", base.join("/")),
                    };
                    self.web_server(child, kind, &base, scope, None)?;
                }
                "location" => self.location(child, kind, &base)?,
                other => skipped_top.push(other.to_owned()),
            }
        }
        if !skipped_top.is_empty() {
            self.out.untranslated.push(format!(
                "{}: sections not imported: {}",
                self.file,
                skipped_top.join(", ")
            ));
        }
        Ok(())
    }

    pub(super) fn config_sections(&mut self, node: Node<'_, 'input>, prefix: &str) {
        for child in elements(node) {
            let Some(name) = child.attribute("name") else {
                continue;
            };
            let path = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            match child.tag_name().name() {
                "sectionGroup" => self.config_sections(child, &path),
                "section" => {
                    let allow = !child
                        .attribute("overrideModeDefault")
                        .is_some_and(|m| m.eq_ignore_ascii_case("Deny"));
                    self.out.section_override_default.insert(path, allow);
                }
                _ => {}
            }
        }
    }

    pub(super) fn application_host(&mut self, node: Node<'_, 'input>) {
        let mut others = Vec::new();
        for child in elements(node) {
            if child.tag_name().name() != "sites" {
                others.push(child.tag_name().name().to_owned());
                continue;
            }
            for site in elements(child).filter(|n| n.has_tag_name("site")) {
                let Some(name) = site.attribute("name") else {
                    continue;
                };
                let bindings = elements(site)
                    .filter(|n| n.has_tag_name("bindings"))
                    .flat_map(elements)
                    .filter(|n| n.has_tag_name("binding"))
                    .map(|b| Binding {
                        protocol: b.attribute("protocol").unwrap_or_default().to_owned(),
                        information: b
                            .attribute("bindingInformation")
                            .unwrap_or_default()
                            .to_owned(),
                        ssl_flags: b.attribute("sslFlags").map(str::to_owned),
                    })
                    .collect();
                self.out.sites.push(Site {
                    name: name.to_owned(),
                    bindings,
                });
            }
        }
        if !others.is_empty() {
            self.out.untranslated.push(format!(
                "{}: system.applicationHost/{{{}}} not imported: application pools, \
                 applications, virtual directories, logging and limits have no certgate \
                 equivalent (each site forwards to one backend)",
                self.file,
                others.join(", ")
            ));
        }
    }

    pub(super) fn location(
        &mut self,
        node: Node<'_, 'input>,
        kind: &FileKind<'_>,
        base: &[String],
    ) -> Result<(), ImportError> {
        let raw_path = node.attribute("path").unwrap_or_default();
        let mut path = base.to_vec();
        path.extend(split_path(raw_path));
        let override_allow = match (
            node.attribute("overrideMode"),
            node.attribute("allowOverride"),
        ) {
            (Some(m), _) if m.eq_ignore_ascii_case("Allow") => Some(true),
            (Some(m), _) if m.eq_ignore_ascii_case("Deny") => Some(false),
            (Some(_), _) => None,
            (None, Some(a)) => Some(a.eq_ignore_ascii_case("true")),
            (None, None) => None,
        };
        if node
            .attribute("inheritInChildApplications")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            self.out.untranslated.push(format!(
                "{}: <location path=\"{raw_path}\"> inheritInChildApplications=\"false\" is not \
                 modelled; its settings are imported as inherited by every sub-path",
                self.at(node)
            ));
        }
        let scope = match kind {
            FileKind::AppHost => format!("<location path=\"{raw_path}\">"),
            FileKind::WebConfig(_) => format!(
                "<location path=\"{raw_path}\"> in web.config for '{}'",
                base.join("/")
            ),
        };
        for child in elements(node) {
            if child.has_tag_name("system.webServer") {
                self.web_server(child, kind, &path, scope.clone(), override_allow)?;
            } else {
                self.out.untranslated.push(format!(
                    "{}: {scope}: <{}> not imported",
                    self.at(child),
                    child.tag_name().name()
                ));
            }
        }
        Ok(())
    }

    pub(super) fn web_server(
        &mut self,
        node: Node<'_, 'input>,
        kind: &FileKind<'_>,
        path: &[String],
        scope: String,
        override_allow: Option<bool>,
    ) -> Result<(), ImportError> {
        let seq = self.next_seq();
        let (file_rank, file_depth) = match kind {
            FileKind::AppHost => (0, 0),
            FileKind::WebConfig(p) => (1, p.len()),
        };
        let mut frag = Fragment {
            at: self.at(node),
            scope,
            path: path.to_vec(),
            rank: (file_rank, file_depth, path.len(), seq),
            from_web_config: matches!(kind, FileKind::WebConfig(_)),
            override_allow,
            sections: Vec::new(),
            ssl_flags: None,
            anonymous: None,
            other_auth: Vec::new(),
            mapper: None,
        };
        let mut not_imported = Vec::new();
        for child in elements(node) {
            if !child.has_tag_name("security") {
                not_imported.push(child.tag_name().name().to_owned());
                continue;
            }
            for section in elements(child) {
                match section.tag_name().name() {
                    "access" => {
                        frag.sections.push(ACCESS);
                        self.unknown_attributes(section, &["sslFlags"], &frag.scope);
                        if let Some(v) = section.attribute("sslFlags") {
                            frag.ssl_flags = Some(self.ssl_flags(section, v, &frag.scope)?);
                        }
                    }
                    "authentication" => self.authentication(section, &mut frag)?,
                    other => not_imported.push(format!("security/{other}")),
                }
            }
        }
        if !not_imported.is_empty() {
            let what = if frag.path.is_empty() && !frag.from_web_config {
                "server-level system.webServer sections not imported (they apply to every site)"
            } else {
                "system.webServer sections not imported"
            };
            self.out.untranslated.push(format!(
                "{}: {}: {what}: {}",
                frag.at,
                frag.scope,
                not_imported.join(", ")
            ));
        }
        self.out.fragments.push(frag);
        Ok(())
    }

    pub(super) fn authentication(
        &mut self,
        node: Node<'_, 'input>,
        frag: &mut Fragment,
    ) -> Result<(), ImportError> {
        for module in elements(node) {
            let name = module.tag_name().name();
            match name {
                "anonymousAuthentication" => {
                    frag.sections.push(ANONYMOUS);
                    frag.anonymous = self.bool_attr(module, "enabled")?;
                    for attr in module.attributes() {
                        if attr.name() != "enabled" && attr.value() != "" {
                            self.out.untranslated.push(format!(
                                "anonymousAuthentication@{} is not translated: certgate forwards \
                                 anonymous requests without a Windows identity",
                                attr.name()
                            ));
                        }
                    }
                }
                "iisClientCertificateMappingAuthentication" => {
                    frag.sections.push(IIS_MAPPER);
                    frag.mapper = Some(self.mapper(module, &frag.scope)?);
                }
                _ => {
                    let enabled = self.bool_attr(module, "enabled")?;
                    frag.other_auth.push((name.to_owned(), enabled));
                }
            }
        }
        Ok(())
    }
}
