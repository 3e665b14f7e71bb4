//! The proxy with Active Directory checks, against the real Samba AD DC that
//! `scripts/test.sh` starts: account states, nested groups, credential binds, AD certificate
//! mapping through `altSecurityIdentities`, and failing closed when the DC is unreachable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use certgate::identity::{CertFacts, hex_upper};
use certgate::pki::{ClientSpec, Issued};
use http::Request;
use support::{Env, Pki};

struct Ad {
    ldaps_url: String,
    ca_pem: String,
    base_dn: String,
    admin_upn: String,
    admin_password: String,
    user_password: String,
}

fn ad() -> Option<Ad> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let Some(ldaps_url) = var("AD_LDAPS_URL") else {
        let hint = "the Samba AD test DC is not running: use `bash scripts/test.sh`, or \
                    eval \"$(scripts/samba-ad.sh start target/samba-ad)\" first";
        if var("CERTGATE_SKIP_AD_TESTS").as_deref() == Some("1") {
            eprintln!("\n!!! SKIPPING directory proxy test: {hint}\n");
            return None;
        }
        panic!("{hint}");
    };
    Some(Ad {
        ldaps_url,
        ca_pem: var("AD_CA_PEM").unwrap(),
        base_dn: var("AD_BASE_DN").unwrap(),
        admin_upn: var("AD_ADMIN_UPN").unwrap(),
        admin_password: var("AD_ADMIN_PASSWORD").unwrap(),
        user_password: var("AD_USER_PASSWORD").unwrap(),
    })
}

/// Client certificates for AD users, mapped one-to-one by file name.
struct People {
    alice: Issued,
    carol: Issued,
    erin: Issued,
    nobody: Issued,
    judy: Issued,
    ivan: Issued,
    stranger: Issued,
}

fn people(pki: &Pki, dir: &std::path::Path) -> People {
    let make = |cn: &str| {
        let issued = pki.ca.client(&ClientSpec::new(cn)).unwrap();
        std::fs::write(dir.join(format!("{cn}.crt")), &issued.cert_pem).unwrap();
        issued
    };
    People {
        alice: make("ad-alice"),
        carol: make("ad-carol"),
        erin: make("ad-erin"),
        nobody: make("ad-nobody"),
        judy: make("ad-judy"),
        ivan: make("ad-ivan"),
        stranger: make("ad-stranger"),
    }
}

fn config(ad: &Ad, urls: &str) -> String {
    let base = &ad.base_dn;
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[directory]
urls = [{urls}]
ca = "{ca}"
bind_dn = "svc-certgate@example.test"
bind_password_env = "AD_BIND_PASSWORD"
base_dn = "{base}"
domain = "EXAMPLE"
timeout = "2s"

[[site]]
name = "Intranet"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{{backend}}"

[site.directory]
verify = "account"

[site.iis_client_certificate_mapping_authentication]
enabled = true
default_logon_domain = "EXAMPLE"
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "ad-alice.crt"
password_file = "alice.pw"
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "carol"
certificate_file = "ad-carol.crt"
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "erin@example.test"
certificate_file = "ad-erin.crt"
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\nobody"
certificate_file = "ad-nobody.crt"
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\judy"
certificate_file = "ad-judy.crt"
password_file = "wrong.pw"

[[site.location]]
path = "/admins"
[site.location.directory]
require_groups = ["CN=Admins Only,OU=Groups,{base}"]

[[site.location]]
path = "/staff"
[site.location.directory]
require_groups = ["CN=All Staff,OU=Groups,{base}"]

[[site.location]]
path = "/logon"
[site.location.directory]
verify = "credentials"

[[site]]
name = "AD mapped"
host_names = ["site-b.test"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{{backend}}"
[site.directory]
verify = "account"
[site.directory.certificate_mapping]
enabled = true

[[site.location]]
path = "/open"
anonymous_authentication = true
"#,
        ca = ad.ca_pem,
    )
}

