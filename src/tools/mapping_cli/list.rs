//! `certgate mapping list`: every mapping of every scope, as text or JSON.
//!
//! Certificates are shown as an administrator recognises them (subject, issuer, SHA-1
//! thumbprint as Windows shows it, expiry), never as the base64 body. Passwords are named by
//! where they come from, never read.

use std::path::Path;

use serde_json::{Value as Json, json};
use toml_edit::{DocumentMut, TableLike};

use super::document::{self as doc, MANY_TO_ONE, ONE_TO_ONE, RULES, ScopeRef};
use super::table;
use crate::identity::CertFacts;
use crate::mapping::one_to_one::decode_certificate_text;
use crate::mapping::table_edit::Record;

/// Every scope's mappings, optionally only one site's (and one location's).
pub fn collect(
    document: &DocumentMut,
    base: &Path,
    site: Option<&str>,
    location: Option<&str>,
) -> Result<Json, doc::DocumentError> {
    let mut scopes = Vec::new();
    let wanted: Vec<ScopeRef> = match site {
        Some(_) => {
            let one = doc::find_scope(document, site, location)?;
            if location.is_some() {
                vec![one]
            } else {
                with_locations(document, one)
            }
        }
        None => doc::sites(document)
            .into_iter()
            .flat_map(|(site_index, site_name)| {
                with_locations(
                    document,
                    ScopeRef {
                        site_index,
                        site_name,
                        location: None,
                    },
                )
            })
            .collect(),
    };
    for scope in wanted {
        scopes.push(scope_json(document, &scope, base));
    }
    Ok(json!({ "scopes": scopes }))
}

fn with_locations(document: &DocumentMut, site: ScopeRef) -> Vec<ScopeRef> {
    let mut out = vec![site.clone()];
    for location in doc::locations(document, site.site_index) {
        out.push(ScopeRef {
            location: Some(location),
            ..site.clone()
        });
    }
    out
}

fn scope_json(document: &DocumentMut, scope: &ScopeRef, base: &Path) -> Json {
    let mapper = doc::mapper(document, scope);
    let (location_index, location_path) = match &scope.location {
        Some((i, p)) => (Json::from(*i), Json::from(p.as_str())),
        None => (Json::Null, Json::Null),
    };
    let mut value = json!({
        "site": scope.site_name,
        "site_index": scope.site_index,
        "location": location_path,
        "location_index": location_index,
        "key": scope.key_path(),
        // A location without a section of its own uses the site's (listed with the site).
        "has_mapper_section": mapper.is_some(),
    });
    let Some(mapper) = mapper else {
        return value;
    };
    value["enabled"] = Json::from(doc::bool_of(mapper, "enabled").unwrap_or(false));
    value["one_to_one_certificate_mappings_enabled"] =
        Json::from(doc::bool_of(mapper, "one_to_one_certificate_mappings_enabled").unwrap_or(true));
    value["many_to_one_certificate_mappings_enabled"] = Json::from(
        doc::bool_of(mapper, "many_to_one_certificate_mappings_enabled").unwrap_or(true),
    );
    let mut one_to_one: Vec<Json> = doc::entries(mapper, ONE_TO_ONE)
        .into_iter()
        .enumerate()
        .map(|(i, e)| one_to_one_json(i, e, base))
        .collect();
    if let Some((value, path)) = table::table_of(document, scope, base) {
        match table::read(&path) {
            Ok((_, rows)) => {
                for record in rows.records() {
                    one_to_one.push(row_json(one_to_one.len(), &value, &record));
                }
            }
            Err(e) => value_problem(&mut one_to_one, &value, &e.to_string()),
        }
    }
    value["one_to_one"] = Json::from(one_to_one);
    value["many_to_one"] = doc::entries(mapper, MANY_TO_ONE)
        .into_iter()
        .enumerate()
        .map(|(i, e)| many_to_one_json(i, e))
        .collect();
    value
}

/// A row of the scope's mapping table.
fn row_json(index: usize, table: &str, record: &Record) -> Json {
    let certificate = decode_certificate_text(&record.certificate)
        .map_err(|e| e.to_string())
        .and_then(|der| {
            CertFacts::parse(&rustls::pki_types::CertificateDer::from(der))
                .map_err(|e| e.to_string())
        });
    json!({
        "index": index,
        "user_name": record.user_name,
        "enabled": record.enabled,
        "source": { "table": table, "line": record.line },
        "certificate": certificate_json(certificate),
        "password": record.password_env.as_ref().map_or(Json::Null, |v| json!({ "env": v })),
    })
}

/// A table that cannot be read is listed as one entry with its problem.
fn value_problem(out: &mut Vec<Json>, table: &str, problem: &str) {
    out.push(json!({
        "index": out.len(),
        "user_name": "",
        "enabled": false,
        "source": { "table": table },
        "certificate": { "problem": problem },
        "password": Json::Null,
    }));
}

fn certificate_json(facts: Result<CertFacts, String>) -> Json {
    match facts {
        Ok(facts) => json!({
            "subject": facts.subject.to_string(),
            "issuer": facts.issuer.to_string(),
            "thumbprint": facts.thumbprint(),
            "serial": facts.serial_hex(),
            "not_after": date(facts.not_after),
        }),
        Err(problem) => json!({ "problem": problem }),
    }
}

fn password_json(entry: &dyn TableLike) -> Json {
    match (
        doc::str_of(entry, "password_env"),
        doc::str_of(entry, "password_file"),
    ) {
        (Some(var), _) => json!({ "env": var }),
        (None, Some(file)) => json!({ "file": file }),
        (None, None) => Json::Null,
    }
}

