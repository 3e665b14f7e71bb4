//! Kerberos to the backend, end to end: client certificate → certgate → Samba's KDC (S4U2Self +
//! S4U2Proxy, or the mapping password) → Apache httpd with mod_auth_gssapi, which reports the
//! Kerberos identity it accepted.
//!
//! Needs the test DC with its KDC and the Apache backend (`scripts/with-ad.sh` starts both;
//! `scripts/test.sh` runs every test through it):
//!
//! ```sh
//! bash scripts/with-ad.sh cargo test --features kerberos --test kerberos
//! ```
//!
//! `KRB5_CONFIG` is process-global for MIT krb5, so the whole test binary uses the one
//! krb5.conf `scripts/samba-kdc.sh` wrote; each test has its own proxy, so its own ticket cache
//! and counters, and the tests run in parallel. Without the `KRB_*` variables every test fails
//! with a hint; `CERTGATE_SKIP_AD_TESTS=1` turns that into a loud skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use support::kerberos::{
    OneConnection, backend_saw, config, krb, reported, requests_logged, start, stats,
};
use support::{Env, Pki};

macro_rules! krb_or_skip {
    () => {
        match krb() {
            Some(k) => k,
            None => return,
        }
    };
}

#[tokio::test]
async fn s4u_alice_reaches_the_backend_as_herself_and_the_ticket_is_reused() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"\nmode = \"s4u\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let client = env.client(Some(&env.pki.alice));

    let first = client.get(env.addr(), "/whoami").await;
    assert_eq!(reported(&first, "REMOTE_USER"), "alice@EXAMPLE.TEST");
    assert_eq!(reported(&first, "AUTH_TYPE"), "Negotiate");
    // The identity header still goes along.
    assert_eq!(reported(&first, "X_REMOTE_USER"), "EXAMPLE\\alice");
    let after_first = stats(&env);
    // The service account's TGT, then S4U2Self + S4U2Proxy for alice.
    assert_eq!(after_first.kdc_requests, 2, "{after_first:?}");

    // A new client connection: a fresh token from the cached ticket, no KDC exchange.
    let second = client.get(env.addr(), "/whoami").await;
    assert_eq!(reported(&second, "REMOTE_USER"), "alice@EXAMPLE.TEST");
    let after_second = stats(&env);
    assert_eq!(after_second.kdc_requests, 2, "{after_second:?}");
    assert_eq!(after_second.cache_hits, after_first.cache_hits + 1);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_kdc_exchange() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let env = Arc::new(start(&config(&k, "alice@example.test", &spn, "")).await);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let env = Arc::clone(&env);
        tasks.push(tokio::spawn(async move {
            let client = env.client(Some(&env.pki.alice));
            reported(&client.get(env.addr(), "/whoami").await, "REMOTE_USER")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "alice@EXAMPLE.TEST");
    }
    let s = stats(&env);
    assert_eq!(s.kdc_requests, 2, "{s:?}");
    assert_eq!(s.cache_hits, 5, "{s:?}");
}

#[tokio::test]
async fn password_mode_logs_on_with_the_mapping_password() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"\nmode = \"password\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let client = env.client(Some(&env.pki.alice));
    let resp = client.get(env.addr(), "/whoami").await;
    assert_eq!(reported(&resp, "REMOTE_USER"), "alice@EXAMPLE.TEST");
    // No service account involved: one AS exchange for alice (plus her service ticket).
    assert_eq!(stats(&env).kdc_requests, 1);
}

#[tokio::test]
async fn password_mode_with_a_wrong_password_is_401_1() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"\nmode = \"password\"", k.backend_spn);
    // bob's password is not alice's.
    let env = start(&config(&k, "EXAMPLE\\grace", &spn, "").replace(
        "password_env = \"AD_USER_PASSWORD\"",
        "password_env = \"AD_ADMIN_PASSWORD\"",
    ))
    .await;
    let path = "/wrong-password/whoami";
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), path).await;
    assert_eq!(resp.code(), "401.1", "{}", resp.text());
    assert_eq!(
        requests_logged(&k, path),
        0,
        "the request must not reach the backend"
    );
}

