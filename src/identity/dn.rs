//! Distinguished names kept as structured attributes, decoded once.
//!
//! Different consumers need different renderings of the same name (IIS display order for headers,
//! DER order for AD `altSecurityIdentities`), and IIS many-to-one rules compare single attribute
//! values, so a DN is never reduced to one string early. Values are decoded from every
//! DirectoryString type a Windows CA emits (UTF8, Printable, IA5, BMP, T61, Universal), never
//! compared as raw DER.

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// One attribute of a relative distinguished name, e.g. `OU=Security`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Dotted attribute-type OID, e.g. `2.5.4.11`.
    pub oid: String,
    /// The decoded value.
    pub value: String,
}

/// A distinguished name in DER (encoding) order: the most significant RDN first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dn {
    /// Each inner vector is one RDN; multi-valued RDNs (`CN=a+UID=b`) keep their members together.
    pub rdns: Vec<Vec<Attribute>>,
}

/// Attribute types by the labels Windows (CertNameToStr) and IIS rules use, plus the aliases
/// people also write. The first label for an OID is the one rendered.
const LABELS: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("S", "2.5.4.8"),
    ("ST", "2.5.4.8"),
    ("STREET", "2.5.4.9"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("T", "2.5.4.12"),
    ("TITLE", "2.5.4.12"),
    ("SN", "2.5.4.4"),
    ("G", "2.5.4.42"),
    ("GN", "2.5.4.42"),
    ("GIVENNAME", "2.5.4.42"),
    ("I", "2.5.4.43"),
    ("INITIALS", "2.5.4.43"),
    ("POSTALCODE", "2.5.4.17"),
    ("DESCRIPTION", "2.5.4.13"),
    ("E", "1.2.840.113549.1.9.1"),
    ("EMAIL", "1.2.840.113549.1.9.1"),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
];

/// The OID for a sub-field name (`OU`, `s`, `Email`, ...) or a dotted OID given as is.
/// Returns `None` for names IIS would not recognise either.
pub fn oid_for_label(label: &str) -> Option<String> {
    let upper = label.trim().to_ascii_uppercase();
    if let Some((_, oid)) = LABELS.iter().find(|(l, _)| *l == upper) {
        return Some((*oid).to_owned());
    }
    let dotted = label.trim();
    is_dotted_oid(dotted).then(|| dotted.to_owned())
}

/// Whether `oid` is a dotted OID (`2.5.4.11`): at least two arcs, digits only. `x509-parser`
/// renders an empty OID as `""` and one with an arc beyond 64 bits as hex bytes, neither of which
/// can be written back as a label.
pub fn is_dotted_oid(oid: &str) -> bool {
    let mut arcs = 0;
    for arc in oid.split('.') {
        if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

/// Whether every attribute type of a name is a dotted OID, so that every rendering of the name
/// reads back as the same name.
pub fn has_well_formed_types(dn: &Dn) -> bool {
    dn.attributes().all(|a| is_dotted_oid(&a.oid))
}

/// The label Windows shows for an OID, or the dotted OID itself.
pub fn label_for_oid(oid: &str) -> &str {
    LABELS
        .iter()
        .find(|(_, o)| *o == oid)
        .map_or(oid, |(label, _)| label)
}

impl Dn {
    /// Decodes every attribute of a parsed name.
    pub fn from_x509(name: &X509Name<'_>) -> Self {
        let rdns = name
            .iter_rdn()
            .map(|rdn| rdn.iter().map(decode_attribute).collect())
            .collect();
        Self { rdns }
    }

    /// All attributes in DER order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.rdns.iter().flatten()
    }

    /// Every value of one attribute type, in DER order (a name may carry two `OU`s).
    pub fn values<'a>(&'a self, oid: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes()
            .filter(move |a| a.oid == oid)
            .map(|a| a.value.as_str())
    }

    /// The first `CN`, used in logs and error pages.
    pub fn common_name(&self) -> Option<&str> {
        self.values("2.5.4.3").next()
    }

    /// The form Windows certificate dialogs and IIS show: least significant RDN first
    /// (`CN=alice, OU=Eng, O=Contoso, C=US`), Windows labels, `, ` between RDNs.
    pub fn to_display_string(&self) -> String {
        render(self.rdns.iter().rev(), ", ")
    }

    /// DER order without spaces (`DC=test,DC=example,CN=Example CA`): the form AD
    /// `altSecurityIdentities` uses for `<I>` and `<S>`.
    pub fn to_der_order_string(&self) -> String {
        render(self.rdns.iter(), ",")
    }
}

