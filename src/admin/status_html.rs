//! The status page as server-rendered HTML: no JavaScript, no external assets, every value
//! escaped. Links and a GET form are all the interaction there is.

use std::fmt::Write as _;

use super::status::{CertStatus, DenialView, StatusReport};
use crate::denials::Denial;
use crate::error_page::escape;

const STYLE: &str = "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#111}\
header{background:#5f727f;color:#fff;padding:10px 2%}header h1{margin:0;font-size:1.4em}\
main{margin:0 2% 2em}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:3px;\
margin-top:1.4em}h3{font-size:1em;margin:1em 0 .3em}table{border-collapse:collapse;\
font-size:.88em;margin:.3em 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;\
vertical-align:top}th{background:#f2f4f5}code,pre{font-family:Consolas,monospace}\
.bad{color:#b00;font-weight:bold}.warn{color:#a60;font-weight:bold}.ok{color:#070}\
pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;white-space:pre-wrap}\
form{margin:.6em 0}input[type=text]{font-family:Consolas,monospace;width:12em}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
         <style>{STYLE}</style></head>\n<body><header><h1>{}</h1></header><main>\n{body}\
         </main></body></html>\n",
        escape(title),
        escape(title)
    )
}

fn search_form(out: &mut String, value: &str) {
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/status\" id=\"search\"><label>Reference id: \
         <input type=\"text\" name=\"ref\" value=\"{}\" maxlength=\"20\"></label> \
         <button type=\"submit\">Find</button></form>",
        escape(value)
    );
}

fn days_class(days: i64) -> &'static str {
    if days < 0 {
        "bad"
    } else if days < 30 {
        "warn"
    } else {
        "ok"
    }
}

fn certs_table(out: &mut String, certs: &[CertStatus]) {
    if certs.is_empty() {
        out.push_str("<p>none</p>\n");
        return;
    }
    out.push_str("<table><tr><th>Subject</th><th>Not after</th><th>Days left</th></tr>");
    for c in certs {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(&c.subject),
            escape(&c.not_after),
            days_class(c.days_left),
            c.days_left
        );
    }
    out.push_str("</table>\n");
}

fn denials_table(out: &mut String, denials: &[DenialView]) {
    if denials.is_empty() {
        out.push_str("<p>No request has been refused since the start.</p>\n");
        return;
    }
    out.push_str(
        "<table id=\"denials\"><tr><th>Time (UTC)</th><th>Reference</th><th>Site</th>\
         <th>Path</th><th>Code</th><th>Client</th><th>Certificate subject</th>\
         <th>Thumbprint</th></tr>",
    );
    for d in denials {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><a href=\"/status/denial/{r}\"><code>{r}</code></a></td>\
             <td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td><td>{}</td>\
             <td><code>{}</code></td></tr>",
            escape(&d.time),
            escape(&d.site),
            escape(&d.path),
            escape(&d.code),
            escape(&d.client_ip),
            escape(d.subject.as_deref().unwrap_or("-")),
            escape(d.thumbprint.as_deref().unwrap_or("-")),
            r = escape(&d.reference),
        );
    }
    out.push_str("</table>\n");
}