#[tokio::test]
async fn many_to_one_users_reach_the_backend_as_the_mapped_account() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let m2o = r#"
[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Everyone from the test CA"
user_name = "EXAMPLE\\heidi"
rules = [{ certificate_field = "Issuer", certificate_sub_field = "CN", match_criteria = "Example Test CA" }]
"#;
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, m2o)).await;
    let resp = env
        .client(Some(&env.pki.bob))
        .get(env.addr(), "/whoami")
        .await;
    assert_eq!(reported(&resp, "REMOTE_USER"), "heidi@EXAMPLE.TEST");
    // alice's one-to-one mapping still wins for her own certificate.
    let resp = env
        .client(Some(&env.pki.alice))
        .get(env.addr(), "/whoami")
        .await;
    assert_eq!(reported(&resp, "REMOTE_USER"), "alice@EXAMPLE.TEST");
}

#[tokio::test]
async fn a_disabled_account_is_refused_with_401_1_before_the_backend() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    // carol is disabled in the test AD.
    let env = start(&config(&k, "EXAMPLE\\carol", &spn, "")).await;
    let path = "/disabled-account/whoami";
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), path).await;
    assert_eq!(resp.code(), "401.1", "{}", resp.text());
    assert_eq!(requests_logged(&k, path), 0);
    // An unknown account too.
    let env = start(&config(&k, "EXAMPLE\\nosuchuser", &spn, "")).await;
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), path).await;
    assert_eq!(resp.code(), "401.1", "{}", resp.text());
    assert_eq!(requests_logged(&k, path), 0);
}

#[tokio::test]
async fn an_spn_outside_the_delegation_list_is_refused() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.other_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let path = "/not-delegable/whoami";
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), path).await;
    assert_eq!(resp.code(), "500", "{}", resp.text());
    assert!(
        !resp.text().contains("other.example.test"),
        "no detail on the page"
    );
    assert_eq!(requests_logged(&k, path), 0);
}

#[tokio::test]
async fn a_backend_401_is_passed_back_without_retrying_as_anyone_else() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    // Under /other the backend only accepts tickets for HTTP/other.example.test.
    let path = format!("/other/no-retry-{}/whoami", std::process::id());
    let resp = env
        .client(Some(&env.pki.alice))
        .get(env.addr(), &path)
        .await;
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(resp.headers.contains_key("www-authenticate"));
    // Exactly one attempt reaches the backend (Apache logs after answering: wait for it).
    assert_eq!(backend_saw(&k, &path, 1).await, ["token 401"]);
}

#[tokio::test]
async fn users_on_one_client_connection_never_share_a_backend_identity() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    // Under /bound the backend keeps a connection authenticated (as IIS does). The site maps
    // alice's certificate to alice; /bound/team maps every certificate to heidi; /bound/plain
    // sends no Kerberos at all.
    let locations = r#"
[[site.location]]
path = "/bound/team"
[site.location.iis_client_certificate_mapping_authentication]
enabled = true
many_to_one_certificate_mappings_enabled = true
[[site.location.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Team"
user_name = "EXAMPLE\\heidi"
rules = [{ certificate_field = "Issuer", certificate_sub_field = "CN", match_criteria = "Example Test CA" }]

[[site.location]]
path = "/bound/plain"
[site.location.backend_kerberos]
enabled = false
"#;
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, locations)).await;
    let mut client = OneConnection::open(&env, &env.pki.alice).await;
    for _ in 0..2 {
        let user = client.user("/bound/whoami", None).await;
        assert_eq!(user, "alice@EXAMPLE.TEST");
        let user = client.user("/bound/team/whoami", None).await;
        assert_eq!(user, "heidi@EXAMPLE.TEST");
        // Without Kerberos the request must not ride on a connection alice or heidi
        // authenticated: the backend sees nobody and asks for credentials.
        let (status, body) = client.send("/bound/plain/whoami", None).await;
        assert_eq!(
            status, 401,
            "ran as someone on a shared backend connection: {body}"
        );
    }
    // The second round rode on alice's and heidi's authenticated connections, each its own.
    let s = stats(&env);
    assert_eq!((s.tokens, s.bound_requests), (2, 2), "{s:?}");
}

