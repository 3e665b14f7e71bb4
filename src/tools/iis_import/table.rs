//! `import-iis --mappings-file`: one-to-one mappings written as mapping tables (see
//! [`crate::mapping::table`]) instead of inline TOML, for IIS configurations with very many.

use std::path::{Path, PathBuf};

use crate::config::raw::{RawConfig, RawIisMapping, RawOneToOne};
use crate::mapping::table_edit::{NewRow, write_table};

/// A section with more one-to-one mappings than this is better served by a table.
pub const LARGE: usize = 10_000;

/// One table to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Where to write it.
    pub path: PathBuf,
    /// The CSV text.
    pub text: String,
    /// The section it came from, for messages (`site 'Contoso' location '/hr'`).
    pub section: String,
    /// Number of mappings in it.
    pub rows: usize,
}

/// Moves the one-to-one mappings of every section into a table: the first section's to `file`,
/// the next ones to `{stem}-2.{ext}`, `{stem}-3.{ext}`, ...; each section's
/// `one_to_one_mappings_file` is set to `value(path)`. An entry a table cannot hold (a
/// certificate file, a password file, a line break in a field, PEM armour) stays inline.
pub fn move_to_tables(
    config: &mut RawConfig,
    file: &Path,
    value: impl Fn(&Path) -> String,
) -> Vec<Table> {
    let mut tables = Vec::new();
    for site in &mut config.sites {
        let name = site.name.clone();
        let sections = site
            .iis_client_certificate_mapping_authentication
            .iter_mut()
            .map(|m| (format!("site '{name}'"), m))
            .chain(site.locations.iter_mut().filter_map(|l| {
                let label = format!("site '{name}' location '{}'", l.path);
                l.iis_client_certificate_mapping_authentication
                    .as_mut()
                    .map(|m| (label, m))
            }));
        for (section, mapping) in sections {
            let (movable, kept): (Vec<RawOneToOne>, Vec<RawOneToOne>) =
                std::mem::take(&mut mapping.one_to_one_mappings)
                    .into_iter()
                    .partition(fits_in_table);
            mapping.one_to_one_mappings = kept;
            if movable.is_empty() {
                continue;
            }
            let path = numbered(file, tables.len() + 1);
            mapping.one_to_one_mappings_file = Some(value(&path));
            tables.push(Table {
                text: csv(&movable),
                path,
                section,
                rows: movable.len(),
            });
        }
    }
    tables
}

/// The sections with more than [`LARGE`] inline one-to-one mappings.
pub fn large_sections(config: &RawConfig) -> Vec<String> {
    let mut out = Vec::new();
    for site in &config.sites {
        let mut check = |label: String, m: &Option<RawIisMapping>| {
            if let Some(m) = m
                && m.one_to_one_mappings.len() > LARGE
            {
                out.push(format!(
                    "{label} ({} mappings)",
                    m.one_to_one_mappings.len()
                ));
            }
        };
        check(
            format!("site '{}'", site.name),
            &site.iis_client_certificate_mapping_authentication,
        );
        for l in &site.locations {
            check(
                format!("site '{}' location '{}'", site.name, l.path),
                &l.iis_client_certificate_mapping_authentication,
            );
        }
    }
    out
}

/// The value of `one_to_one_mappings_file` for a table written at `table` when the TOML goes
/// to `output`: the bare file name next to the output, else an absolute path (which also works
/// for a TOML written to standard output).
pub fn table_value(table: &Path, output: Option<&Path>) -> String {
    let table = std::path::absolute(table).unwrap_or_else(|_| table.to_owned());
    let output_dir = output
        .and_then(|o| std::path::absolute(o).ok())
        .and_then(|o| o.parent().map(Path::to_path_buf));
    match (output_dir, table.parent(), table.file_name()) {
        (Some(dir), Some(parent), Some(name)) if dir == parent => {
            name.to_string_lossy().into_owned()
        }
        _ => table.display().to_string(),
    }
}

fn fits_in_table(e: &RawOneToOne) -> bool {
    let one_line = |s: &str| !s.contains(['\r', '\n']);
    e.certificate_file.is_none()
        && e.password_file.is_none()
        && one_line(&e.user_name)
        && e.password_env.as_deref().is_none_or(one_line)
        && e.certificate
            .as_deref()
            .is_some_and(|c| !c.contains("-----"))
}

