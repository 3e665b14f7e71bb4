//! Revocation as http.sys does it, against real parts: CRLs made by `openssl ca`, served by a
//! real HTTP process (which can also be slow, huge, garbage or loop), `openssl ocsp` as the
//! responder, the proxy on loopback, and real TLS clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certgate::pki::{ClientSpec, Issued};
use support::revocation::{
    CdpServer, CrlSpec, OcspResponder, OpensslCa, client_cert, client_with_chain, code, explain,
    site_config,
};
use support::{Env, Pki};

/// What `explain` says about `who`'s chain at `env` (for assertion messages).
async fn why(env: &Env, who: &Issued) -> String {
    explain(env, who).await.1
}

struct World {
    pki: Arc<Pki>,
    openssl: OpensslCa,
    served: tempfile::TempDir,
    cdp: CdpServer,
    state: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let pki = Arc::new(Pki::new());
        let openssl = OpensslCa::new(&pki.ca);
        let served = tempfile::tempdir().unwrap();
        let cdp = CdpServer::start(served.path(), 0);
        Self {
            pki,
            openssl,
            served,
            cdp,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn publish(&self, name: &str, spec: &CrlSpec<'_>) {
        self.openssl.crl(spec, &self.served.path().join(name));
    }

    fn cert(&self, name: &str, serial: u64, cdp: &str) -> Issued {
        client_cert(&self.pki, name, serial, &[self.cdp.url(cdp)], &[])
    }

    async fn env(&self, extra: &str) -> Env {
        Env::start_with(
            Arc::clone(&self.pki),
            &site_config(self.state.path(), extra),
        )
        .await
    }
}

#[tokio::test]
async fn base_and_delta_crls_from_the_distribution_point() {
    let w = World::new();
    let delta_url = w.cdp.url("delta.crl");
    w.publish(
        "base.crl",
        &CrlSpec {
            entries: &[(0xB0B, "keyCompromise"), (0xD0D, "certificateHold")],
            number: 10,
            freshest: Some(delta_url.clone()),
            ..CrlSpec::default()
        },
    );
    w.publish(
        "delta.crl",
        &CrlSpec {
            entries: &[(0xCA1, "superseded")],
            number: 11,
            delta_of: Some(10),
            ..CrlSpec::default()
        },
    );
    let alice = w.cert("alice", 0xA11, "base.crl");
    let bob = w.cert("bob", 0xB0B, "base.crl");
    let carol = w.cert("carol", 0xCA1, "base.crl");
    let dave = w.cert("dave", 0xD0D, "base.crl");
    let nobody = client_cert(&w.pki, "no-cdp", 0xE0E, &[], &[]);
    let env = w.env("freshness_time = \"1s\"").await;

    assert_eq!(code(&env, &alice).await, "200", "good");
    assert_eq!(code(&env, &bob).await, "403.13", "revoked on the base CRL");
    assert_eq!(
        code(&env, &carol).await,
        "403.13",
        "revoked on the delta only"
    );
    assert_eq!(code(&env, &dave).await, "403.13", "on hold");
    assert_eq!(
        code(&env, &nobody).await,
        "200",
        "names no source: passes as in http.sys"
    );

    // The CA lifts the hold: a newer delta lists dave with removeFromCRL. freshness_time makes
    // the next handshake refetch.
    w.publish(
        "delta.crl",
        &CrlSpec {
            entries: &[(0xCA1, "superseded"), (0xD0D, "removeFromCRL")],
            number: 12,
            delta_of: Some(10),
            this_update: 0,
            ..CrlSpec::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        code(&env, &dave).await,
        "200",
        "hold lifted by removeFromCRL"
    );
    assert_eq!(code(&env, &carol).await, "403.13");

    // A delta that cannot be obtained fails closed: it may carry revocations.
    std::fs::remove_file(w.served.path().join("delta.crl")).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        code(&env, &alice).await,
        "200",
        "the last good delta still serves"
    );
}

#[tokio::test]
async fn cached_crl_serves_while_the_cdp_is_down_until_its_next_update() {
    let mut w = World::new();
    w.publish(
        "short.crl",
        &CrlSpec {
            entries: &[(0xB0B, "keyCompromise")],
            next_update: 4,
            ..CrlSpec::default()
        },
    );
    w.publish("long.crl", &CrlSpec::default());
    let short = w.cert("alice", 0xA11, "short.crl");
    let long = w.cert("carol", 0xCA1, "long.crl");
    let bob = w.cert("bob", 0xB0B, "short.crl");
    let env = w.env("").await;
    assert_eq!(code(&env, &short).await, "200");
    assert_eq!(code(&env, &long).await, "200");
    assert_eq!(code(&env, &bob).await, "403.13");

    w.cdp.stop();
    assert_eq!(
        code(&env, &short).await,
        "200",
        "within validity: from cache"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(code(&env, &long).await, "200", "still within validity");
    assert_eq!(
        code(&env, &short).await,
        "403.13",
        "past nextUpdate and the CDP is down"
    );
}

#[tokio::test]
async fn unknown_status_allow_lets_an_unobtainable_crl_pass() {
    let w = World::new();
    let alice = w.cert("alice", 0xA11, "missing.crl");
    let env = w.env("").await;
    assert_eq!(
        code(&env, &alice).await,
        "403.13",
        "no CRL: unknown: denied"
    );
    let allow = w.env("unknown_status = \"allow\"").await;
    assert_eq!(code(&allow, &alice).await, "200");
    let off = w.env("check = \"none\"").await;
    assert_eq!(code(&off, &alice).await, "200");
}

#[tokio::test]
async fn restart_with_the_cdp_down_uses_the_persisted_crl() {
    let mut w = World::new();
    w.publish(
        "ca.crl",
        &CrlSpec {
            entries: &[(0xB0B, "keyCompromise")],
            ..CrlSpec::default()
        },
    );
    let alice = w.cert("alice", 0xA11, "ca.crl");
    let bob = w.cert("bob", 0xB0B, "ca.crl");
    {
        let env = w.env("").await;
        assert_eq!(code(&env, &alice).await, "200");
        assert_eq!(code(&env, &bob).await, "403.13");
    }
    w.cdp.stop();
    // A new process: a fresh config file in a new directory, so nothing is shared in memory.
    let env = w.env("").await;
    assert_eq!(code(&env, &alice).await, "200", "persisted CRL serves");
    assert_eq!(code(&env, &bob).await, "403.13", "and still revokes");
    let cached_only = w.env("cached_only = true").await;
    assert_eq!(code(&cached_only, &bob).await, "403.13");
}

#[tokio::test]
async fn hostile_distribution_points_never_pass_and_never_stall_others() {
    let w = World::new();
    w.publish("ca.crl", &CrlSpec::default());
    // A CRL with the CA's name, signed by another key.
    let impostor = certgate::pki::Authority::new("Example Test CA").unwrap();
    OpensslCa::new(&impostor).crl(&CrlSpec::default(), &w.served.path().join("forged.crl"));
    let good = w.cert("alice", 0xA11, "ca.crl");
    let cases = [
        ("slow/ca.crl", "slow"),
        ("huge", "huge"),
        ("garbage", "garbage"),
        ("loop", "redirect loop"),
        ("forged.crl", "signed by another key"),
    ];
    let env = w.env("").await;
    assert_eq!(code(&env, &good).await, "200");
    for (i, (path, what)) in cases.iter().enumerate() {
        let cert = w.cert("mallory", 0x100 + i as u64, path);
        if *path == "slow/ca.crl" {
            // While one handshake waits for the slow CDP, others are served at once.
            let slow = {
                let client = env.client(Some(&cert));
                let addr = env.addr();
                tokio::spawn(async move { client.get(addr, "/").await.code() })
            };
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            assert_eq!(code(&env, &good).await, "200");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "stalled by the slow CDP"
            );
            assert_eq!(slow.await.unwrap(), "403.13", "{what}");
        } else {
            assert_eq!(code(&env, &cert).await, "403.13", "{what}");
        }
    }
    // A redirect to the real CRL is followed.
    let redirected = w.cert("rita", 0x200, "redirect/ca.crl");
    assert_eq!(code(&env, &redirected).await, "200");
}

#[tokio::test]
async fn every_certificate_of_the_chain_is_checked() {
    let w = World::new();
    let intermediate = w
        .pki
        .ca
        .intermediate("Issuing CA", &[w.cdp.url("root.crl")], &[])
        .unwrap();
    let inter_der = intermediate.der.clone();
    let issuing = OpensslCa::new(&intermediate);
    issuing.crl(&CrlSpec::default(), &w.served.path().join("issuing.crl"));
    let mut spec = ClientSpec::new("leaf");
    spec.crl_distribution_points = vec![w.cdp.url("issuing.crl")];
    let leaf = intermediate.client(&spec).unwrap();
    let client = client_with_chain(
        &w.pki.ca.cert_pem,
        vec![leaf.der.clone(), inter_der.clone()],
        &leaf.key_pem,
    );
    // The root's CRL cannot be obtained yet: the intermediate's status is unknown.
    let env = w.env("").await;
    assert_eq!(client.get(env.addr(), "/").await.code(), "403.13");
    let end_entity = w.env("check = \"end_entity\"").await;
    assert_eq!(client.get(end_entity.addr(), "/").await.code(), "200");
    w.publish("root.crl", &CrlSpec::default());
    let env = w.env("").await;
    assert_eq!(client.get(env.addr(), "/").await.code(), "200");
}

#[tokio::test]
async fn configured_crl_files_still_work() {
    // The support PKI writes ca.crl revoking REVOKED_SERIAL; BASIC configures it.
    let env = Env::start(support::BASIC).await;
    let resp = env
        .client(Some(&env.pki.revoked))
        .get(env.addr(), "/secure")
        .await;
    assert_eq!(resp.code(), "403.13");
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), "/").await;
    assert_eq!(resp.code(), "200");
}

