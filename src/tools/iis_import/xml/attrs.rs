//! Attribute readers shared by every element: source positions, typed values (booleans,
//! enumerations, sslFlags) and the reporting of what is not understood.

use super::*;

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
