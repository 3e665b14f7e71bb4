//! Finding and changing mapping collections in a configuration kept as written (`toml_edit`).
//!
//! People write the same collection in two TOML shapes: `[[...one_to_one_mappings]]` headers or
//! an inline array `rules = [{ ... }, ...]`. Both are handled, and anything added takes the shape
//! (and the indentation) of what is already there, so an edit reads as if a person made it.

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

/// The mapper section's key in a site or location.
pub const MAPPER: &str = "iis_client_certificate_mapping_authentication";
/// `<oneToOneMappings>`.
pub const ONE_TO_ONE: &str = "one_to_one_mappings";
/// `<manyToOneMappings>`.
pub const MANY_TO_ONE: &str = "many_to_one_mappings";
/// `<rules>` of a many-to-one mapping.
pub const RULES: &str = "rules";

/// Why an edit cannot be made; the file is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not TOML at all.
    #[error("{file}: {reason}")]
    Parse {
        /// The configuration file.
        file: String,
        /// The parser's message.
        reason: String,
    },
    /// Something the command needs is not in the file, or not in a shape it can change.
    #[error("{0}")]
    Shape(String),
}

/// Where a collection lives: a site, or one of its `[[site.location]]` blocks.
#[derive(Debug, Clone)]
pub struct ScopeRef {
    /// Position of the site in the file.
    pub site_index: usize,
    /// The site's name.
    pub site_name: String,
    /// Position of the location in the site, when the scope is a location.
    pub location: Option<(usize, String)>,
}

impl ScopeRef {
    /// The TOML key path of the scope, as `check` prints it (`site[0].location[1]`).
    pub fn key_path(&self) -> String {
        match &self.location {
            Some((i, _)) => format!("site[{}].location[{i}]", self.site_index),
            None => format!("site[{}]", self.site_index),
        }
    }

    /// `Default Web Site` or `Default Web Site/admin`, as IIS names a location.
    pub fn display_name(&self) -> String {
        match &self.location {
            Some((_, path)) => format!("{}{}", self.site_name, path),
            None => self.site_name.clone(),
        }
    }
}

