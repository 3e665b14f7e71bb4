//! Error pages: IIS's detailed page for local clients, the short page for everyone else, and
//! the administrator's custom pages (`<httpErrors>`), each carrying a [`Reference`].
//!
//! The detailed page (IIS `errorMode="DetailedLocalOnly"`) names the module and the step that
//! decided, the logon method and user, the requested URL, the most likely causes and the things
//! to try ([`texts`]). It never shows secrets, validator internals or backend addresses. A
//! client is *local* when its address is 127.0.0.1 or ::1, or the same address the connection
//! reached certgate on — the rule ASP.NET's `Request.IsLocal` uses. Other loopback addresses
//! (127.0.0.2) are remote, which is also how the tests reach the short page.

pub mod custom;
pub mod reference;
pub mod texts;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use custom::{ErrorMode, HttpErrors, LocationErrors, PageBody, RawHttpErrors};
pub use reference::Reference;

/// HTML-escapes text for element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a client counts as local for `DetailedLocalOnly` (see the module docs).
pub fn is_local(client: IpAddr, server: Option<IpAddr>) -> bool {
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    client == IpAddr::V4(Ipv4Addr::LOCALHOST)
        || client == IpAddr::V6(Ipv6Addr::LOCALHOST)
        || Some(client) == server
}

/// The answer a page describes.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// HTTP status.
    pub status: u16,
    /// IIS sub-status (0 for none).
    pub substatus: u16,
    /// Reason text.
    pub reason: &'static str,
    /// What the person can do.
    pub hint: &'static str,
}

impl Status {
    /// `403.7`, or `502` without a sub-status.
    pub fn code(&self) -> String {
        if self.substatus == 0 {
            self.status.to_string()
        } else {
            format!("{}.{}", self.status, self.substatus)
        }
    }
}

/// Request facts the detailed page shows.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// IIS site name.
    pub site: String,
    /// `https://host/path?query` as requested.
    pub url: String,
    /// How the user was (or was not yet) established.
    pub logon_method: String,
    /// The user, or "Not yet determined".
    pub logon_user: String,
    /// Subject of the client certificate, if one was sent.
    pub certificate_subject: Option<String>,
    /// Its SHA-1 thumbprint.
    pub certificate_thumbprint: Option<String>,
}

const STYLE: &str = "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;margin:0;\
background:#fff;color:#000}#header{background:#5f727f;color:#fff;padding:8px 2%}\
#header h1{font-size:1.4em;margin:0}#content{margin:0 2%}h2{font-size:1.2em;color:#c00}\
fieldset{border:1px solid #ccc;margin:10px 0;padding:4px 12px}h4{margin:6px 0}\
th{text-align:right;vertical-align:top;padding-right:12px;white-space:nowrap}\
td,th{font-size:.9em}code{font-size:1.05em}";

/// The short page every remote client gets (IIS's custom-error default).
pub fn short_page(status: &Status, reference: Reference) -> String {
    let code = status.code();
    let reason = escape(status.reason);
    let hint = escape(status.hint);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{code} - {reason}</title>\
         </head>\n<body><h1>HTTP Error {code} - {reason}</h1>\n<p>{hint}</p>\n\
         <p>Reference: <code id=\"reference\">{reference}</code> (quote it when you contact \
         the helpdesk)</p>\n<p><small>certgate</small></p></body></html>\n"
    )
}

/// The detailed page local clients get.
pub fn detailed_page(status: &Status, details: &Details, reference: Reference) -> String {
    let code = status.code();
    let (module, step) = texts::decided_by(status.status, status.substatus);
    let (causes, tries) = texts::advice(status.status, status.substatus);
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <title>certgate Detailed Error - {code} - {reason}</title><style>{STYLE}</style></head>\n\
         <body><div id=\"header\"><h1>Server Error in Site \"{site}\"</h1></div>\n\
         <div id=\"content\"><h2>HTTP Error {code} - {reason}</h2>\n<p>{hint}</p>\n",
        reason = escape(status.reason),
        site = escape(&details.site),
        hint = escape(status.hint),
    );
    let list = |out: &mut String, title: &str, id: &str, items: &[&str]| {
        let _ = write!(out, "<fieldset id=\"{id}\"><h4>{title}</h4><ul>");
        for item in items {
            let _ = write!(out, "<li>{}</li>", escape(item));
        }
        out.push_str("</ul></fieldset>\n");
    };
    list(&mut out, "Most likely causes:", "causes", causes);
    list(&mut out, "Things you can try:", "try", tries);
    out.push_str("<fieldset id=\"details\"><h4>Detailed Error Information:</h4><table>");
    let mut row = |name: &str, value: &str| {
        let _ = write!(out, "<tr><th>{name}</th><td>{}</td></tr>", escape(value));
    };
    row("Module", module);
    row("Step", step);
    row("Handler", "certgate reverse proxy");
    row("Error Code", &code);
    row("Requested URL", &details.url);
    row("Logon Method", &details.logon_method);
    row("Logon User", &details.logon_user);
    if let Some(subject) = &details.certificate_subject {
        row("Client Certificate", subject);
    }
    if let Some(thumbprint) = &details.certificate_thumbprint {
        row("Certificate Thumbprint", thumbprint);
    }
    let _ = write!(
        out,
        "<tr><th>Reference</th><td><code id=\"reference\">{reference}</code></td></tr>\
         </table></fieldset>\n<p><small>This page is shown because the request came from this \
         computer (errorMode DetailedLocalOnly). Other clients see a short page with the same \
         reference.</small></p></div></body></html>\n"
    );
    out
}

/// A custom page's body with the reference filled in (`{{reference}}` placeholders).
pub fn custom_body(template: &str, reference: Reference) -> String {
    template.replace("{{reference}}", reference.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn local_means_loopback_one_or_the_servers_own_address() {
        let server: IpAddr = "10.0.0.5"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        for (client, local) in [
            ("127.0.0.1", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.5", true),
            ("127.0.0.2", false),
            ("10.0.0.6", false),
        ] {
            let ip: IpAddr = client.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert_eq!(is_local(ip, Some(server)), local, "{client}");
        }
    }

    #[test]
    fn detailed_page_names_module_step_causes_and_escapes_the_url() {
        let status = Status {
            status: 401,
            substatus: 2,
            reason: "Logon failed due to server configuration",
            hint: "hint",
        };
        let details = Details {
            site: "Default Web Site".into(),
            url: "https://localhost/<script>".into(),
            logon_method: "Certificate".into(),
            logon_user: "Not yet determined".into(),
            ..Details::default()
        };
        let r = Reference::new();
        let page = detailed_page(&status, &details, r);
        assert!(page.contains("HTTP Error 401.2 - Logon failed due to server configuration"));
        assert!(page.contains("IIS Client Certificate Mapping Authentication"));
        assert!(page.contains("Most likely causes:"));
        assert!(page.contains("https://localhost/&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains(r.as_str()));
        assert!(short_page(&status, r).contains(r.as_str()));
    }
}