fn one_to_one_json(index: usize, entry: &dyn TableLike, base: &Path) -> Json {
    let (source, der) = match (
        doc::str_of(entry, "certificate"),
        doc::str_of(entry, "certificate_file"),
    ) {
        (Some(text), _) => (
            json!("inline"),
            decode_certificate_text(text).map_err(|e| e.to_string()),
        ),
        (None, Some(file)) => (
            json!({ "file": file }),
            crate::tls::load_certificates(&base.join(file))
                .map_err(|e| e.to_string())
                .and_then(|certs| {
                    certs
                        .into_iter()
                        .next()
                        .map(|c| c.as_ref().to_vec())
                        .ok_or_else(|| "no certificate in the file".to_owned())
                }),
        ),
        (None, None) => (Json::Null, Err("no certificate".to_owned())),
    };
    let certificate = certificate_json(der.and_then(|der| {
        CertFacts::parse(&rustls::pki_types::CertificateDer::from(der)).map_err(|e| e.to_string())
    }));
    json!({
        "index": index,
        "user_name": doc::str_of(entry, "user_name").unwrap_or_default(),
        "enabled": doc::bool_of(entry, "enabled").unwrap_or(true),
        "source": source,
        "certificate": certificate,
        "password": password_json(entry),
    })
}

fn many_to_one_json(index: usize, entry: &dyn TableLike) -> Json {
    let rules: Vec<Json> = doc::entries(entry, RULES)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "index": i,
                "certificate_field": doc::str_of(r, "certificate_field").unwrap_or_default(),
                "certificate_sub_field": doc::str_of(r, "certificate_sub_field").unwrap_or_default(),
                "match_criteria": doc::str_of(r, "match_criteria").unwrap_or_default(),
                "compare_case_sensitive": doc::bool_of(r, "compare_case_sensitive").unwrap_or(true),
            })
        })
        .collect();
    json!({
        "index": index,
        "name": doc::str_of(entry, "name").unwrap_or_default(),
        "description": doc::str_of(entry, "description"),
        "enabled": doc::bool_of(entry, "enabled").unwrap_or(true),
        "permission_mode": doc::str_of(entry, "permission_mode").unwrap_or("Allow"),
        "user_name": doc::str_of(entry, "user_name").unwrap_or_default(),
        "password": password_json(entry),
        "rules": rules,
    })
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The listing as a person reads it.
pub fn render_text(listing: &Json) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    for scope in listing["scopes"].as_array().unwrap_or(&empty) {
        let name = match scope["location"].as_str() {
            Some(path) => format!("{}{path}", scope["site"].as_str().unwrap_or_default()),
            None => scope["site"].as_str().unwrap_or_default().to_owned(),
        };
        if scope["has_mapper_section"] != Json::Bool(true) {
            if scope["location"].is_null() {
                out.push_str(&format!(
                    "{name} ({}): no mapper section\n",
                    text(&scope["key"])
                ));
            }
            continue;
        }
        out.push_str(&format!(
            "{name} ({}): mapper {}, one-to-one {}, many-to-one {}\n",
            text(&scope["key"]),
            on_off(&scope["enabled"]),
            on_off(&scope["one_to_one_certificate_mappings_enabled"]),
            on_off(&scope["many_to_one_certificate_mappings_enabled"]),
        ));
        for m in scope["one_to_one"].as_array().unwrap_or(&empty) {
            let cert = &m["certificate"];
            let what = match cert["problem"].as_str() {
                Some(problem) => format!("certificate problem: {problem}"),
                None => format!(
                    "{}  (issuer {}; thumbprint {}; expires {})",
                    text(&cert["subject"]),
                    text(&cert["issuer"]),
                    text(&cert["thumbprint"]),
                    text(&cert["not_after"])
                ),
            };
            let from = match (m["source"]["table"].as_str(), m["source"]["line"].as_u64()) {
                (Some(table), Some(line)) => format!(" ({table} line {line})"),
                (Some(table), None) => format!(" ({table})"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  one-to-one [{}] {} {}{from}: {what}\n",
                m["index"],
                text(&m["user_name"]),
                enabled_word(&m["enabled"]),
            ));
        }
        for m in scope["many_to_one"].as_array().unwrap_or(&empty) {
            out.push_str(&format!(
                "  many-to-one [{}] `{}` {} {} -> {}\n",
                m["index"],
                text(&m["name"]),
                enabled_word(&m["enabled"]),
                text(&m["permission_mode"]),
                text(&m["user_name"]),
            ));
            let rules = m["rules"].as_array().unwrap_or(&empty);
            if rules.is_empty() {
                out.push_str("      (no rules: never matches)\n");
            }
            for r in rules {
                out.push_str(&format!(
                    "      rule [{}] {} {} = \"{}\"{}\n",
                    r["index"],
                    text(&r["certificate_field"]),
                    text(&r["certificate_sub_field"]),
                    text(&r["match_criteria"]),
                    if r["compare_case_sensitive"] == Json::Bool(false) {
                        " (case-insensitive)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    out
}

fn text(v: &Json) -> &str {
    v.as_str().unwrap_or("-")
}

fn on_off(v: &Json) -> &'static str {
    if v == &Json::Bool(true) { "on" } else { "off" }
}

fn enabled_word(v: &Json) -> &'static str {
    if v == &Json::Bool(true) {
        "enabled"
    } else {
        "DISABLED"
    }
}