/// `file` for the first table, `{stem}-{n}.{ext}` for the n-th.
fn numbered(file: &Path, n: usize) -> PathBuf {
    if n == 1 {
        return file.to_owned();
    }
    let stem = file.file_stem().map_or_else(
        || "mappings".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    let name = match file.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    file.with_file_name(name)
}

/// The table as `Export-Csv` writes it, by the one table writer
/// ([`crate::mapping::table_edit::write_table`]). [`fits_in_table`] kept out every entry it
/// could refuse, so it writes.
fn csv(entries: &[RawOneToOne]) -> String {
    let rows: Vec<NewRow> = entries
        .iter()
        .map(|e| NewRow {
            user_name: e.user_name.clone(),
            certificate: e
                .certificate
                .as_deref()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
            enabled: e.enabled != Some(false),
            password_env: e.password_env.clone(),
        })
        .collect();
    write_table(&rows).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::raw::{RawLocation, RawSite};
    use crate::mapping::table::read_table;

    fn entry(user: &str, certificate: &str) -> RawOneToOne {
        RawOneToOne {
            user_name: user.into(),
            certificate: Some(certificate.into()),
            ..RawOneToOne::default()
        }
    }

    fn section(entries: Vec<RawOneToOne>) -> Option<RawIisMapping> {
        Some(RawIisMapping {
            enabled: true,
            one_to_one_mappings: entries,
            ..RawIisMapping::default()
        })
    }

    #[test]
    fn every_section_gets_its_own_table_and_odd_entries_stay_inline() {
        let mut config = RawConfig::default();
        let mut disabled = entry("EX\\\"quoted\", user", "MIIB AAAA\nBBBB");
        disabled.enabled = Some(false);
        disabled.password_env = Some("PW_1".into());
        let mut with_file = entry("EX\\file", "x");
        with_file.certificate_file = Some("f.pem".into());
        config.sites.push(RawSite {
            name: "Contoso".into(),
            iis_client_certificate_mapping_authentication: section(vec![
                entry("EX\\alice", "MIIBalice"),
                disabled,
                with_file,
            ]),
            locations: vec![
                RawLocation {
                    path: "/hr".into(),
                    iis_client_certificate_mapping_authentication: section(vec![entry(
                        "EX\\hr", "MIIBhr",
                    )]),
                    ..RawLocation::default()
                },
                RawLocation {
                    path: "/none".into(),
                    iis_client_certificate_mapping_authentication: section(vec![]),
                    ..RawLocation::default()
                },
            ],
            ..RawSite::default()
        });
        let tables = move_to_tables(&mut config, Path::new("out/m.csv"), |p| {
            format!("<{}>", p.display())
        });
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].path, Path::new("out/m.csv"));
        assert_eq!(tables[0].section, "site 'Contoso'");
        assert_eq!(tables[0].rows, 2);
        assert_eq!(
            tables[0].text,
            "\"userName\",\"certificate\",\"enabled\",\"passwordEnv\"\r\n\
             \"EX\\alice\",\"MIIBalice\",\"True\",\"\"\r\n\
             \"EX\\\"\"quoted\"\", user\",\"MIIBAAAABBBB\",\"False\",\"PW_1\"\r\n"
        );
        assert_eq!(tables[1].path, Path::new("out/m-2.csv"));
        assert_eq!(tables[1].section, "site 'Contoso' location '/hr'");
        let site = &config.sites[0];
        let root = site
            .iis_client_certificate_mapping_authentication
            .as_ref()
            .unwrap();
        assert_eq!(
            root.one_to_one_mappings_file.as_deref(),
            Some("<out/m.csv>")
        );
        assert_eq!(
            root.one_to_one_mappings.len(),
            1,
            "the certificate_file entry"
        );
        let none = site.locations[1]
            .iis_client_certificate_mapping_authentication
            .as_ref()
            .unwrap();
        assert!(none.one_to_one_mappings_file.is_none());

        // The table parser reads what was written (up to the certificates, which are fake).
        let mut problems = Vec::new();
        read_table(tables[0].text.as_bytes(), |r| {
            problems.extend(r.err().into_iter().flatten());
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.position().contains("(certificate)"))
        );
    }

    #[test]
    fn numbered_names_and_values() {
        assert_eq!(numbered(Path::new("a/b.csv"), 3), Path::new("a/b-3.csv"));
        assert_eq!(numbered(Path::new("b"), 2), Path::new("b-2"));
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("m.csv");
        assert_eq!(
            table_value(&table, Some(&dir.path().join("c.toml"))),
            "m.csv"
        );
        assert_eq!(
            table_value(&table, None),
            std::path::absolute(&table).unwrap().display().to_string()
        );
    }

    #[test]
    fn large_sections_are_named() {
        let mut config = RawConfig::default();
        config.sites.push(RawSite {
            name: "Big".into(),
            iis_client_certificate_mapping_authentication: section(
                (0..=LARGE).map(|i| entry(&format!("u{i}"), "x")).collect(),
            ),
            ..RawSite::default()
        });
        assert_eq!(large_sections(&config), ["site 'Big' (10001 mappings)"]);
    }
}
