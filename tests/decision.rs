//! The proxy and `certgate explain` reach every decision by the same function
//! (`certgate::decision::decide`): each case below goes through the real proxy on a real socket
//! and through explain (with and without querying the directory), and all must give the same
//! status and user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use certgate::explain::{Explanation, Target, explain, explain_with_directory};
use certgate::pki::{ClientSpec, Issued};
use support::{Env, Pki};

/// Every branch of the decision: sslFlags per location, certificate verdicts, one-to-one,
/// many-to-one Allow and Deny, no match with anonymous on and off, and a directory that cannot
/// be reached (the loader accepts it: nothing connects at load).
const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
backend_response_timeout = "2s"

[directory]
urls = ["ldaps://127.0.0.1:1"]
ca = "ca.crt"
bind_dn = "svc-certgate@example.test"
bind_password_file = "bind.pw"
base_dn = "DC=example,DC=test"
timeout = "1s"
connect_timeout = "1s"

[[site]]
name = "Decisions"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
crl = ["ca.crl"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "alice.crt"

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Block contractors"
permission_mode = "Deny"
user_name = "nobody"
[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings.rules]]
certificate_field = "Subject"
certificate_sub_field = "OU"
match_criteria = "Contractors"

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Contoso staff"
user_name = "EXAMPLE\\staff"
[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings.rules]]
certificate_field = "Subject"
certificate_sub_field = "O"
match_criteria = "Contoso"

[[site.location]]
path = "/public"
ssl_flags = "Ssl"
anonymous_authentication = true

[[site.location]]
path = "/closed"
ssl_flags = "Ssl"
anonymous_authentication = false

[[site.location]]
path = "/accept"
ssl_flags = "Ssl, SslNegotiateCert"
anonymous_authentication = true

[[site.location]]
path = "/accept-closed"
ssl_flags = "Ssl, SslNegotiateCert"
anonymous_authentication = false

[[site.location]]
path = "/ad"
anonymous_authentication = true
[site.location.iis_client_certificate_mapping_authentication]
enabled = false
[site.location.directory.certificate_mapping]
enabled = true

[[site.location]]
path = "/verified"
[site.location.directory]
verify = "account"
"#;

/// (who, path, expected code, expected user, needs the directory)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
);

const CASES: &[Case] = &[
    // Certificate verdicts at a location that requires one.
    ("none", "/", "403.7", None, false),
    ("expired", "/", "403.17", None, false),
    ("untrusted", "/", "403.16", None, false),
    ("revoked", "/", "403.13", None, false),
    // The mapper.
    ("alice", "/", "200", Some("EXAMPLE\\alice"), false),
    ("staff", "/", "200", Some("EXAMPLE\\staff"), false),
    ("contractor", "/", "403.12", None, false),
    ("bob", "/", "401.2", None, false),
    // Locations that accept but do not require a certificate.
    ("bob", "/accept", "200", None, false),
    ("none", "/accept", "200", None, false),
    ("alice", "/accept", "200", Some("EXAMPLE\\alice"), false),
    ("none", "/accept-closed", "401.2", None, false),
    ("bob", "/accept-closed", "401.2", None, false),
    ("contractor", "/accept", "403.12", None, false),
    // Locations that ask for no certificate: anonymous decides, whatever was sent.
    ("none", "/public", "200", None, false),
    ("alice", "/public", "200", None, false),
    ("untrusted", "/public", "200", None, false),
    ("none", "/closed", "401.2", None, false),
    ("alice", "/closed", "401.2", None, false),
    // The directory: unreachable, so every question to it fails closed with 503.
    ("alice", "/ad", "503", None, true),
    ("bob", "/ad", "503", None, true),
    ("alice", "/verified", "503", None, true),
    // ... but only when the decision reaches it.
    ("contractor", "/verified", "403.12", None, false),
    ("bob", "/verified", "401.2", None, false),
    ("revoked", "/ad", "403.13", None, false),
];

struct People {
    staff: Issued,
    contractor: Issued,
}