async fn start(ad: &Ad, urls: &str) -> (Env, People) {
    let pki = Arc::new(Pki::new());
    let staged = tempfile::tempdir().unwrap();
    let p = people(&pki, staged.path());
    std::fs::write(
        staged.path().join("alice.pw"),
        format!("{}\n", ad.user_password),
    )
    .unwrap();
    std::fs::write(staged.path().join("wrong.pw"), "not-the-password").unwrap();
    let env = Env::start_staged(Arc::clone(&pki), &config(ad, urls), staged.path()).await;
    (env, p)
}

async fn get(env: &Env, who: &Issued, host: &str, path: &str) -> support::Resp {
    let client = env.client(Some(who)).with_alpn(&[b"http/1.1"]);
    let req = Request::get(path)
        .header("host", host)
        .body(Bytes::new())
        .unwrap();
    client.send(env.addr(), host, req).await.unwrap()
}

#[tokio::test]
async fn account_states_groups_and_credentials() {
    let Some(ad) = ad() else { return };
    let (env, p) = start(&ad, &format!("\"{}\"", ad.ldaps_url)).await;

    let resp = get(&env, &p.alice, "localhost", "/").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let h = resp.echo()["headers"].clone();
    assert_eq!(h["x-remote-user"], "EXAMPLE\\alice");
    let groups = h["x-remote-groups"].as_str().unwrap().to_owned();
    assert!(groups.contains("CN=Intranet Users,OU=Groups"), "{groups}");
    assert!(
        groups.contains("CN=All Staff,OU=Groups"),
        "nested group missing: {groups}"
    );

    // Disabled (bare name + default_logon_domain), expired, missing: 401.1, no AD detail.
    for who in [&p.carol, &p.erin, &p.nobody] {
        let resp = get(&env, who, "localhost", "/").await;
        assert_eq!(resp.code(), "401.1", "{}", resp.text());
        assert!(!resp.text().contains("533") && !resp.text().contains("701"));
    }
    // Groups: nested membership passes, a missing one is 401.3.
    assert_eq!(
        get(&env, &p.alice, "localhost", "/staff/x").await.code(),
        "200"
    );
    assert_eq!(
        get(&env, &p.alice, "localhost", "/admins/x").await.code(),
        "401.3"
    );
    // Credentials: alice's mapping password is right, judy's is wrong (judy, not bob: tests/ldap.rs spends bob's bad-password allowance).
    assert_eq!(
        get(&env, &p.alice, "localhost", "/logon").await.code(),
        "200"
    );
    assert_eq!(get(&env, &p.judy, "localhost", "/").await.code(), "200");
    assert_eq!(
        get(&env, &p.judy, "localhost", "/logon").await.code(),
        "401.1"
    );
    // Spoofed groups never pass through.
    let client = env.client(Some(&p.judy)).with_alpn(&[b"http/1.1"]);
    let req = Request::get("/")
        .header("host", "localhost")
        .header("x-remote-groups", "CN=Domain Admins")
        .body(Bytes::new())
        .unwrap();
    let resp = client.send(env.addr(), "localhost", req).await.unwrap();
    let groups = resp.echo()["headers"]["x-remote-groups"].to_string();
    assert!(!groups.contains("Domain Admins"), "{groups}");
}