impl std::fmt::Display for Dn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_display_string())
    }
}

fn render<'a>(rdns: impl Iterator<Item = &'a Vec<Attribute>>, sep: &str) -> String {
    let mut out = String::new();
    for (i, rdn) in rdns.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(label_for_oid(&attr.oid));
            out.push('=');
            push_escaped(&mut out, &attr.value);
        }
    }
    out
}

/// Quotes values the way CertNameToStr does when they contain separators.
fn push_escaped(out: &mut String, value: &str) {
    let needs_quotes = value.is_empty()
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.contains([',', '+', '=', '"', '\n', '\r', '<', '>', '#', ';']);
    if needs_quotes {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn decode_attribute(attr: &AttributeTypeAndValue<'_>) -> Attribute {
    let any = attr.attr_value();
    Attribute {
        oid: attr.attr_type().to_id_string(),
        value: decode_directory_string(any.tag(), any.data),
    }
}

/// Decodes an ASN.1 string by its tag. Bytes that are not valid for their type are replaced
/// (U+FFFD) rather than dropped, so a malformed name can never equal a well-formed one.
pub fn decode_directory_string(tag: Tag, data: &[u8]) -> String {
    match tag {
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        Tag::UniversalString => data
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_be_bytes(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        // T61/Teletex in practice carries Latin-1 from Windows CAs.
        Tag::TeletexString | Tag::VideotexString => data.iter().map(|&b| b as char).collect(),
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_oids() {
        assert_eq!(oid_for_label("ou").as_deref(), Some("2.5.4.11"));
        assert_eq!(oid_for_label("ST"), oid_for_label("S"));
        assert_eq!(oid_for_label("Email"), oid_for_label("E"));
        assert_eq!(oid_for_label("emailAddress"), oid_for_label("E"));
        assert_eq!(oid_for_label("1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(oid_for_label("XX"), None);
        assert_eq!(oid_for_label("1..2"), None);
        assert_eq!(label_for_oid("2.5.4.8"), "S");
        assert_eq!(label_for_oid("1.2.3"), "1.2.3");
        assert!(is_dotted_oid("2.5.4.3"));
        for bad in ["", "1", "1.", ".1", "1..2", "06 2a", "1.2a"] {
            assert!(!is_dotted_oid(bad), "{bad:?}");
        }
    }

    #[test]
    fn decodes_string_types() {
        assert_eq!(
            decode_directory_string(Tag::BmpString, &[0, b'A', 0x00, 0xE9]),
            "Aé"
        );
        assert_eq!(
            decode_directory_string(Tag::TeletexString, &[b'M', 0xFC]),
            "Mü"
        );
        assert_eq!(
            decode_directory_string(Tag::UniversalString, &[0, 0, 0, b'Z']),
            "Z"
        );
        assert_eq!(
            decode_directory_string(Tag::Utf8String, "Zoë".as_bytes()),
            "Zoë"
        );
        // An odd-length BMPString must not panic.
        assert_eq!(
            decode_directory_string(Tag::BmpString, &[0])
                .chars()
                .count(),
            1
        );
    }

    #[test]
    fn renders_both_orders() {
        let attr = |oid: &str, v: &str| Attribute {
            oid: oid.into(),
            value: v.into(),
        };
        let dn = Dn {
            rdns: vec![
                vec![attr("2.5.4.6", "US")],
                vec![attr("2.5.4.10", "Contoso, Ltd")],
                vec![attr("2.5.4.3", "alice")],
            ],
        };
        assert_eq!(dn.to_display_string(), "CN=alice, O=\"Contoso, Ltd\", C=US");
        assert_eq!(dn.to_der_order_string(), "C=US,O=\"Contoso, Ltd\",CN=alice");
        assert_eq!(dn.common_name(), Some("alice"));
    }
}
