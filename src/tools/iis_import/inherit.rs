//! IIS configuration merging: which settings are in force at a path, after section defaults,
//! `<location>`s and web.config files are applied in IIS order.

use super::*;

pub(super) fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len()
        && prefix
            .iter()
            .zip(path)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// The configuration in force at one path after merging.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Effective {
    pub(super) ssl_flags: SslFlags,
    pub(super) anonymous: bool,
    /// `None` until some level mentions the section; IIS defaults then apply.
    pub(super) mapper: Option<MapperState>,
    /// Other authentication modules by lowercased element name: (name as written, enabled).
    pub(super) other_auth: BTreeMap<String, (String, bool)>,
}

impl Effective {
    /// Only what certgate emits; used to decide whether a sub-path needs its own location.
    pub(super) fn emitted_eq(&self, other: &Self) -> bool {
        self.ssl_flags == other.ssl_flags
            && self.anonymous == other.anonymous
            && self.mapper == other.mapper
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct MapperState {
    pub(super) enabled: bool,
    pub(super) one_to_one_enabled: bool,
    pub(super) many_to_one_enabled: bool,
    pub(super) default_logon_domain: String,
    pub(super) logon_method: &'static str,
    pub(super) one_to_one: Vec<OneToOne>,
    pub(super) many_to_one: Vec<ManyToOne>,
}

impl Default for MapperState {
    /// IIS schema defaults for the section.
    fn default() -> Self {
        Self {
            enabled: false,
            one_to_one_enabled: true,
            many_to_one_enabled: true,
            default_logon_domain: String::new(),
            logon_method: "ClearText",
            one_to_one: Vec::new(),
            many_to_one: Vec::new(),
        }
    }
}

/// Merges every fragment that applies at `path`, in IIS order.
pub(super) fn resolve(
    fragments: &[Fragment],
    path: &[String],
    warnings: &mut Vec<String>,
) -> Result<Effective, ImportError> {
    let mut eff = Effective::default();
    for frag in fragments.iter().filter(|f| is_prefix(&f.path, path)) {
        if let Some(flags) = frag.ssl_flags {
            eff.ssl_flags = flags;
        }
        if let Some(anonymous) = frag.anonymous {
            eff.anonymous = anonymous;
        }
        for (name, enabled) in &frag.other_auth {
            let entry = eff
                .other_auth
                .entry(name.to_ascii_lowercase())
                .or_insert_with(|| (name.clone(), false));
            if let Some(enabled) = enabled {
                entry.1 = *enabled;
            }
        }
        let Some(m) = &frag.mapper else { continue };
        let state = eff.mapper.get_or_insert_with(MapperState::default);
        if let Some(v) = m.enabled {
            state.enabled = v;
        }
        if let Some(v) = m.one_to_one_enabled {
            state.one_to_one_enabled = v;
        }
        if let Some(v) = m.many_to_one_enabled {
            state.many_to_one_enabled = v;
        }
        if let Some(v) = &m.default_logon_domain {
            state.default_logon_domain.clone_from(v);
        }
        if let Some(v) = m.logon_method {
            state.logon_method = v;
        }
        merge(&mut state.one_to_one, &m.one_to_one, frag, warnings)?;
        merge(&mut state.many_to_one, &m.many_to_one, frag, warnings)?;
    }
    Ok(eff)
}

/// An entry of an IIS collection that inherits across levels.
pub(super) trait CollectionEntry: Clone {
    /// The collection's element name, for messages.
    const COLLECTION: &'static str;
    /// The collection key as written.
    fn key(&self) -> &str;
    /// Where the entry was added.
    fn at(&self) -> &At;
    /// Key equality under the schema's case rule.
    fn same_key(a: &str, b: &str) -> bool;
}

impl CollectionEntry for OneToOne {
    const COLLECTION: &'static str = "oneToOneMappings";
    fn key(&self) -> &str {
        &self.certificate
    }
    fn at(&self) -> &At {
        &self.at
    }
    /// `certificate` is declared `caseSensitive="true"` (base64 is case-sensitive anyway).
    fn same_key(a: &str, b: &str) -> bool {
        a == b
    }
}

impl CollectionEntry for ManyToOne {
    const COLLECTION: &'static str = "manyToOneMappings";
    fn key(&self) -> &str {
        &self.name
    }
    fn at(&self) -> &At {
        &self.at
    }
    /// IIS collection keys compare case-insensitively unless the schema says otherwise.
    fn same_key(a: &str, b: &str) -> bool {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// Applies one level's collection operations to the inherited entries.
pub(super) fn merge<T: CollectionEntry>(
    entries: &mut Vec<T>,
    ops: &[Op<T>],
    frag: &Fragment,
    warnings: &mut Vec<String>,
) -> Result<(), ImportError> {
    let collection = T::COLLECTION;
    for op in ops {
        match op {
            Op::Clear => entries.clear(),
            Op::Remove { key: gone, at } => {
                let before = entries.len();
                entries.retain(|e| !T::same_key(e.key(), gone));
                if entries.len() == before {
                    warnings.push(format!(
                        "{at}: {}: <remove> of {collection} entry '{}' removes nothing",
                        frag.scope,
                        shorten(gone)
                    ));
                }
            }
            Op::Add(entry) => {
                if entries.iter().any(|e| T::same_key(e.key(), entry.key())) {
                    let at = entry.at();
                    return Err(ImportError::DuplicateKey {
                        file: at.file.clone(),
                        line: at.line,
                        column: at.column,
                        scope: frag.scope.clone(),
                        collection,
                        key: shorten(entry.key()),
                    });
                }
                entries.push(entry.clone());
            }
        }
    }
    Ok(())
}

/// Keys can be whole certificates; keep messages readable.
pub(super) fn shorten(key: &str) -> String {
    if key.chars().count() > 40 {
        let head: String = key.chars().take(32).collect();
        format!("{head}...")
    } else {
        key.to_owned()
    }
}

/// Warns about sections a web.config sets although applicationHost.config locks them: IIS
/// answers every request below that path with 500.19 (0x80070021), certgate would not.
pub(super) fn check_locks(
    fragments: &[Fragment],
    defaults: &BTreeMap<String, bool>,
    warnings: &mut Vec<String>,
) {
    for frag in fragments.iter().filter(|f| f.from_web_config) {
        for section in &frag.sections {
            let unlocked_by_location = fragments
                .iter()
                .filter(|f| {
                    !f.from_web_config
                        && f.override_allow.is_some()
                        && f.sections.contains(section)
                        && is_prefix(&f.path, &frag.path)
                })
                .max_by_key(|f| f.rank)
                .and_then(|f| f.override_allow);
            // The shipped configSections lock all three sections; assume so when undeclared.
            let allowed = unlocked_by_location
                .unwrap_or_else(|| defaults.get(*section).copied().unwrap_or(false));
            if !allowed {
                warnings.push(format!(
                    "{}: sets {section}, which applicationHost.config locks \
                     (overrideModeDefault=\"Deny\" and no <location path=\"{}\" \
                     overrideMode=\"Allow\"> unlocking it): IIS answers 500.19 (0x80070021) \
                     below this path; certgate applies the setting",
                    frag.at,
                    frag.path.first().map(String::as_str).unwrap_or_default()
                ));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn configuration_paths_compare_case_insensitively_by_segment() {
        assert!(is_prefix(&path(&[]), &path(&["Site", "a"])));
        assert!(is_prefix(&path(&["site"]), &path(&["Site", "a"])));
        assert!(is_prefix(&path(&["Site", "A"]), &path(&["site", "a"])));
        assert!(!is_prefix(
            &path(&["Site", "a", "b"]),
            &path(&["Site", "a"])
        ));
        assert!(!is_prefix(
            &path(&["Site", "ab"]),
            &path(&["Site", "a", "b"])
        ));
    }

    #[test]
    fn emitted_equality_ignores_what_certgate_does_not_emit() {
        let a = Effective::default();
        let mut b = Effective::default();
        b.other_auth.insert(
            "windowsauthentication".into(),
            ("windowsAuthentication".into(), true),
        );
        assert!(a.emitted_eq(&b));
        b.anonymous = !a.anonymous;
        assert!(!a.emitted_eq(&b));
    }

    #[test]
    fn long_keys_are_shortened_for_messages() {
        assert_eq!(shorten("CONTOSO\\alice"), "CONTOSO\\alice");
        let blob = "MIIB".repeat(20);
        let short = shorten(&blob);
        assert!(
            short.ends_with("...") && short.chars().count() == 35,
            "{short}"
        );
    }
}
