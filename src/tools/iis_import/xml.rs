//! Reading IIS XML (applicationHost.config and web.config) into owned fragments.
//!
//! Each `<system.webServer>` block, at server level, inside a `<location>` or in a web.config,
//! becomes one [`Fragment`] tagged with the configuration path it applies to and its place in
//! IIS merge order. Values are parsed here, where the XML position is known, so that every
//! malformed value is reported with file, line and column as IIS reports 500.19.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};

use super::ImportError;

/// Attributes IIS's configuration system uses for locking; they mean nothing to certgate.
const LOCK_ATTRIBUTES: &[&str] = &[
    "lockAttributes",
    "lockAllAttributesExcept",
    "lockElements",
    "lockAllElementsExcept",
    "lockItem",
];

pub(super) const ACCESS: &str = "system.webServer/security/access";
pub(super) const ANONYMOUS: &str =
    "system.webServer/security/authentication/anonymousAuthentication";
pub(super) const IIS_MAPPER: &str =
    "system.webServer/security/authentication/iisClientCertificateMappingAuthentication";

/// Where something was written, for messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct At {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// `access@sslFlags`, reduced to the flags certgate acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SslFlags {
    pub ssl: bool,
    pub negotiate_cert: bool,
    pub require_cert: bool,
}