/// The real binary with the service account's keytab: `certgate run` restarts itself with
/// `KRB5_CLIENT_KTNAME`/`KRB5_CONFIG` from `[kerberos]` (the test removes them from its
/// environment), and `/metrics` counts the KDC exchanges and ticket cache hits.
#[tokio::test]
async fn the_binary_uses_the_keytab_and_counts_kdc_requests_in_metrics() {
    use tokio::io::AsyncBufReadExt;
    let k = krb_or_skip!();
    let keytab = std::env::var("KRB_SERVICE_KEYTAB").expect("KRB_SERVICE_KEYTAB");
    let krb5_conf = std::env::var("KRB5_CONFIG").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, admin) = (free(), free());
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let config = config(&k, "EXAMPLE\\alice", &spn, "")
        .replace(
            "listen = [\"127.0.0.1:0\"]",
            &format!("listen = [\"127.0.0.1:{port}\"]\nadmin_listen = \"127.0.0.1:{admin}\""),
        )
        .replace(
            "password_env = \"AD_BIND_PASSWORD\"",
            &format!("keytab = \"{keytab}\"\nkrb5_conf = \"{krb5_conf}\""),
        );
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, &config).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["--log-format", "json", "run", "-c"])
        .arg(&path)
        .env_remove("KRB5_CLIENT_KTNAME")
        .env_remove("KRB5CCNAME")
        .env_remove("KRB5_CONFIG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening (https)") {
                return;
            }
        }
        panic!("certgate exited before listening");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let client = support::Client::new(&pki.ca.cert_pem, Some(&pki.alice));
    for _ in 0..2 {
        let resp = client.get(addr, "/whoami").await;
        assert_eq!(reported(&resp, "REMOTE_USER"), "alice@EXAMPLE.TEST");
    }
    let metrics = reqwest_metrics(admin).await;
    let line = |needle: &[&str]| {
        metrics
            .lines()
            .find(|l| needle.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    let kdc = "certgate_kerberos_kdc_requests_total{";
    assert_eq!(
        line(&[kdc, "step=\"service_account\"", "outcome=\"ok\""]),
        "1"
    );
    assert_eq!(line(&[kdc, "step=\"s4u2self\"", "outcome=\"ok\""]), "1");
    let cache = "certgate_kerberos_ticket_cache_total{";
    assert_eq!(line(&[cache, "result=\"hit\""]), "1");
    assert_eq!(line(&[cache, "result=\"miss\""]), "1");
    // Apache does not keep the logon under /whoami: the second request went without a token on
    // the authenticated connection, got 401 and was resent with one.
    let auth = "certgate_kerberos_backend_auth_total{";
    assert_eq!(line(&[auth, "how=\"token\""]), "2");
    assert_eq!(line(&[auth, "how=\"connection\""]), "1");
    assert_eq!(line(&[auth, "how=\"retry\""]), "1");
    child.kill().await.unwrap();
}

/// GET /metrics from the admin listener (plain HTTP/1.1).
async fn reqwest_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// `explain --query-directory` runs the same Kerberos step: a ticket for alice, a refusal with
/// the proxy's status for a disabled account.
#[tokio::test]
async fn explain_shows_the_kerberos_step_and_its_answer() {
    use certgate::tools::explain::{Target, explain, explain_with_directory};
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let target = Target {
        host: Some("localhost"),
        site: None,
        path: "/whoami",
    };
    for (user, code, answer) in [
        (
            "EXAMPLE\\alice",
            "200",
            "ticket issued for alice@EXAMPLE.TEST",
        ),
        ("EXAMPLE\\carol", "401.1", "account_refused"),
    ] {
        let env = start(&config(&k, user, &spn, "")).await;
        let runtime = env.server.shared().runtime();
        let chain = vec![env.pki.alice.der.clone()];
        let offline = explain(&runtime, &chain, &target).unwrap();
        assert!(
            offline
                .kerberos
                .as_deref()
                .unwrap()
                .contains("HTTP/backend.example.test")
        );
        assert!(offline.to_string().contains("not queried"), "{offline}");
        assert!(
            offline.to_string().contains("reuse the connection's logon"),
            "{offline}"
        );
        let e = explain_with_directory(&runtime, &chain, &target)
            .await
            .unwrap();
        assert_eq!(e.verdict.code, code, "{e}");
        let got = e.kerberos_answer.clone().unwrap_or_default();
        assert!(got.contains(answer), "{user}: {got}");
    }
}

/// AD certificate mapping (altSecurityIdentities) then S4U: the account the directory found
/// is the one the KDC issues the ticket for (its sAMAccountName).
#[tokio::test]
async fn an_ad_mapped_user_reaches_the_backend_as_the_directory_account() {
    use ldap3::{LdapConnAsync, LdapConnSettings, Mod};
    let k = krb_or_skip!();
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} (scripts/samba-ad.sh)"));
    let (ldaps, ca, base) = (var("AD_LDAPS_URL"), var("AD_CA_PEM"), var("AD_BASE_DN"));
    let pki = Arc::new(Pki::new());
    // olivia's altSecurityIdentities names this test's alice certificate (strong form).
    let raw = certgate::directory::RawDirectory {
        urls: vec![ldaps.clone()],
        ca: Some(ca.clone()),
        bind_dn: var("AD_BIND_DN"),
        bind_password_env: Some("AD_BIND_PASSWORD".into()),
        base_dn: base.clone(),
        ..Default::default()
    };
    let settings =
        certgate::directory::DirectorySettings::from_raw(&raw, std::path::Path::new("/"), "d")
            .unwrap();
    let conn_settings = LdapConnSettings::new().set_config(settings.tls.clone().unwrap());
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &ldaps)
        .await
        .unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(&var("AD_ADMIN_UPN"), &var("AD_ADMIN_PASSWORD"))
        .await
        .unwrap()
        .success()
        .unwrap();
    let facts = certgate::identity::CertFacts::parse(&pki.alice.der).unwrap();
    let value = format!("X509:<SHA1-PUKEY>{}", facts.thumbprint());
    ldap.modify(
        &format!("CN=olivia,OU=People,{base}"),
        vec![Mod::Replace(
            "altSecurityIdentities",
            std::collections::HashSet::from([value.as_str()]),
        )],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    ldap.unbind().await.unwrap();

    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
backend_response_timeout = "5s"

[directory]
urls = ["{ldaps}"]
ca = "{ca}"
bind_dn = "{bind}"
bind_password_env = "AD_BIND_PASSWORD"
base_dn = "{base}"

[kerberos]
realm = "EXAMPLE.TEST"
principal = "svc-certgate"
password_env = "AD_BIND_PASSWORD"

[[site]]
name = "Kerberos"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "{url}"

[site.backend_kerberos]
spn = "{spn}"

[site.directory]
verify = "account"
[site.directory.certificate_mapping]
enabled = true
"#,
        bind = var("AD_BIND_DN"),
        url = k.backend_url,
        spn = k.backend_spn,
    );
    let env = Env::start_with(pki, &config).await;
    let resp = env
        .client(Some(&env.pki.alice))
        .get(env.addr(), "/whoami")
        .await;
    assert_eq!(reported(&resp, "REMOTE_USER"), "olivia@EXAMPLE.TEST");
    assert_eq!(reported(&resp, "X_REMOTE_USER"), "olivia@example.test");
}

