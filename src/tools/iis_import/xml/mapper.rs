//! `<iisClientCertificateMappingAuthentication>`: the mapper's switches and its one-to-one and
//! many-to-one collections with their rules.

use super::*;

impl<'input> Reader<'_, 'input> {
    pub(super) fn mapper(
        &mut self,
        node: Node<'_, 'input>,
        scope: &str,
    ) -> Result<MapperFragment, ImportError> {
        self.unknown_attributes(
            node,
            &[
                "enabled",
                "oneToOneCertificateMappingsEnabled",
                "manyToOneCertificateMappingsEnabled",
                "defaultLogonDomain",
                "logonMethod",
            ],
            scope,
        );
        let mut m = MapperFragment {
            enabled: self.bool_attr(node, "enabled")?,
            one_to_one_enabled: self.bool_attr(node, "oneToOneCertificateMappingsEnabled")?,
            many_to_one_enabled: self.bool_attr(node, "manyToOneCertificateMappingsEnabled")?,
            default_logon_domain: node.attribute("defaultLogonDomain").map(str::to_owned),
            logon_method: match node.attribute("logonMethod") {
                None => None,
                Some(v) => Some(self.enum_attr(
                    node,
                    "logonMethod",
                    v,
                    &["Interactive", "Batch", "Network", "ClearText"],
                )?),
            },
            ..MapperFragment::default()
        };
        for child in elements(node) {
            match child.tag_name().name() {
                "oneToOneMappings" => {
                    for item in elements(child) {
                        let op = match item.tag_name().name() {
                            "add" => Op::Add(self.one_to_one(item, scope)?),
                            "remove" => Op::Remove {
                                key: strip_whitespace(self.required(item, "certificate")?),
                                at: self.at(item),
                            },
                            "clear" => Op::Clear,
                            _ => {
                                self.unknown_element(item, scope);
                                continue;
                            }
                        };
                        m.one_to_one.push(op);
                    }
                }
                "manyToOneMappings" => {
                    for item in elements(child) {
                        let op = match item.tag_name().name() {
                            "add" => Op::Add(self.many_to_one(item, scope)?),
                            "remove" => Op::Remove {
                                key: self.required(item, "name")?.to_owned(),
                                at: self.at(item),
                            },
                            "clear" => Op::Clear,
                            _ => {
                                self.unknown_element(item, scope);
                                continue;
                            }
                        };
                        m.many_to_one.push(op);
                    }
                }
                _ => self.unknown_element(child, scope),
            }
        }
        Ok(m)
    }

    pub(super) fn one_to_one(
        &mut self,
        node: Node<'_, 'input>,
        scope: &str,
    ) -> Result<OneToOne, ImportError> {
        self.unknown_attributes(
            node,
            &["userName", "password", "certificate", "enabled"],
            scope,
        );
        for child in elements(node) {
            self.unknown_element(child, scope);
        }
        Ok(OneToOne {
            certificate: strip_whitespace(self.required(node, "certificate")?),
            user_name: node.attribute("userName").unwrap_or_default().to_owned(),
            enabled: self.bool_attr(node, "enabled")?,
            password: password(node.attribute("password")),
            at: self.at(node),
        })
    }

    pub(super) fn many_to_one(
        &mut self,
        node: Node<'_, 'input>,
        scope: &str,
    ) -> Result<ManyToOne, ImportError> {
        self.unknown_attributes(
            node,
            &[
                "name",
                "description",
                "enabled",
                "permissionMode",
                "userName",
                "password",
            ],
            scope,
        );
        let name = self.required(node, "name")?.to_owned();
        if name.trim().is_empty() {
            return Err(self.invalid(
                node,
                "manyToOneMappings/add@name must not be empty (nonEmptyString)".to_owned(),
            ));
        }
        let permission = match node.attribute("permissionMode") {
            None => None,
            Some(v) => Some(self.enum_attr(node, "permissionMode", v, &["", "Allow", "Deny"])?),
        };
        let mut rules: Vec<Rule> = Vec::new();
        for child in elements(node) {
            if !child.has_tag_name("rules") {
                self.unknown_element(child, scope);
                continue;
            }
            // The rules collection belongs to this element alone: nothing is inherited into it,
            // so its add/remove/clear are resolved here.
            for item in elements(child) {
                match item.tag_name().name() {
                    "add" => {
                        let rule = self.rule(item, scope)?;
                        if rules.iter().any(|r| r.same_key(&rule)) {
                            let at = self.at(item);
                            return Err(ImportError::DuplicateKey {
                                file: at.file,
                                line: at.line,
                                column: at.column,
                                scope: format!("{scope}, mapping '{name}'"),
                                collection: "rules",
                                key: rule.describe(),
                            });
                        }
                        rules.push(rule);
                    }
                    "remove" => {
                        let gone = self.rule(item, scope)?;
                        let before = rules.len();
                        rules.retain(|r| !r.same_key(&gone));
                        if rules.len() == before {
                            self.out.warnings.push(format!(
                                "{}: <remove> of rule {} in mapping '{name}' removes nothing",
                                self.at(item),
                                gone.describe()
                            ));
                        }
                    }
                    "clear" => rules.clear(),
                    _ => self.unknown_element(item, scope),
                }
            }
        }
        Ok(ManyToOne {
            name,
            description: node
                .attribute("description")
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            enabled: self.bool_attr(node, "enabled")?,
            permission,
            user_name: node.attribute("userName").unwrap_or_default().to_owned(),
            password: password(node.attribute("password")),
            rules,
            at: self.at(node),
        })
    }

    pub(super) fn rule(
        &mut self,
        node: Node<'_, 'input>,
        scope: &str,
    ) -> Result<Rule, ImportError> {
        self.unknown_attributes(
            node,
            &[
                "certificateField",
                "certificateSubField",
                "matchCriteria",
                "compareCaseSensitive",
            ],
            scope,
        );
        let field = self.required(node, "certificateField")?;
        Ok(Rule {
            field: self.enum_attr(node, "certificateField", field, &["", "Subject", "Issuer"])?,
            sub_field: self.required(node, "certificateSubField")?.to_owned(),
            criteria: self.required(node, "matchCriteria")?.to_owned(),
            case_sensitive: self
                .bool_attr(node, "compareCaseSensitive")?
                .unwrap_or(true),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::{FileKind, ParsedFile, parse};
    use crate::tools::iis_import::ImportError;

    fn with_mapper(inner: &str) -> Result<ParsedFile, ImportError> {
        let text = format!(
            r#"<configuration>
  <location path="S">
    <system.webServer><security><authentication>
      <iisClientCertificateMappingAuthentication enabled="true" defaultLogonDomain="CONTOSO">
{inner}
      </iisClientCertificateMappingAuthentication>
    </authentication></security></system.webServer>
  </location>
</configuration>"#
        );
        parse(&text, "applicationHost.config", &FileKind::AppHost, 0)
    }

    #[test]
    fn the_mapper_switches_and_collections_are_read() {
        let parsed = with_mapper(
            r#"<manyToOneMappings>
  <add name="Sales" userName="CONTOSO\sales">
    <rules><add certificateField="Subject" certificateSubField="OU" matchCriteria="Sales" /></rules>
  </add>
</manyToOneMappings>"#,
        )
        .unwrap();
        let mapper = parsed.fragments[0].mapper.as_ref().unwrap();
        assert_eq!(mapper.enabled, Some(true));
        assert_eq!(mapper.default_logon_domain.as_deref(), Some("CONTOSO"));
        assert_eq!(mapper.many_to_one.len(), 1);
    }

    #[test]
    fn a_rule_without_its_field_is_an_error_at_its_position() {
        let err = with_mapper(
            r#"<manyToOneMappings>
  <add name="Sales" userName="CONTOSO\sales">
    <rules><add certificateSubField="OU" matchCriteria="Sales" /></rules>
  </add>
</manyToOneMappings>"#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("applicationHost.config:7:"), "{err}");
        assert!(
            err.contains("lacks the required attribute 'certificateField'"),
            "{err}"
        );
    }
}