impl SslFlags {
    /// The comma list certgate's `ssl_flags` takes, `"None"` when no flag is set.
    pub fn render(self) -> String {
        let names: Vec<&str> = [
            (self.ssl, "Ssl"),
            (self.negotiate_cert, "SslNegotiateCert"),
            (self.require_cert, "SslRequireCert"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            "None".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// A mapping password as IIS stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Password {
    /// Absent, empty, or the empty default `[enc:AesProvider::enc]`.
    Absent,
    /// `[enc:Provider:...:enc]`, only decryptable with the IIS host's machine key.
    Encrypted,
    /// Plain text in the XML.
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OneToOne {
    /// Whitespace already stripped.
    pub certificate: String,
    pub user_name: String,
    pub enabled: Option<bool>,
    pub password: Password,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ManyToOne {
    pub name: String,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub permission: Option<&'static str>,
    pub user_name: String,
    pub password: Password,
    pub rules: Vec<Rule>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub field: &'static str,
    pub sub_field: String,
    pub criteria: String,
    pub case_sensitive: bool,
}

impl Rule {
    /// IIS's combined collection key; `certificateSubField` and `matchCriteria` are
    /// case-sensitive keys in the schema, the enum and the bool are compared by value.
    fn same_key(&self, other: &Self) -> bool {
        self == other
    }

    fn describe(&self) -> String {
        format!(
            "{}/{}={} (compareCaseSensitive={})",
            self.field, self.sub_field, self.criteria, self.case_sensitive
        )
    }
}

/// One step of an IIS collection at one level.
#[derive(Debug, Clone)]
pub(super) enum Op<T> {
    Add(T),
    Remove { key: String, at: At },
    Clear,
}

#[derive(Debug, Clone, Default)]
pub(super) struct MapperFragment {
    pub enabled: Option<bool>,
    pub one_to_one_enabled: Option<bool>,
    pub many_to_one_enabled: Option<bool>,
    pub default_logon_domain: Option<String>,
    pub logon_method: Option<&'static str>,
    pub one_to_one: Vec<Op<OneToOne>>,
    pub many_to_one: Vec<Op<ManyToOne>>,
}

/// One `<system.webServer>` block and where it applies.
#[derive(Debug, Clone)]
pub(super) struct Fragment {
    pub at: At,
    /// Human description of the level, e.g. `<location path="Contoso/app">`.
    pub scope: String,
    /// Configuration path segments: empty for the server level, then site, then URL segments.
    pub path: Vec<String>,
    /// Sort key giving IIS merge order: (file kind, file depth, path depth, document order).
    pub rank: (u8, usize, usize, usize),
    pub from_web_config: bool,
    /// `overrideMode` (or legacy `allowOverride`) of the enclosing `<location>`.
    pub override_allow: Option<bool>,
    /// Sections present in this block, for lock checks.
    pub sections: Vec<&'static str>,
    pub ssl_flags: Option<SslFlags>,
    pub anonymous: Option<bool>,
    /// Other authentication modules and their `enabled`, by element name.
    pub other_auth: Vec<(String, Option<bool>)>,
    pub mapper: Option<MapperFragment>,
}

#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub protocol: String,
    pub information: String,
    pub ssl_flags: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Site {
    pub name: String,
    pub bindings: Vec<Binding>,
}

/// Everything read from one file.
#[derive(Debug, Default)]
pub(super) struct ParsedFile {
    pub fragments: Vec<Fragment>,
    pub sites: Vec<Site>,
    /// `configSections` `overrideModeDefault` by section path; true = Allow.
    pub section_override_default: BTreeMap<String, bool>,
    /// Warnings found while reading values (no-op flags and the like).
    pub warnings: Vec<String>,
    /// Things read but not translated.
    pub untranslated: Vec<String>,
}

/// Which file is being read, which decides its place in merge order.
pub(super) enum FileKind<'a> {
    AppHost,
    /// A web.config that applies at this configuration path (site first).
    WebConfig(&'a [String]),
}

struct Reader<'a, 'input> {
    doc: &'a Document<'input>,
    file: &'a str,
    out: ParsedFile,
    seq: usize,
}

/// Parses one file. `seq_start` keeps document order unique across files.
pub(super) fn parse(
    text: &str,
    file: &str,
    kind: &FileKind<'_>,
    seq_start: usize,
) -> Result<ParsedFile, ImportError> {
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        ImportError::Xml {
            file: file.to_owned(),
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let mut reader = Reader {
        doc: &doc,
        file,
        out: ParsedFile::default(),
        seq: seq_start,
    };
    reader.configuration(kind)?;
    Ok(reader.out)
}

fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

/// Splits a `<location path>` into segments; `""`, `"."` and `"/"` mean "this level".
pub(super) fn split_path(path: &str) -> Vec<String> {
    path.split(['/', '\\'])
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_owned)
        .collect()
}

impl<'input> Reader<'_, 'input> {
    fn at(&self, node: Node<'_, 'input>) -> At {
        let pos = self.doc.text_pos_at(node.range().start);
        At {
            file: self.file.to_owned(),
            line: pos.row,
            column: pos.col,
        }
    }

    fn invalid(&self, node: Node<'_, 'input>, message: String) -> ImportError {
        let at = self.at(node);
        ImportError::InvalidConfig {
            file: at.file,
            line: at.line,
            column: at.column,
            message,
        }
    }

    fn next_seq(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    fn configuration(&mut self, kind: &FileKind<'_>) -> Result<(), ImportError> {
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

    fn config_sections(&mut self, node: Node<'_, 'input>, prefix: &str) {
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

    fn application_host(&mut self, node: Node<'_, 'input>) {
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

    fn location(
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

    fn web_server(
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

    fn authentication(
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

    fn mapper(
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

    fn one_to_one(&mut self, node: Node<'_, 'input>, scope: &str) -> Result<OneToOne, ImportError> {
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

    fn many_to_one(
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

    fn rule(&mut self, node: Node<'_, 'input>, scope: &str) -> Result<Rule, ImportError> {
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

    fn ssl_flags(
        &mut self,
        node: Node<'_, 'input>,
        value: &str,
        scope: &str,
    ) -> Result<SslFlags, ImportError> {
        let mut flags = SslFlags::default();
        let (mut map_cert, mut ssl128) = (false, false);
        if let Ok(n) = value.trim().parse::<u32>() {
            if n & !(8 | 32 | 64 | 128 | 256) != 0 {
                return Err(self.invalid(
                    node,
                    format!("sslFlags=\"{value}\" has bits IIS does not define"),
                ));
            }
            flags.ssl = n & 8 != 0;
            flags.negotiate_cert = n & 32 != 0;
            flags.require_cert = n & 64 != 0;
            map_cert = n & 128 != 0;
            ssl128 = n & 256 != 0;
        } else {
            for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match name.to_ascii_lowercase().as_str() {
                    "none" => {}
                    "ssl" => flags.ssl = true,
                    "sslnegotiatecert" => flags.negotiate_cert = true,
                    "sslrequirecert" => flags.require_cert = true,
                    "sslmapcert" => map_cert = true,
                    "ssl128" => ssl128 = true,
                    _ => {
                        return Err(self
                            .invalid(node, format!("sslFlags: '{name}' is not an IIS SSL flag")));
                    }
                }
            }
        }
        let at = self.at(node);
        if map_cert {
            self.out.warnings.push(format!(
                "{at}: {scope}: sslFlags SslMapCert is not an IIS 7+ flag; ignored"
            ));
        }
        if ssl128 {
            self.out.untranslated.push(format!(
                "{at}: {scope}: sslFlags Ssl128 dropped: a no-op since IIS 7.5, and certgate \
                 negotiates only strong ciphers"
            ));
        }
        Ok(flags)
    }

    fn required<'n>(&self, node: Node<'n, 'input>, name: &str) -> Result<&'n str, ImportError> {
        node.attribute(name).ok_or_else(|| {
            self.invalid(
                node,
                format!(
                    "<{}> lacks the required attribute '{name}'",
                    node.tag_name().name()
                ),
            )
        })
    }

    fn bool_attr(&self, node: Node<'_, 'input>, name: &str) -> Result<Option<bool>, ImportError> {
        match node.attribute(name).map(str::trim) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(self.invalid(
                node,
                format!("{name}=\"{v}\" is not a boolean (true or false)"),
            )),
        }
    }

    /// Parses an IIS enum by name (case-insensitively) or by its numeric value, which is the
    /// index into `names` (IIS numbers logonMethod from 0 and the other enums from 1; callers
    /// pad `names` with `""` to line the numbers up).
    fn enum_attr(
        &self,
        node: Node<'_, 'input>,
        attr: &str,
        value: &str,
        names: &[&'static str],
    ) -> Result<&'static str, ImportError> {
        let value = value.trim();
        let by_name = names
            .iter()
            .find(|n| !n.is_empty() && n.eq_ignore_ascii_case(value));
        let by_number = value
            .parse::<usize>()
            .ok()
            .and_then(|i| names.get(i))
            .filter(|n| !n.is_empty());
        by_name.or(by_number).copied().ok_or_else(|| {
            let valid: Vec<&str> = names.iter().copied().filter(|n| !n.is_empty()).collect();
            self.invalid(
                node,
                format!("{attr}=\"{value}\" is not one of {}", valid.join(", ")),
            )
        })
    }

    fn unknown_attributes(&mut self, node: Node<'_, 'input>, known: &[&str], scope: &str) {
        for attr in node.attributes() {
            if known.contains(&attr.name()) {
                continue;
            }
            let why = if LOCK_ATTRIBUTES.contains(&attr.name()) {
                "IIS configuration locking has no certgate equivalent"
            } else {
                "unknown attribute"
            };
            self.out.untranslated.push(format!(
                "{}: {scope}: <{}> attribute {}=\"{}\" not translated ({why})",
                self.at(node),
                node.tag_name().name(),
                attr.name(),
                attr.value()
            ));
        }
    }

    fn unknown_element(&mut self, node: Node<'_, 'input>, scope: &str) {
        self.out.untranslated.push(format!(
            "{}: {scope}: element <{}> not translated",
            self.at(node),
            node.tag_name().name()
        ));
    }
}

fn password(value: Option<&str>) -> Password {
    match value.map(str::trim) {
        None | Some("") => Password::Absent,
        Some(v) if v.starts_with("[enc:") && v.ends_with(":enc]") && v.len() >= 10 => {
            let inner = &v[5..v.len() - 5];
            match inner.split_once(':') {
                Some((_, payload)) if !payload.is_empty() => Password::Encrypted,
                _ => Password::Absent,
            }
        }
        Some(_) => Password::Plain,
    }
}

pub(super) fn strip_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn passwords_are_classified() {
        assert_eq!(password(None), Password::Absent);
        assert_eq!(password(Some("")), Password::Absent);
        assert_eq!(password(Some("[enc:AesProvider::enc]")), Password::Absent);
        assert_eq!(
            password(Some("[enc:AesProvider:57686f61:enc]")),
            Password::Encrypted
        );
        assert_eq!(
            password(Some("[enc:Rsa_WAS:jAAAAAECAAAD:enc]")),
            Password::Encrypted
        );
        assert_eq!(password(Some("hunter2")), Password::Plain);
    }

    #[test]
    fn location_paths_split_into_segments() {
        assert!(split_path("").is_empty());
        assert!(split_path(".").is_empty());
        assert_eq!(
            split_path("Contoso Site/a/b/"),
            vec!["Contoso Site", "a", "b"]
        );
        assert_eq!(split_path("/app"), vec!["app"]);
    }

    #[test]
    fn ssl_flags_render() {
        let flags = SslFlags {
            ssl: true,
            negotiate_cert: true,
            require_cert: false,
        };
        assert_eq!(flags.render(), "Ssl, SslNegotiateCert");
        assert_eq!(SslFlags::default().render(), "None");
    }
}