fn identity<'a>(pki: &'a Pki, people: &'a People, who: &str) -> Option<&'a Issued> {
    match who {
        "none" => None,
        "alice" => Some(&pki.alice),
        "bob" => Some(&pki.bob),
        "expired" => Some(&pki.expired),
        "untrusted" => Some(&pki.untrusted),
        "revoked" => Some(&pki.revoked),
        "staff" => Some(&people.staff),
        "contractor" => Some(&people.contractor),
        other => panic!("no identity {other}"),
    }
}

#[tokio::test]
async fn proxy_and_explain_decide_every_case_alike() {
    let pki = Arc::new(Pki::new());
    let mut staff = ClientSpec::new("sam");
    staff.organization = Some("Contoso".into());
    staff.organizational_units = vec!["Sales".into()];
    let mut contractor = ClientSpec::new("carl");
    contractor.organization = Some("Contoso".into());
    contractor.organizational_units = vec!["Contractors".into()];
    let people = People {
        staff: pki.ca.client(&staff).unwrap(),
        contractor: pki.ca.client(&contractor).unwrap(),
    };
    let staged = tempfile::tempdir().unwrap();
    std::fs::write(staged.path().join("bind.pw"), "not-used\n").unwrap();
    let env = Env::start_staged(Arc::clone(&pki), CONFIG, staged.path()).await;
    let runtime = env.server.shared().runtime();

    let mut failures = Vec::new();
    for &(who, path, code, user, needs_directory) in CASES {
        let id = identity(&pki, &people, who);
        let resp = env.client(id).get(env.addr(), path).await;
        let proxied = (normal(&resp.code()), resp.remote_user());

        let chain = id.map(|i| vec![i.der.clone()]).unwrap_or_default();
        let target = Target {
            host: Some("localhost"),
            site: None,
            path,
        };
        let queried = explain_with_directory(&runtime, &chain, &target)
            .await
            .unwrap();
        let offline = explain(&runtime, &chain, &target).unwrap();

        let expected = (code.to_owned(), user.map(str::to_owned));
        let case = format!("{who} {path}");
        if proxied != expected {
            failures.push(format!("{case}: proxy {proxied:?}, want {expected:?}"));
        }
        if rendered(&queried) != expected {
            failures.push(format!(
                "{case}: explain --query-directory {:?}, want {expected:?}\n{queried}",
                rendered(&queried)
            ));
        }
        if needs_directory {
            // Offline, explain stops where the directory would be asked and says so.
            assert!(
                offline.to_string().contains("not queried"),
                "{case}\n{offline}"
            );
        } else if rendered(&offline) != expected {
            failures.push(format!(
                "{case}: explain {:?}, want {expected:?}\n{offline}",
                rendered(&offline)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn rendered(e: &Explanation) -> (String, Option<String>) {
    (normal(&e.verdict.code), e.verdict.user_name.clone())
}

/// `503.0` and `503` are one answer (certgate's page for a plain status has no sub-status).
fn normal(code: &str) -> String {
    code.strip_suffix(".0").unwrap_or(code).to_owned()
}

/// The explanation lists the steps the decision took, in order, with their facts.
#[tokio::test]
async fn explain_lists_the_steps_taken() {
    let pki = Arc::new(Pki::new());
    let staged = tempfile::tempdir().unwrap();
    std::fs::write(staged.path().join("bind.pw"), "not-used\n").unwrap();
    let env = Env::start_staged(Arc::clone(&pki), CONFIG, staged.path()).await;
    let runtime = env.server.shared().runtime();
    let target = Target {
        host: Some("localhost"),
        site: None,
        path: "/accept",
    };
    let e = explain(&runtime, std::slice::from_ref(&pki.bob.der), &target).unwrap();
    let json = serde_json::to_value(&e).unwrap();
    let steps: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["certificate", "no_mapping", "anonymous"]);
    assert_eq!(json["steps"][0]["outcome"], "valid");
    assert_eq!(json["steps"][2]["allowed"], true);
}