#[tokio::test]
async fn ocsp_answers_decide_when_the_certificate_names_a_responder() {
    let w = World::new();
    let ca_signer = Issued {
        cert_pem: w.pki.ca.cert_pem.clone(),
        key_pem: w.pki.ca.key_pem(),
        der: w.pki.ca.der.clone(),
    };
    let entries = [
        (0xA11, "valid"),
        (0xA12, "valid"),
        (0xA13, "valid"),
        (0xB0B, "keyCompromise"),
    ];
    let by_ca = OcspResponder::start(&w.pki.ca, &entries, &ca_signer, 60);
    let delegated = w.pki.ca.ocsp_signer("OCSP Responder").unwrap();
    let by_delegate = OcspResponder::start(&w.pki.ca, &entries, &delegated, 60);
    // Signed by a certificate without id-kp-OCSPSigning: not authorised.
    let unauthorised = OcspResponder::start(&w.pki.ca, &entries, &w.pki.server, 60);
    // Signed by another CA's delegated responder.
    let foreign = w.pki.other_ca.ocsp_signer("Foreign responder").unwrap();
    let wrong_ca = OcspResponder::start(&w.pki.ca, &entries, &foreign, 60);
    let no_next_update = OcspResponder::start(&w.pki.ca, &entries, &ca_signer, 0);
    let env = w.env("").await;
    let ocsp =
        |name: &str, serial: u64, url: String| client_cert(&w.pki, name, serial, &[], &[url]);
    for (responder, label) in [(&by_ca, "CA-signed"), (&by_delegate, "delegated")] {
        let good = ocsp("alice", 0xA11, responder.url());
        let revoked = ocsp("bob", 0xB0B, responder.url());
        let unknown_ca = ocsp("carol", 0xCA1, responder.url());
        assert_eq!(code(&env, &good).await, "200", "{label} good");
        assert_eq!(code(&env, &revoked).await, "403.13", "{label} revoked");
        assert_eq!(
            code(&env, &unknown_ca).await,
            "403.13",
            "{label}: unknown to the responder"
        );
        assert_eq!(
            code(&env, &good).await,
            "200",
            "{label}: good again, cached"
        );
    }
    for (responder, label) in [
        (&unauthorised, "responder without OCSPSigning"),
        (&wrong_ca, "responder of another CA"),
    ] {
        let cert = ocsp("mallory", 0xA12, responder.url());
        assert_eq!(code(&env, &cert).await, "403.13", "{label}");
    }
    let cert = ocsp("nina", 0xA13, no_next_update.url());
    assert_eq!(code(&env, &cert).await, "200", "no nextUpdate: fresh now");
}

