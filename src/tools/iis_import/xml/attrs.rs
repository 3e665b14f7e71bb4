//! Attribute readers shared by every element: source positions, typed values (booleans,
//! enumerations, sslFlags) and the reporting of what is not understood.

use super::*;
use crate::iis::NoOpFlag;

impl<'input> Reader<'_, 'input> {
    pub(super) fn at(&self, node: Node<'_, 'input>) -> At {
        let pos = self.doc.text_pos_at(node.range().start);
        At {
            file: self.file.to_owned(),
            line: pos.row,
            column: pos.col,
        }
    }

    pub(super) fn invalid(&self, node: Node<'_, 'input>, message: String) -> ImportError {
        let at = self.at(node);
        ImportError::InvalidConfig {
            file: at.file,
            line: at.line,
            column: at.column,
            message,
        }
    }

    pub(super) fn next_seq(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    pub(super) fn ssl_flags(
        &mut self,
        node: Node<'_, 'input>,
        value: &str,
        scope: &str,
    ) -> Result<SslFlags, ImportError> {
        let (flags, no_op) = SslFlags::parse_as_written(value)
            .map_err(|e| self.invalid(node, format!("sslFlags=\"{value}\": {e}")))?;
        let map_cert = no_op.contains(&NoOpFlag::SslMapCert);
        let ssl128 = no_op.contains(&NoOpFlag::Ssl128);
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

    pub(super) fn required<'n>(
        &self,
        node: Node<'n, 'input>,
        name: &str,
    ) -> Result<&'n str, ImportError> {
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

    pub(super) fn bool_attr(
        &self,
        node: Node<'_, 'input>,
        name: &str,
    ) -> Result<Option<bool>, ImportError> {
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
    pub(super) fn enum_attr(
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

    pub(super) fn unknown_attributes(
        &mut self,
        node: Node<'_, 'input>,
        known: &[&str],
        scope: &str,
    ) {
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

    pub(super) fn unknown_element(&mut self, node: Node<'_, 'input>, scope: &str) {
        self.out.untranslated.push(format!(
            "{}: {scope}: element <{}> not translated",
            self.at(node),
            node.tag_name().name()
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::{FileKind, ParsedFile, parse};
    use crate::tools::iis_import::ImportError;

    fn with_access(flags: &str) -> Result<ParsedFile, ImportError> {
        let text = format!(
            r#"<configuration>
  <location path="S">
    <system.webServer><security><access sslFlags="{flags}" /></security></system.webServer>
  </location>
</configuration>"#
        );
        parse(&text, "applicationHost.config", &FileKind::AppHost, 0)
    }

    #[test]
    fn ssl_flags_use_the_one_parser_and_report_where() {
        let err = with_access("1").err().unwrap().to_string();
        assert!(err.contains("applicationHost.config:3:"), "{err}");
        assert!(err.contains("sslFlags=\"1\""), "{err}");
        assert!(err.contains("bits IIS does not define"), "{err}");
        let err = with_access("Ssl, SslRequiredCert")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown flag `SslRequiredCert`"), "{err}");

        // As written: Require without Negotiate stays so (the loader adds Negotiate).
        let parsed = with_access("Ssl, SslRequireCert").unwrap();
        let flags = parsed.fragments[0].ssl_flags.unwrap();
        assert!(flags.require_cert && !flags.negotiate_cert);

        let parsed = with_access("Ssl, SslMapCert, Ssl128").unwrap();
        assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
        assert!(parsed.warnings[0].contains("SslMapCert"));
        assert_eq!(parsed.untranslated.len(), 1, "{:?}", parsed.untranslated);
        assert!(parsed.untranslated[0].contains("Ssl128"));
    }
}