/// A KDC refusal (here: a disabled account) is remembered per (mode, user, SPN) for
/// `negative_cache_ttl`, so a burst from that user asks the KDC once; with "0s" every request
/// asks. A transient failure (no KDC answers for the user's realm) is never remembered.
#[tokio::test]
async fn refusals_are_remembered_briefly_and_transient_failures_are_not() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let path = "/remembered-refusal/whoami";
    let kerberos = "password_env = \"AD_BIND_PASSWORD\"";
    for (ttl, kdc_requests, refusal_hits) in [("30s", 2, 2), ("0s", 4, 0)] {
        let text = config(&k, "EXAMPLE\\carol", &spn, "").replace(
            kerberos,
            &format!("{kerberos}\nnegative_cache_ttl = \"{ttl}\""),
        );
        let env = start(&text).await;
        for _ in 0..3 {
            let resp = env.client(Some(&env.pki.alice)).get(env.addr(), path).await;
            assert_eq!(resp.code(), "401.1", "{}", resp.text());
        }
        let s = stats(&env);
        // The service account's TGT, then one S4U2Self per request that asked.
        assert_eq!(
            (s.kdc_requests, s.refusal_hits),
            (kdc_requests, refusal_hits),
            "negative_cache_ttl {ttl}: {s:?}"
        );
    }
    assert_eq!(requests_logged(&k, path), 0);

    // DEAD.TEST's KDC (scripts/samba-kdc.sh) does not exist: 503 each time, the KDC asked
    // each time.
    let spn = format!("spn = \"{}\"\nmode = \"password\"", k.backend_spn);
    let text = config(&k, "alice@dead.test", &spn, "").replace(
        kerberos,
        &format!("{kerberos}\ndomain_realms = {{ \"dead.test\" = \"DEAD.TEST\" }}"),
    );
    let env = start(&text).await;
    for _ in 0..2 {
        let resp = env.client(Some(&env.pki.alice)).get(env.addr(), path).await;
        assert_eq!(resp.code(), "503", "{}", resp.text());
    }
    let s = stats(&env);
    assert_eq!((s.kdc_requests, s.refusal_hits), (2, 0), "{s:?}");
}

