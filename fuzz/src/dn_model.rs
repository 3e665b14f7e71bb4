//! A reader for the DN strings certgate renders (CertNameToStr style: `LABEL=value`, RDNs joined
//! by `, ` or `,`, multi-valued RDNs by `+`, values with separators in double quotes with `""`
//! for a quote). Used to check that rendering is unambiguous: reading the rendering back gives
//! the same name.

use certgate::identity::dn::{Attribute, Dn, oid_for_label};

/// Parses a rendered DN. `sep` is the RDN separator the renderer used (`", "` or `","`).
/// Returns `None` when the text is not in the rendered grammar.
pub fn parse(text: &str, sep: &str) -> Option<Dn> {
    let mut rdns: Vec<Vec<Attribute>> = Vec::new();
    if text.is_empty() {
        return Some(Dn { rdns });
    }
    let chars: Vec<char> = text.chars().collect();
    let sep: Vec<char> = sep.chars().collect();
    let mut i = 0;
    let mut rdn: Vec<Attribute> = Vec::new();
    loop {
        // LABEL
        let start = i;
        while i < chars.len() && chars[i] != '=' {
            i += 1;
        }
        if i == chars.len() {
            return None;
        }
        let label: String = chars[start..i].iter().collect();
        let oid = oid_for_label(&label)?;
        i += 1; // '='
        // value
        let mut value = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return None,
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        value.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && chars[i] != '+' && !chars[i..].starts_with(&sep) {
                value.push(chars[i]);
                i += 1;
            }
        }
        rdn.push(Attribute { oid, value });
        if i == chars.len() {
            rdns.push(rdn);
            return Some(Dn { rdns });
        }
        if chars[i] == '+' {
            i += 1;
        } else if chars[i..].starts_with(&sep) {
            i += sep.len();
            rdns.push(std::mem::take(&mut rdn));
        } else {
            return None;
        }
    }
}