#[tokio::test]
async fn explain_says_which_source_decided_and_never_claims_an_unchecked_status() {
    let w = World::new();
    w.publish(
        "ca.crl",
        &CrlSpec {
            entries: &[(0xB0B, "keyCompromise")],
            ..CrlSpec::default()
        },
    );
    let alice = w.cert("alice", 0xA11, "ca.crl");
    let bob = w.cert("bob", 0xB0B, "ca.crl");
    let env = w.env("").await;
    let runtime = certgate::config::Runtime::load(
        &env.config_path(),
        &certgate::tls::server::ResumptionKeys::default(),
    )
    .unwrap();
    let target = certgate::explain::Target {
        host: Some("localhost"),
        site: None,
        path: "/",
    };
    let crl_url = w.cdp.url("ca.crl");

    let offline =
        certgate::explain::explain(&runtime, std::slice::from_ref(&alice.der), &target).unwrap();
    let detail = offline.chain.detail.clone().unwrap();
    assert!(detail.contains("revocation not consulted"), "{detail}");
    assert!(detail.contains(&format!("CRL {crl_url}")), "{detail}");
    assert!(!detail.contains("not revoked"), "{detail}");

    let online = certgate::explain::explain_with_revocation(
        &runtime,
        std::slice::from_ref(&alice.der),
        &target,
    )
    .await
    .unwrap();
    let detail = online.chain.detail.clone().unwrap();
    assert!(
        detail.contains(&format!("not revoked (CRL {crl_url}, fetched")),
        "{detail}"
    );
    assert_eq!(online.verdict.code, "200");

    let revoked = certgate::explain::explain_with_revocation(
        &runtime,
        std::slice::from_ref(&bob.der),
        &target,
    )
    .await
    .unwrap();
    assert_eq!(revoked.verdict.code, "403.13");
    let detail = revoked.chain.detail.clone().unwrap();
    assert!(
        detail.contains("revoked (CRL") && detail.contains("keyCompromise"),
        "{detail}"
    );
}