/// The `[[site]]` tables, in file order, with their names.
pub fn sites(doc: &DocumentMut) -> Vec<(usize, String)> {
    doc.get("site")
        .and_then(Item::as_array_of_tables)
        .map(|sites| {
            sites
                .iter()
                .enumerate()
                .map(|(i, t)| (i, str_of(t, "name").unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves `--site` (optional when the file has one site) and `--location`.
pub fn find_scope(
    doc: &DocumentMut,
    site: Option<&str>,
    location: Option<&str>,
) -> Result<ScopeRef, DocumentError> {
    let all = sites(doc);
    let names = || {
        all.iter()
            .map(|(_, n)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (site_index, site_name) = match site {
        Some(wanted) => {
            // IIS site names are case-insensitive; an exact match wins over a folded one.
            let exact = all.iter().find(|(_, n)| n == wanted);
            let folded: Vec<_> = all
                .iter()
                .filter(|(_, n)| n.eq_ignore_ascii_case(wanted))
                .collect();
            match (exact, folded.as_slice()) {
                (Some(found), _) => found.clone(),
                (None, [found]) => (*found).clone(),
                _ => {
                    return Err(DocumentError::Shape(format!(
                        "no [[site]] is named `{wanted}` (sites: {})",
                        names()
                    )));
                }
            }
        }
        None => match all.as_slice() {
            [only] => only.clone(),
            [] => {
                return Err(DocumentError::Shape(
                    "the file has no [[site]] tables".to_owned(),
                ));
            }
            _ => {
                return Err(DocumentError::Shape(format!(
                    "the file has several sites; choose one with --site (sites: {})",
                    names()
                )));
            }
        },
    };
    let location = match location {
        None => None,
        Some(wanted) => {
            let paths = locations(doc, site_index);
            let norm = |p: &str| p.trim_end_matches('/').to_ascii_lowercase();
            match paths.iter().find(|(_, p)| norm(p) == norm(wanted)) {
                Some(found) => Some(found.clone()),
                None => {
                    let known = paths
                        .iter()
                        .map(|(_, p)| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(DocumentError::Shape(format!(
                        "site `{site_name}` has no [[site.location]] with path `{wanted}` \
                         (locations: {})",
                        if known.is_empty() { "none" } else { &known }
                    )));
                }
            }
        }
    };
    Ok(ScopeRef {
        site_index,
        site_name,
        location,
    })
}

/// The `[[site.location]]` paths of a site.
pub fn locations(doc: &DocumentMut, site_index: usize) -> Vec<(usize, String)> {
    site_table(doc, site_index)
        .and_then(|s| s.get("location"))
        .and_then(Item::as_array_of_tables)
        .map(|locs| {
            locs.iter()
                .enumerate()
                .map(|(i, t)| (i, str_of(t, "path").unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn site_table(doc: &DocumentMut, index: usize) -> Option<&Table> {
    doc.get("site")
        .and_then(Item::as_array_of_tables)
        .and_then(|s| s.get(index))
}

/// The scope's table (a `[[site]]` or `[[site.location]]`).
pub fn scope_table<'a>(doc: &'a DocumentMut, scope: &ScopeRef) -> Option<&'a Table> {
    let site = site_table(doc, scope.site_index)?;
    match &scope.location {
        None => Some(site),
        Some((i, _)) => site
            .get("location")
            .and_then(Item::as_array_of_tables)
            .and_then(|l| l.get(*i)),
    }
}

fn scope_table_mut<'a>(doc: &'a mut DocumentMut, scope: &ScopeRef) -> Option<&'a mut Table> {
    let site = doc
        .get_mut("site")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|s| s.get_mut(scope.site_index))?;
    match &scope.location {
        None => Some(site),
        Some((i, _)) => site
            .get_mut("location")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|l| l.get_mut(*i)),
    }
}

/// The scope's mapper section, read-only.
pub fn mapper<'a>(doc: &'a DocumentMut, scope: &ScopeRef) -> Option<&'a dyn TableLike> {
    scope_table(doc, scope)?.get(MAPPER)?.as_table_like()
}

/// The scope's mapper section for changing it. A site without one gets
/// `[site.iis_client_certificate_mapping_authentication]` with `enabled = true` (reported in
/// `notes`); a location without one is refused, because a location's own section *replaces*
/// the site's, so creating one would silently drop every site mapping for that path.
pub fn mapper_mut<'a>(
    doc: &'a mut DocumentMut,
    scope: &ScopeRef,
    notes: &mut Vec<String>,
) -> Result<TableMut<'a>, DocumentError> {
    let table = scope_table_mut(doc, scope).ok_or_else(|| {
        DocumentError::Shape(format!("{} disappeared from the file", scope.key_path()))
    })?;
    if !table.contains_key(MAPPER) {
        if scope.location.is_some() {
            return Err(DocumentError::Shape(format!(
                "location `{}` has no [site.location.{MAPPER}] section of its own, so the site's \
                 mappings apply there; add the mapping to the site (leave out --location), or \
                 write the location's section by hand first (it replaces the site's for that path)",
                scope.display_name()
            )));
        }
        let mut section = Table::new();
        section.insert("enabled", toml_edit::value(true));
        // Right after the site's own keys, before its locations.
        section.set_position(table.position());
        table.insert(MAPPER, Item::Table(section));
        notes.push(format!(
            "created [site.{MAPPER}] with enabled = true for site `{}`",
            scope.site_name
        ));
    }
    match table.get_mut(MAPPER) {
        Some(Item::Table(t)) => Ok(TableMut::Std(t)),
        Some(Item::Value(Value::InlineTable(t))) => Ok(TableMut::Inline(t)),
        _ => Err(DocumentError::Shape(format!(
            "{}.{MAPPER} is not a table",
            scope.key_path()
        ))),
    }
}

/// A string value of a table.
pub fn str_of<'a>(table: &'a (impl TableLike + ?Sized), key: &str) -> Option<&'a str> {
    table.get(key).and_then(Item::as_str)
}

/// A boolean value of a table.
pub fn bool_of(table: &(impl TableLike + ?Sized), key: &str) -> Option<bool> {
    table.get(key).and_then(Item::as_bool)
}

/// The entries of a collection, whichever shape it is written in.
pub fn entries<'a>(container: &'a (impl TableLike + ?Sized), key: &str) -> Vec<&'a dyn TableLike> {
    match container.get(key) {
        Some(Item::ArrayOfTables(a)) => a.iter().map(|t| t as &dyn TableLike).collect(),
        Some(Item::Value(Value::Array(a))) => a
            .iter()
            .filter_map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
            .collect(),
        _ => Vec::new(),
    }
}

/// A table being changed, written either way.
pub enum TableMut<'a> {
    /// `[header]` table.
    Std(&'a mut Table),
    /// `{ inline }` table.
    Inline(&'a mut InlineTable),
}

/// Shape of a collection created by an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewList {
    /// `[[a.b.c]]` headers (mappings).
    Tables,
    /// A multi-line inline array (rules), like the example configuration.
    Inline,
}

impl<'a> TableMut<'a> {
    /// Read access.
    pub fn as_like(&self) -> &dyn TableLike {
        match self {
            Self::Std(t) => *t,
            Self::Inline(t) => *t,
        }
    }

    /// Sets a boolean, keeping the formatting (and any comment) around an existing value.
    pub fn set_bool(&mut self, key: &str, value: bool) {
        let existing = match self {
            Self::Std(t) => t.get_mut(key).and_then(Item::as_value_mut),
            Self::Inline(t) => t.get_mut(key),
        };
        match existing {
            Some(v) => {
                let decor = v.decor().clone();
                *v = Value::from(value);
                *v.decor_mut() = decor;
            }
            None => match self {
                Self::Std(t) => {
                    t.insert(key, toml_edit::value(value));
                }
                Self::Inline(t) => {
                    t.insert(key, Value::from(value));
                }
            },
        }
    }