/// The status page. `notice` is shown above the denials (a failed search).
pub fn status_page(report: &StatusReport, notice: Option<&str>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<p>certgate {} &middot; {} &middot; configuration <code>{}</code> &middot; \
         generated {} &middot; listening on {} &middot; <a href=\"/status.json\">JSON</a></p>",
        escape(report.version),
        if report.ready {
            "<span class=\"ok\">ready</span>"
        } else {
            "<span class=\"bad\">not ready</span>"
        },
        escape(&report.config),
        escape(&report.generated_at),
        escape(&report.listen.join(", ")),
    );
    out.push_str("<h2>Last denials</h2>\n");
    search_form(&mut out, "");
    if let Some(notice) = notice {
        let _ = writeln!(
            out,
            "<p class=\"warn\" id=\"notice\">{}</p>",
            escape(notice)
        );
    }
    denials_table(&mut out, &report.denials);

    out.push_str("<h2>Sites</h2>\n");
    for site in &report.sites {
        let _ = write!(
            out,
            "<h3>{}{}</h3>\n<table><tr><th>Host names</th><td>{}</td></tr>\
             <tr><th>Backend</th><td><code>{}</code></td></tr>\
             <tr><th>Mappings</th><td>one-to-one {} &middot; many-to-one Allow {} &middot; \
             many-to-one Deny {} &middot; Active Directory scopes {}</td></tr>\
             <tr><th>W3C logs</th><td>{}</td></tr></table>",
            escape(&site.name),
            site.id
                .map(|id| format!(" (W3SVC{id})"))
                .unwrap_or_default(),
            escape(&if site.host_names.is_empty() {
                "(any)".to_owned()
            } else {
                site.host_names.join(", ")
            }),
            escape(&site.backend),
            site.mappings.one_to_one,
            site.mappings.many_to_one_allow,
            site.mappings.many_to_one_deny,
            site.mappings.active_directory_scopes,
            escape(site.w3c_directory.as_deref().unwrap_or("off")),
        );
        out.push_str(
            "<table><tr><th>Location</th><th>ssl_flags</th><th>Anonymous</th>\
             <th>IIS mapper</th></tr>",
        );
        for l in &site.locations {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&l.path),
                escape(&l.ssl_flags),
                if l.anonymous_authentication {
                    "on"
                } else {
                    "off"
                },
                if l.mapper_enabled { "on" } else { "off" },
            );
        }
        out.push_str("</table>\n<p>Server certificate chain:</p>\n");
        certs_table(&mut out, &site.server_certificates);
        out.push_str("<p>Trusted client CAs:</p>\n");
        certs_table(&mut out, &site.trusted_cas);
        out.push_str("<p>Revocation sources:</p>\n");
        if site.revocation.is_empty() {
            out.push_str("<p>No live revocation source (CRL files are checked at load).</p>\n");
        } else {
            out.push_str("<table><tr><th>Source</th><th>State</th><th>Detail</th></tr>");
            for r in &site.revocation {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&r.source),
                    escape(&r.state),
                    escape(&r.detail)
                );
            }
            out.push_str("</table>\n");
        }
    }

    out.push_str("<h2>Directory</h2>\n");
    match &report.directory {
        None => out.push_str("<p>No <code>[directory]</code> is configured.</p>\n"),
        Some(d) => {
            let _ = write!(
                out,
                "<table><tr><th>Probe</th><td class=\"{}\">{}</td></tr><tr><th>Connections</th>\
                 <td>{}</td></tr><tr><th>Searches</th><td>{}</td></tr><tr><th>Cache hits</th>\
                 <td>{}</td></tr><tr><th>Failures</th><td>{}</td></tr></table>",
                if d.probe == "reachable" { "ok" } else { "bad" },
                escape(&d.probe),
                d.connects,
                d.searches,
                d.cache_hits,
                d.failures
            );
        }
    }

    out.push_str("<h2>Configuration loads</h2>\n");
    out.push_str(
        "<table id=\"reloads\"><tr><th>Time (UTC)</th><th>Result</th><th>Errors</th></tr>",
    );
    for r in &report.reloads {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&r.time),
            if r.result == "rejected" { "bad" } else { "ok" },
            r.result,
            r.errors
        );
    }
    out.push_str("</table>\n");
    page("certgate status", &out)
}

/// One denial with its `explain` trace (already rendered as text).
pub fn denial_page(denial: &Denial, explain: &str) -> String {
    let view = DenialView::from(denial);
    let mut out = String::new();
    out.push_str("<p><a href=\"/status\">&larr; status</a></p>\n");
    search_form(&mut out, &view.reference);
    let _ = write!(
        out,
        "<table id=\"denial\"><tr><th>Reference</th><td><code>{}</code></td></tr>\
         <tr><th>Time (UTC)</th><td>{}</td></tr><tr><th>Site</th><td>{}</td></tr>\
         <tr><th>Host</th><td>{}</td></tr><tr><th>Path</th><td><code>{}</code></td></tr>\
         <tr><th>Code</th><td class=\"bad\">{}</td></tr><tr><th>Client</th><td>{}</td></tr>\
         <tr><th>Certificate subject</th><td>{}</td></tr>\
         <tr><th>Thumbprint</th><td><code>{}</code></td></tr></table>\n\
         <h2>Explain</h2>\n<p>The decision for this certificate and path, re-run now against \
         the current configuration (<code>certgate explain</code>):</p>\n\
         <pre id=\"explain\">{}</pre>\n",
        escape(&view.reference),
        escape(&view.time),
        escape(&view.site),
        escape(denial.host.as_deref().unwrap_or("-")),
        escape(&view.path),
        escape(&view.code),
        escape(&view.client_ip),
        escape(view.subject.as_deref().unwrap_or("(no certificate)")),
        escape(view.thumbprint.as_deref().unwrap_or("-")),
        escape(explain),
    );
    page(&format!("certgate denial {}", view.reference), &out)
}

/// A page for a reference that is not (or no longer) kept.
pub fn not_found_page(reference: &str) -> String {
    let mut out = String::new();
    out.push_str("<p><a href=\"/status\">&larr; status</a></p>\n");
    search_form(&mut out, reference);
    let _ = write!(
        out,
        "<p class=\"warn\" id=\"notice\">No denial with reference <code>{}</code> is kept \
         (the last {} are). Search the access log for <code>reference={}</code>.</p>",
        escape(reference),
        crate::denials::CAPACITY,
        escape(reference)
    );
    page("certgate denial not found", &out)
}
