//! The `iis_client_certificate_mapping_authentication` section: one-to-one lists (decoded and
//! hashed on all cores) and many-to-one rules.

use std::sync::Arc;

use crate::config::raw::RawIisMapping;
use crate::mapping::many_to_one::ManyToOneSet;
use crate::mapping::one_to_one::{
    CertificateProblem, OneToOneIndex, certificate_digest, digest_certificate_text, map_entries,
};
use crate::mapping::{MappedUser, Mapper, MappingKind, MappingSource};

use super::Loader;
use super::fast::{self, FastOneToOne};

impl Loader<'_> {
    pub(super) fn mapper(&mut self, key: &str, raw: &RawIisMapping) -> Mapper {
        if let Some(method) = &raw.logon_method {
            let known = ["interactive", "batch", "network", "cleartext"];
            if !known.contains(&method.to_ascii_lowercase().as_str()) {
                self.error(
                    format!("{key}.logon_method"),
                    format!("`{method}` is not an IIS logonMethod (Interactive, Batch, Network, ClearText)"),
                );
            }
        }
        let index = self.one_to_one_list(key, raw);
        let many_key = format!("{key}.many_to_one_mappings");
        let many_to_one = match ManyToOneSet::compile(&raw.many_to_one_mappings, &many_key) {
            Ok(set) => {
                for w in set.warnings() {
                    self.warn(&many_key, w);
                }
                set
            }
            Err(errors) => {
                for e in errors {
                    self.error(e.key, e.reason);
                }
                ManyToOneSet::default()
            }
        };
        let mut many_to_one_users = Vec::with_capacity(many_to_one.len());
        for (j, (m, raw_m)) in many_to_one
            .mappings()
            .iter()
            .zip(&raw.many_to_one_mappings)
            .enumerate()
        {
            let password = self.password(
                &format!("{many_key}[{j}]"),
                raw_m.password_env.as_deref(),
                raw_m.password_file.as_deref(),
            );
            let user = self.mapped_user(
                m.user_name(),
                MappingKind::ManyToOne,
                MappingSource::Named(m.name().into()),
                password,
            );
            many_to_one_users.push(user);
        }
        Mapper {
            enabled: raw.enabled,
            one_to_one_enabled: raw.one_to_one_certificate_mappings_enabled.unwrap_or(true),
            many_to_one_enabled: raw.many_to_one_certificate_mappings_enabled.unwrap_or(true),
            one_to_one: index,
            many_to_one,
            many_to_one_users,
            default_logon_domain: raw.default_logon_domain.clone(),
        }
    }

    /// A section's `one_to_one_mappings`, indexed. Placeholders of the fast path stand for
    /// their runs, so positions (and key paths) are those of the file. Decoding, checking and
    /// hashing the inline certificates runs first, on all cores; then each entry is judged in
    /// file order, so errors come out in the same order as one entry at a time.
    fn one_to_one_list(&mut self, key: &str, raw: &RawIisMapping) -> OneToOneIndex {
        let runs = std::mem::take(&mut self.runs);
        let placeholder = |entry| fast::placeholder_run(&self.marker, runs.len(), entry);
        let parsed: Vec<FastOneToOne<'_>> = raw
            .one_to_one_mappings
            .iter()
            .filter(|e| placeholder(e).is_none())
            .map(FastOneToOne::from)
            .collect();
        let mut parsed_entries = parsed.iter();
        let mut entries: Vec<&FastOneToOne<'_>> = Vec::new();
        for entry in &raw.one_to_one_mappings {
            match placeholder(entry) {
                Some(run) => entries.extend(&runs[run]),
                None => entries.extend(parsed_entries.next()),
            }
        }
        let list: Arc<str> = format!("{key}.one_to_one_mappings").into();
        let prepared = map_entries(&entries, |j, e, scratch| {
            let digest = match (&e.certificate, &e.certificate_file) {
                (Some(text), None) => Some(digest_certificate_text(text, scratch)),
                _ => None,
            };
            // The user too, unless it needs the loader (a password) or will not be indexed.
            let user = (matches!(digest, Some(Ok(_)))
                && e.enabled != Some(false)
                && e.password_env.is_none()
                && e.password_file.is_none())
            .then(|| one_to_one_user(e, &list, j));
            Prepared { digest, user }
        });
        // Judge each entry in order; index the ones that pass all at once, then put each
        // duplicate's error where inserting one by one would have reported it: right after the
        // entry's other errors.
        let first_error = self.errors.len();
        let mut indexed = Vec::with_capacity(entries.len());
        let mut error_at = Vec::with_capacity(entries.len());
        for (j, (entry, prepared)) in entries.iter().zip(prepared).enumerate() {
            if let Some(indexable) = self.one_to_one(&list, j, entry, prepared) {
                indexed.push(indexable);
                error_at.push((j, self.errors.len()));
            }
        }
        let (index, duplicates) = OneToOneIndex::build(indexed);
        if !duplicates.is_empty() {
            let later = self.errors.split_off(first_error);
            let mut duplicates = duplicates.into_iter().peekable();
            for (k, error) in later.into_iter().enumerate() {
                while let Some((position, existing)) =
                    duplicates.next_if(|(position, _)| error_at[*position].1 <= first_error + k)
                {
                    self.duplicate(&list, error_at[position].0, &existing);
                }
                self.errors.push(error);
            }
            for (position, existing) in duplicates {
                self.duplicate(&list, error_at[position].0, &existing);
            }
        }
        drop(entries);
        drop(parsed);
        self.runs = runs;
        index
    }

    /// Entry `j` of the list at `list`, with what [`Self::one_to_one_list`] prepared for it:
    /// reports its errors, and returns what to index unless it is broken or disabled.
    fn one_to_one(
        &mut self,
        list: &Arc<str>,
        j: usize,
        raw: &FastOneToOne<'_>,
        prepared: Prepared,
    ) -> Option<([u8; 32], Arc<MappedUser>)> {
        let Prepared { digest, user } = prepared;
        // The key path, formatted only when something is reported.
        let key = || format!("{list}[{j}]");
        if raw.user_name.trim().is_empty() {
            self.error(format!("{}.user_name", key()), "the mapping names no user");
        }
        let password = if raw.password_env.is_some() || raw.password_file.is_some() {
            self.password(
                &key(),
                raw.password_env.as_deref(),
                raw.password_file.as_deref(),
            )
        } else {
            Ok(None)
        };
        let digest = match (&raw.certificate, &raw.certificate_file) {
            (Some(_), None) => digest.and_then(|d| {
                d.map_err(|problem| self.certificate_problem(&key(), "certificate", problem))
                    .ok()
            }),
            (None, Some(file)) => {
                let path = self.file_value(&format!("{}.certificate_file", key()), file);
                path.and_then(|p| match crate::tls::load_certificates(&p) {
                    Ok(mut certs) if certs.len() == 1 => certs.pop().and_then(|c| {
                        certificate_digest(&c)
                            .map_err(|problem| {
                                self.certificate_problem(&key(), "certificate_file", problem)
                            })
                            .ok()
                    }),
                    Ok(certs) => {
                        self.error(
                            format!("{}.certificate_file", key()),
                            format!(
                                "holds {} certificates; a mapping names exactly one",
                                certs.len()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        self.error(format!("{}.certificate_file", key()), e.to_string());
                        None
                    }
                })
            }
            (Some(_), Some(_)) => {
                self.error(
                    key(),
                    "set either certificate or certificate_file, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    format!("{}.certificate", key()),
                    "the mapping has no certificate (certificate or certificate_file)",
                );
                None
            }
        };
        let digest = digest?;
        if raw.enabled == Some(false) {
            return None;
        }
        // Prepared in parallel when the entry has no password; otherwise built here, so that a
        // password that cannot be read is remembered (see `Self::mapped_user`).
        let user = match user {
            Some(user) => user,
            None => self.mapped_user(
                &raw.user_name,
                MappingKind::OneToOne,
                MappingSource::Entry {
                    list: Arc::clone(list),
                    index: j,
                },
                password,
            ),
        };
        Some((digest, user))
    }

    /// Entry `j` maps the same certificate as `existing`, an earlier entry.
    fn duplicate(&mut self, list: &str, j: usize, existing: &MappedUser) {
        self.error(
            format!("{list}[{j}]"),
            format!(
                "the same certificate is already mapped by {} (IIS: duplicate collection key)",
                existing.source
            ),
        );
    }

    /// Reports a mapping certificate that cannot be used, at `key.which`.
    fn certificate_problem(&mut self, key: &str, which: &str, problem: CertificateProblem) {
        let reason = match problem {
            CertificateProblem::Text(e) => e.to_string(),
            CertificateProblem::NotX509(e) => {
                format!("decodes, but is not an X.509 certificate ({e}); IIS would answer 401.1")
            }
        };
        self.error(format!("{key}.{which}"), reason);
    }
}

/// Per-entry work done in parallel before the entries are judged in order.
#[derive(Default)]
struct Prepared {
    /// The inline certificate's digest, when the entry has only inline text.
    digest: Option<Result<[u8; 32], CertificateProblem>>,
    /// The user to index, when nothing about it needs the loader.
    user: Option<Arc<MappedUser>>,
}

/// The user of entry `j` of the list at `list`, for an entry without a password (built off the
/// loader, in parallel; one with a password goes through `Loader::mapped_user`).
fn one_to_one_user(raw: &FastOneToOne<'_>, list: &Arc<str>, j: usize) -> Arc<MappedUser> {
    Arc::new(MappedUser {
        user_name: raw.user_name.as_ref().into(),
        kind: MappingKind::OneToOne,
        source: MappingSource::Entry {
            list: Arc::clone(list),
            index: j,
        },
        password: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use base64::Engine as _;

    use super::super::testing::{keys, loader, raw, reason};
    use crate::config::raw::RawIisMapping;
    use crate::mapping::one_to_one::certificate_digest;
    use crate::tls::server::ResumptionKeys;

    const LIST: &str = "m.one_to_one_mappings";

    /// A self-signed certificate as IIS writes it: base64 DER, one line.
    fn certificate(name: &str) -> (String, [u8; 32]) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let der = c.cert.der();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        (b64, certificate_digest(der).unwrap())
    }

    fn entry(user: &str, certificate: &str, extra: &str) -> String {
        format!(
            "[[one_to_one_mappings]]\nuser_name = '{user}'\ncertificate = \"{certificate}\"\n{extra}\n"
        )
    }

    #[test]
    fn entries_are_indexed_by_certificate_and_disabled_ones_left_out() {
        let (a, a_digest) = certificate("a");
        let (b, b_digest) = certificate("b");
        let section: RawIisMapping = raw(&format!(
            "enabled = true\n{}{}",
            entry("EX\\alice", &a, ""),
            entry("EX\\bob", &b, "enabled = false")
        ));
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let mapper = l.mapper("m", &section);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(mapper.one_to_one.len(), 1);
        let alice = mapper.one_to_one.lookup(&a_digest).unwrap();
        assert_eq!(&*alice.user_name, "EX\\alice");
        assert_eq!(alice.source.to_string(), format!("{LIST}[0]"));
        assert!(mapper.one_to_one.lookup(&b_digest).is_none());
        assert!(mapper.one_to_one_enabled && mapper.many_to_one_enabled);
    }

    #[test]
    fn broken_entries_are_all_reported_with_their_positions() {
        let (a, _) = certificate("a");
        let not_x509 = base64::engine::general_purpose::STANDARD.encode(b"not a certificate");
        let section: RawIisMapping = raw(&format!(
            "logon_method = 'Telepathy'\n{}{}{}{}{}{}",
            entry("EX\\alice", &a, ""),
            entry(" ", "!!!", ""),
            entry("EX\\carol", &not_x509, ""),
            entry("EX\\dave", &a, ""),
            "[[one_to_one_mappings]]\nuser_name = 'EX\\erin'\n",
            entry("EX\\frank", &a, "certificate_file = 'f.pem'"),
        ));
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        l.mapper("m", &section);
        assert_eq!(
            keys(&l),
            [
                "m.logon_method",
                "m.one_to_one_mappings[1].user_name",
                "m.one_to_one_mappings[1].certificate",
                "m.one_to_one_mappings[2].certificate",
                "m.one_to_one_mappings[3]",
                "m.one_to_one_mappings[4].certificate",
                "m.one_to_one_mappings[5]",
            ]
        );
        assert!(reason(&l, "m.logon_method").contains("not an IIS logonMethod"));
        assert!(reason(&l, "m.one_to_one_mappings[2].certificate").contains("not an X.509"));
        assert!(
            reason(&l, "m.one_to_one_mappings[3]")
                .contains("already mapped by m.one_to_one_mappings[0]")
        );
        assert!(reason(&l, "m.one_to_one_mappings[4].certificate").contains("no certificate"));
        assert!(reason(&l, "m.one_to_one_mappings[5]").contains("not both"));
    }

    #[test]
    fn switches_default_to_on_as_in_iis() {
        let section: RawIisMapping =
            raw("enabled = true\nmany_to_one_certificate_mappings_enabled = false\n");
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let mapper = l.mapper("m", &section);
        assert!(mapper.enabled && mapper.one_to_one_enabled && !mapper.many_to_one_enabled);
        assert!(mapper.one_to_one.is_empty());
    }
}