    /// The collection under `key`; created (empty) in `shape` when `create` and absent.
    pub fn list(self, key: &str, create: Option<NewList>) -> Result<Option<ListMut<'a>>, String> {
        match self {
            Self::Std(t) => {
                if !t.contains_key(key) {
                    match create {
                        None => return Ok(None),
                        Some(NewList::Tables) => {
                            t.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
                        }
                        Some(NewList::Inline) => {
                            t.insert(key, toml_edit::value(new_inline_array()));
                        }
                    }
                }
                match t.get_mut(key) {
                    Some(Item::ArrayOfTables(a)) => Ok(Some(ListMut::Tables(a))),
                    Some(Item::Value(Value::Array(a))) => Ok(Some(ListMut::Inline(a))),
                    _ => Err(format!("`{key}` is not an array of tables")),
                }
            }
            Self::Inline(t) => {
                if !t.contains_key(key) {
                    if create.is_none() {
                        return Ok(None);
                    }
                    t.insert(key, Value::Array(new_inline_array()));
                }
                match t.get_mut(key) {
                    Some(Value::Array(a)) => Ok(Some(ListMut::Inline(a))),
                    _ => Err(format!("`{key}` is not an array of tables")),
                }
            }
        }
    }
}

fn new_inline_array() -> Array {
    let mut a = Array::new();
    a.set_trailing_comma(true);
    a.set_trailing("\n");
    a
}

/// A collection being changed.
pub enum ListMut<'a> {
    /// `[[...]]` tables.
    Tables(&'a mut ArrayOfTables),
    /// An inline array of inline tables.
    Inline(&'a mut Array),
}

impl<'a> ListMut<'a> {
    /// Read access to every entry (inline entries that are not tables are skipped).
    pub fn entries(&self) -> Vec<&dyn TableLike> {
        match self {
            Self::Tables(a) => a.iter().map(|t| t as &dyn TableLike).collect(),
            Self::Inline(a) => a
                .iter()
                .filter_map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
                .collect(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Self::Tables(a) => a.len(),
            Self::Inline(a) => a.len(),
        }
    }

    /// Whether the collection is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One entry, for changing it.
    pub fn entry_mut(self, index: usize) -> Option<TableMut<'a>> {
        match self {
            Self::Tables(a) => a.get_mut(index).map(TableMut::Std),
            Self::Inline(a) => a
                .get_mut(index)
                .and_then(Value::as_inline_table_mut)
                .map(TableMut::Inline),
        }
    }

    /// Removes one entry with its leading comment.
    pub fn remove(&mut self, index: usize) {
        match self {
            Self::Tables(a) => {
                a.remove(index);
            }
            Self::Inline(a) => {
                a.remove(index);
            }
        }
    }

    /// Inserts an entry at `index` (the end when `None`); `comment` (without `#`) goes above a
    /// `[[...]]` entry.
    pub fn insert(&mut self, index: Option<usize>, fields: Vec<(&str, Value)>, comment: &str) {
        match self {
            Self::Tables(a) => {
                let mut t = Table::new();
                for (k, v) in fields {
                    t.insert(k, Item::Value(v));
                }
                let mut prefix = String::from("\n");
                for line in comment.lines() {
                    prefix.push_str(&format!("# {line}\n"));
                }
                t.decor_mut().set_prefix(prefix);
                match index {
                    Some(i) if i < a.len() => a.insert(i, t),
                    _ => a.push(t),
                }
            }
            Self::Inline(a) => {
                let mut t = InlineTable::new();
                for (k, v) in fields {
                    t.insert(k, v);
                }
                t.fmt();
                let mut value = Value::InlineTable(t);
                // Indent like the neighbours; a fresh array gets the example file's style.
                let (prefix, suffix) = a
                    .iter()
                    .last()
                    .map(|v| {
                        let d = v.decor();
                        (
                            d.prefix().and_then(|p| p.as_str()).map(str::to_owned),
                            d.suffix().and_then(|s| s.as_str()).map(str::to_owned),
                        )
                    })
                    .unwrap_or((Some("\n  ".to_owned()), Some(String::new())));
                if let Some(p) = prefix {
                    value.decor_mut().set_prefix(p);
                }
                if let Some(s) = suffix {
                    value.decor_mut().set_suffix(s);
                }
                match index {
                    Some(i) if i < a.len() => a.insert_formatted(i, value),
                    _ => a.push_formatted(value),
                }
            }
        }
    }
}

/// Parses configuration text for editing.
pub fn parse(text: &str, file: &str) -> Result<DocumentMut, DocumentError> {
    text.parse::<DocumentMut>()
        .map_err(|e| DocumentError::Parse {
            file: file.to_owned(),
            reason: e.to_string().trim_end().replace('\n', " "),
        })
}