/// The AD mapper: the account whose altSecurityIdentities names the certificate.
#[tokio::test]
async fn active_directory_certificate_mapping() {
    let Some(ad) = ad() else { return };
    let (env, p) = start(&ad, &format!("\"{}\"", ad.ldaps_url)).await;
    let facts = CertFacts::parse(&p.ivan.der).unwrap();
    let mut serial = facts.serial.clone();
    serial.reverse();
    let value = format!(
        "X509:<I>{}<SR>{}",
        facts.issuer.to_der_order_string(),
        hex_upper(&serial)
    );
    set_altsec(&ad, "ivan", &[value]).await;

    let resp = get(&env, &p.ivan, "site-b.test", "/").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "ivan@example.test");
    let resp = get(&env, &p.stranger, "site-b.test", "/").await;
    assert_eq!(resp.code(), "401.2", "{}", resp.text());

    // No account names the certificate and the location allows anonymous access: the proxy
    // forwards anonymously, and explain (same decision function) says so too.
    let resp = get(&env, &p.stranger, "site-b.test", "/open").await;
    assert_eq!(resp.code(), "200", "{}", resp.text());
    assert_eq!(resp.remote_user(), None);
    let explained = certgate::explain::explain_with_directory(
        &env.server.shared().runtime(),
        std::slice::from_ref(&p.stranger.der),
        &certgate::explain::Target {
            host: Some("site-b.test"),
            site: None,
            path: "/open",
        },
    )
    .await
    .unwrap();
    assert_eq!(explained.verdict.code, "200", "{explained}");
    assert_eq!(explained.verdict.user_name, None, "{explained}");
}

#[tokio::test]
async fn unreachable_directory_fails_closed() {
    let Some(ad) = ad() else { return };
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (env, p) = start(&ad, &format!("\"ldaps://{dead}\"")).await;
    let resp = get(&env, &p.alice, "localhost", "/").await;
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(!resp.text().contains(&dead.port().to_string()));
    assert!(!resp.text().contains("\"headers\""), "reached the backend");
}

async fn set_altsec(ad: &Ad, user: &str, values: &[String]) {
    use ldap3::{LdapConnAsync, LdapConnSettings, Mod};
    let mut roots = rustls::RootCertStore::empty();
    for cert in certgate::tls::load_certificates(std::path::Path::new(&ad.ca_pem)).unwrap() {
        roots.add(cert).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = LdapConnSettings::new().set_config(Arc::new(tls));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &ad.ldaps_url)
        .await
        .unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(&ad.admin_upn, &ad.admin_password)
        .await
        .unwrap()
        .success()
        .unwrap();
    let dn = format!("CN={user},OU=People,{}", ad.base_dn);
    let values: HashSet<&str> = values.iter().map(String::as_str).collect();
    ldap.modify(&dn, vec![Mod::Replace("altSecurityIdentities", values)])
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap.unbind().await.unwrap();
}

#[tokio::test]
async fn explain_queries_the_directory_like_the_proxy() {
    let Some(ad) = ad() else { return };
    let (env, p) = start(&ad, &format!("\"{}\"", ad.ldaps_url)).await;
    let runtime = env.server.shared().runtime();
    let explain = async |who: &Issued, path: &str| {
        certgate::explain::explain_with_directory(
            &runtime,
            std::slice::from_ref(&who.der),
            &certgate::explain::Target {
                host: Some("localhost"),
                site: None,
                path,
            },
        )
        .await
        .unwrap()
    };
    let carol = explain(&p.carol, "/").await;
    assert_eq!(carol.verdict.code, "401.1", "{carol}");
    assert!(carol.to_string().contains("disabled"), "{carol}");
    let alice = explain(&p.alice, "/admins/x").await;
    assert_eq!(alice.verdict.code, "401.3", "{alice}");
    assert!(
        alice.to_string().contains("not_in_required_group"),
        "{alice}"
    );
    let alice = explain(&p.alice, "/").await;
    assert_eq!(alice.verdict.code, "200", "{alice}");
    assert!(alice.to_string().contains("CN=All Staff"), "{alice}");
    // Without querying, the directory step is described, not run.
    let offline = certgate::explain::explain(
        &runtime,
        std::slice::from_ref(&p.carol.der),
        &certgate::explain::Target {
            host: Some("localhost"),
            site: None,
            path: "/",
        },
    )
    .unwrap();
    assert!(offline.to_string().contains("not queried"), "{offline}");
    // And the proxy agrees with the queried answer.
    assert_eq!(get(&env, &p.carol, "localhost", "/").await.code(), "401.1");
}
