//! LDAP filter building and DN comparison.
//!
//! Every value that reaches a filter comes from a client certificate or a configured user name,
//! so it goes through exactly one of the escapers here; nothing else in `directory` formats a
//! filter value by hand.

use std::fmt::Write as _;

/// `(attr=value)` with the value escaped per RFC 4515 (`\ * ( )` and NUL).
pub(crate) fn eq(attr: &str, value: &str) -> String {
    format!("({attr}={})", ldap3::ldap_escape(value))
}

/// `(attr=\xx\xx...)`: every byte hex-escaped, the form AD needs for binary attributes such as
/// `objectSid`.
pub(crate) fn eq_binary(attr: &str, value: &[u8]) -> String {
    let mut out = String::with_capacity(attr.len() + 3 + value.len() * 3);
    out.push('(');
    out.push_str(attr);
    out.push('=');
    for b in value {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\{b:02x}");
    }
    out.push(')');
    out
}

/// `(|a b ...)`, or the single clause itself when there is one.
pub(crate) fn any_of(clauses: &[String]) -> String {
    match clauses {
        [one] => one.clone(),
        _ => format!("(|{})", clauses.concat()),
    }
}

/// A DN reduced to a form two spellings of the same name share: attribute types and values
/// lowercased (AD compares DNs case-insensitively), spaces around `,` `+` `=` removed, escapes
/// kept. `CN=Intranet Users, OU=Groups,DC=example,DC=test` and the DC's own
/// `CN=Intranet Users,OU=Groups,DC=example,DC=test` normalise to the same string.
///
/// Returns `None` for text that is not a DN (an RDN without `=` or with an empty type).
pub(crate) fn normalize_dn(dn: &str) -> Option<String> {
    let mut out = String::with_capacity(dn.len());
    let mut component = String::new();
    let mut chars = dn.chars();
    let finish = |component: &mut String, sep: Option<char>, out: &mut String| -> bool {
        let Some((ty, value)) = component.split_once('=') else {
            return false;
        };
        let (ty, value) = (ty.trim(), trim_unescaped(value));
        if ty.is_empty() {
            return false;
        }
        out.push_str(&ty.to_lowercase());
        out.push('=');
        out.push_str(&value.to_lowercase());
        if let Some(sep) = sep {
            out.push(sep);
        }
        component.clear();
        true
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                component.push(c);
                if let Some(next) = chars.next() {
                    component.push(next);
                }
            }
            ',' | '+' => {
                if !finish(&mut component, Some(c), &mut out) {
                    return None;
                }
            }
            _ => component.push(c),
        }
    }
    if !finish(&mut component, None, &mut out) {
        return None;
    }
    Some(out)
}

/// Trims spaces that are not escaped (`CN=a\ ` keeps its escaped trailing space).
fn trim_unescaped(value: &str) -> &str {
    let start = value.trim_start();
    let mut end = start.len();
    while end > 0 && start.as_bytes()[end - 1] == b' ' {
        let backslashes = start.as_bytes()[..end - 1]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            break;
        }
        end -= 1;
    }
    &start[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn escapes_filter_values() {
        assert_eq!(eq("sAMAccountName", "alice"), "(sAMAccountName=alice)");
        assert_eq!(
            eq("sAMAccountName", "*)(objectClass=*"),
            "(sAMAccountName=\\2a\\29\\28objectClass=\\2a)"
        );
        assert_eq!(eq("cn", "a\\b\0c"), "(cn=a\\5cb\\00c)");
        // `<`, `>`, `=` and `,` are not special inside a filter value.
        assert_eq!(
            eq("altSecurityIdentities", "X509:<I>DC=a,CN=b<SR>01"),
            "(altSecurityIdentities=X509:<I>DC=a,CN=b<SR>01)"
        );
    }

    #[test]
    fn escapes_binary_values() {
        assert_eq!(
            eq_binary("objectSid", &[1, 0x2a, 0xff]),
            "(objectSid=\\01\\2a\\ff)"
        );
    }

    #[test]
    fn joins_clauses() {
        assert_eq!(any_of(&["(a=1)".into()]), "(a=1)");
        assert_eq!(any_of(&["(a=1)".into(), "(b=2)".into()]), "(|(a=1)(b=2))");
    }

    #[test]
    fn normalises_dns() {
        let ad = normalize_dn("CN=Intranet Users,OU=Groups,DC=example,DC=test");
        let typed = normalize_dn(" cn = Intranet Users , ou=GROUPS,  DC=Example,dc=test ");
        assert_eq!(ad, typed);
        assert_eq!(
            ad.as_deref(),
            Some("cn=intranet users,ou=groups,dc=example,dc=test")
        );
        assert_eq!(
            normalize_dn("CN=Smith\\, John+UID=js,DC=x").as_deref(),
            Some("cn=smith\\, john+uid=js,dc=x")
        );
        assert_eq!(
            normalize_dn("CN=a\\ ,DC=x").as_deref(),
            Some("cn=a\\ ,dc=x")
        );
        assert_eq!(normalize_dn("Intranet Users"), None);
        assert_eq!(normalize_dn("=x,DC=y"), None);
        assert_eq!(normalize_dn(""), None);
    }
}