/// `tests/support/negotiate_backend.py`, a backend without the SPN's key that answers 200 with a
/// reply token that cannot verify (or none).
struct Impostor {
    child: std::process::Child,
    url: String,
}

impl Impostor {
    fn start() -> Self {
        use std::io::BufRead;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support/negotiate_backend.py");
        let mut child = std::process::Command::new("python3")
            .arg("-u")
            .arg(script)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 is needed (apt-get install python3)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("negotiate_backend.py said {line:?}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mutual authentication: Apache's reply token (its AP-REP) completes certgate's context, and
/// the Negotiate challenge does not reach the client. A backend without the SPN's key cannot
/// make one: a forged AP-REP, a SPNEGO reject or garbage gets 502 and its body is withheld. A
/// response without a token passes unless `require_mutual_auth` is on.
#[tokio::test]
async fn the_backend_must_prove_it_holds_the_spn_key() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"\nrequire_mutual_auth = true", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    for n in 1..=2 {
        let resp = env
            .client(Some(&env.pki.alice))
            .get(env.addr(), "/whoami")
            .await;
        assert_eq!(reported(&resp, "REMOTE_USER"), "alice@EXAMPLE.TEST");
        assert!(
            !resp.headers.contains_key("www-authenticate"),
            "{:?}",
            resp.headers
        );
        let s = stats(&env);
        assert_eq!((s.mutual_verified, s.mutual_failed), (n, 0), "{s:?}");
    }

    let impostor = Impostor::start();
    for (require, none_code) in [("false", "200"), ("true", "502")] {
        let spn = format!(
            "spn = \"{}\"\nrequire_mutual_auth = {require}",
            k.backend_spn
        );
        let text = config(&k, "EXAMPLE\\alice", &spn, "").replace(&k.backend_url, &impostor.url);
        let env = start(&text).await;
        let client = env.client(Some(&env.pki.alice));
        for path in ["/forged", "/reject", "/garbage"] {
            let resp = client.get(env.addr(), path).await;
            assert_eq!(resp.code(), "502", "{path}: {}", resp.text());
            assert!(!resp.text().contains("IMPOSTOR"), "{path}: body leaked");
        }
        let resp = client.get(env.addr(), "/none").await;
        assert_eq!(resp.code(), none_code, "require {require}: {}", resp.text());
        if none_code == "200" {
            // It did get alice's token: the 502s above were the reply, not the request.
            assert!(
                resp.text().contains("NEGOTIATE_RECEIVED=True"),
                "{}",
                resp.text()
            );
        }
        let s = stats(&env);
        let failed = if require == "true" { 4 } else { 3 };
        assert_eq!((s.mutual_verified, s.mutual_failed), (0, failed), "{s:?}");
    }
}