/// An AD CS style LDAP distribution point in the Samba AD test DC: a cRLDistributionPoint object
/// under `CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,...` holding the CRL, named
/// by a host-less `ldap:///` URL and read through `[directory]`.
#[tokio::test]
async fn ldap_distribution_point_in_active_directory() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(ldaps), Some(ca), Some(base), Some(admin), Some(admin_pw)) = (
        var("AD_LDAPS_URL"),
        var("AD_CA_PEM"),
        var("AD_BASE_DN"),
        var("AD_ADMIN_UPN"),
        var("AD_ADMIN_PASSWORD"),
    ) else {
        let hint = "the Samba AD test DC is not running (AD_* variables missing); start it with \
                    eval \"$(scripts/samba-ad.sh start target/samba-ad)\" or set \
                    CERTGATE_SKIP_AD_TESTS=1";
        if var("CERTGATE_SKIP_AD_TESTS").as_deref() == Some("1") {
            eprintln!("\n!!! SKIPPING LDAP CDP test: {hint}\n");
            return;
        }
        panic!("{hint}");
    };
    let w = World::new();
    let served = tempfile::tempdir().unwrap();
    let crl_path = served.path().join("ad.crl");
    w.openssl.crl(
        &CrlSpec {
            entries: &[(0xB0B, "keyCompromise")],
            ..CrlSpec::default()
        },
        &crl_path,
    );
    let crl = std::fs::read(&crl_path).unwrap();

    // Publish it as AD CS does, as the domain administrator.
    let raw = certgate::directory::RawDirectory {
        urls: vec![ldaps.clone()],
        ca: Some(ca.clone()),
        bind_dn: "unused".into(),
        bind_password_env: Some("AD_BIND_PASSWORD".into()),
        base_dn: base.clone(),
        ..Default::default()
    };
    let settings =
        certgate::directory::DirectorySettings::from_raw(&raw, Path::new("/"), "directory")
            .unwrap();
    let conn = ldap3::LdapConnSettings::new().set_config(settings.tls.clone().unwrap());
    let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(conn, &ldaps)
        .await
        .unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(&admin, &admin_pw)
        .await
        .unwrap()
        .success()
        .unwrap();
    let pks = format!("CN=Public Key Services,CN=Services,CN=Configuration,{base}");
    let host = format!("CN=certgate-test-{},CN=CDP,{pks}", std::process::id());
    for (dn, class) in [
        (pks.clone(), "container"),
        (format!("CN=CDP,{pks}"), "container"),
        (host.clone(), "container"),
    ] {
        let added = ldap
            .add(&dn, vec![("objectClass", ["top", class].into())])
            .await
            .unwrap();
        assert!(matches!(added.rc, 0 | 68), "{dn}: {added:?}");
    }
    let cdp_dn = format!("CN=Example Test CA,{host}");
    let _ = ldap.delete(&cdp_dn).await;
    let crl_value: std::collections::HashSet<&[u8]> = [crl.as_slice()].into();
    let cn_value: std::collections::HashSet<&[u8]> = [b"Example Test CA".as_slice()].into();
    let class_value: std::collections::HashSet<&[u8]> =
        [b"top".as_slice(), b"cRLDistributionPoint".as_slice()].into();
    ldap.add(
        &cdp_dn,
        vec![
            (b"objectClass".as_slice(), class_value),
            (b"cn".as_slice(), cn_value),
            (b"certificateRevocationList".as_slice(), crl_value),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    ldap.unbind().await.unwrap();

    let url = format!(
        "ldap:///{}?certificateRevocationList?base?objectClass=cRLDistributionPoint",
        cdp_dn.replace(' ', "%20")
    );
    let alice = client_cert(&w.pki, "alice", 0xA11, std::slice::from_ref(&url), &[]);
    let bob = client_cert(&w.pki, "bob", 0xB0B, &[url], &[]);
    let directory = format!(
        "\n[directory]\nurls = [\"{ldaps}\"]\nca = \"{ca}\"\nbind_dn = \"svc-certgate@example.test\"\n\
         bind_password_env = \"AD_BIND_PASSWORD\"\nbase_dn = \"{base}\"\ndomain = \"EXAMPLE\"\n\
         timeout = \"3s\"\n"
    );
    let text = site_config(w.state.path(), "").replacen(
        "\n[[site]]",
        &format!("{directory}\n[[site]]"),
        1,
    );
    let env = Env::start_with(Arc::clone(&w.pki), &text).await;
    assert_eq!(
        code(&env, &alice).await,
        "200",
        "{}",
        why(&env, &alice).await
    );
    assert_eq!(
        code(&env, &bob).await,
        "403.13",
        "{}",
        why(&env, &bob).await
    );
}
