//! `directory` against a real Samba AD DC on loopback.
//!
//! Start the DC first (CI does this in `.ci/ldap.sh`):
//!
//! ```sh
//! eval "$(scripts/samba-ad.sh start target/samba-ad)"
//! cargo test --test ldap
//! scripts/samba-ad.sh stop target/samba-ad
//! ```
//!
//! Without the `AD_*` variables every test fails with that hint; `CERTGATE_SKIP_AD_TESTS=1`
//! turns the failure into a loud skip for machines that cannot run Samba.
//!
//! Each test builds its own [`Directory`] (own cache, own counters) and writes
//! `altSecurityIdentities` only on its own users, so the tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use certgate::directory::altsec::AltSecForm;
use certgate::directory::{
    AccountRef, AltSecPolicy, CertMatch, DenyReason, Directory, DirectorySettings, GroupDn,
    RawCertificateMapping, RawDirectory, RawSiteDirectory, Secret, SitePolicy, Verdict,
};
use certgate::identity::{CertFacts, hex_upper, sha1};
use ldap3::{LdapConnAsync, LdapConnSettings, Mod};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    OtherNameValue, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

const UPN_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

/// The DC's coordinates, from `scripts/samba-ad.sh start`.
struct Ad {
    ldaps_url: String,
    ldap_url: String,
    ca_pem: String,
    base_dn: String,
    realm: String,
    bind_dn: String,
    admin_upn: String,
    admin_password: String,
    user_password: Secret,
}

fn ad() -> Option<Ad> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let names = [
        "AD_LDAPS_URL",
        "AD_LDAP_URL",
        "AD_CA_PEM",
        "AD_BASE_DN",
        "AD_REALM",
        "AD_BIND_DN",
        "AD_BIND_PASSWORD",
        "AD_ADMIN_UPN",
        "AD_ADMIN_PASSWORD",
        "AD_USER_PASSWORD",
    ];
    let missing: Vec<&str> = names.iter().copied().filter(|n| var(n).is_none()).collect();
    if !missing.is_empty() {
        let hint = format!(
            "the Samba AD test DC is not running (missing {}). Start it with\n    \
             eval \"$(scripts/samba-ad.sh start target/samba-ad)\"\n\
             then run the tests in the same shell (stop it with scripts/samba-ad.sh stop \
             target/samba-ad). Set CERTGATE_SKIP_AD_TESTS=1 to skip instead.",
            missing.join(", ")
        );
        if var("CERTGATE_SKIP_AD_TESTS").as_deref() == Some("1") {
            eprintln!("\n!!! SKIPPING directory integration test: {hint}\n");
            return None;
        }
        panic!("{hint}");
    }
    let get = |name: &str| var(name).unwrap();
    Some(Ad {
        ldaps_url: get("AD_LDAPS_URL"),
        ldap_url: get("AD_LDAP_URL"),
        ca_pem: get("AD_CA_PEM"),
        base_dn: get("AD_BASE_DN"),
        realm: get("AD_REALM"),
        bind_dn: get("AD_BIND_DN"),
        admin_upn: get("AD_ADMIN_UPN"),
        admin_password: get("AD_ADMIN_PASSWORD"),
        user_password: Secret::new(get("AD_USER_PASSWORD")),
    })
}

macro_rules! ad_or_skip {
    () => {
        match ad() {
            Some(ad) => ad,
            None => return,
        }
    };
}

impl Ad {
    fn raw(&self) -> RawDirectory {
        RawDirectory {
            urls: vec![self.ldaps_url.clone()],
            ca: Some(self.ca_pem.clone()),
            bind_dn: self.bind_dn.clone(),
            bind_password_env: Some("AD_BIND_PASSWORD".into()),
            base_dn: self.base_dn.clone(),
            domain: Some("EXAMPLE".into()),
            timeout: Some(Duration::from_secs(3)),
            ..RawDirectory::default()
        }
    }

    fn settings(&self, raw: &RawDirectory) -> DirectorySettings {
        DirectorySettings::from_raw(raw, Path::new("/"), "directory")
            .unwrap_or_else(|issues| panic!("test config invalid: {issues:?}"))
    }

    fn directory(&self, raw: &RawDirectory) -> Directory {
        Directory::new(&self.settings(raw)).unwrap()
    }

    fn dn(&self, cn: &str) -> String {
        format!("CN={cn},OU=People,{}", self.base_dn)
    }

    fn group(&self, cn: &str) -> GroupDn {
        GroupDn::parse(&format!("CN={cn},OU=Groups,{}", self.base_dn)).unwrap()
    }

    /// Replaces `user`'s altSecurityIdentities, as an administrator would in ADUC.
    async fn set_altsec(&self, user: &str, values: &[String]) {
        let settings = self.settings(&self.raw());
        let conn_settings = LdapConnSettings::new().set_config(settings.tls.clone().unwrap());
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &self.ldaps_url)
            .await
            .unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(&self.admin_upn, &self.admin_password)
            .await
            .unwrap()
            .success()
            .unwrap();
        let values: HashSet<&str> = values.iter().map(String::as_str).collect();
        ldap.modify(
            &self.dn(user),
            vec![Mod::Replace("altSecurityIdentities", values)],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        ldap.unbind().await.unwrap();
    }
}

fn name(name: &str) -> AccountRef<'_> {
    AccountRef::Name {
        name,
        default_logon_domain: None,
    }
}

fn allowed(verdict: &Verdict) -> &certgate::directory::Account {
    match verdict {
        Verdict::Allow(account) => account,
        other => panic!("expected Allow, got {other:?}"),
    }
}

fn denied(verdict: &Verdict) -> DenyReason {
    match verdict {
        Verdict::Deny(reason) => *reason,
        other => panic!("expected Deny, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Test PKI

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// A serial unique per run and call, with the top bit set so DER adds a 0x00 sign byte.
fn serial() -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut bytes = (nanos ^ SERIAL.fetch_add(1, Ordering::Relaxed) << 48)
        .to_be_bytes()
        .to_vec();
    bytes[0] |= 0x80;
    bytes
}

fn test_ca(cn: &str) -> Issuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certgate test");
    params.distinguished_name.push(DnType::CommonName, cn);
    Issuer::new(params, KeyPair::generate().unwrap())
}

fn leaf(ca: &Issuer<'static, KeyPair>, subject_cn: &str, upn: Option<&str>) -> CertFacts {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    params.serial_number = Some(SerialNumber::from_slice(&serial()));
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certgate test");
    params
        .distinguished_name
        .push(DnType::CommonName, subject_cn);
    if let Some(upn) = upn {
        params.subject_alt_names = vec![SanType::OtherName((
            UPN_OID.to_vec(),
            OtherNameValue::Utf8String(upn.into()),
        ))];
    }
    let cert = params.signed_by(&KeyPair::generate().unwrap(), ca).unwrap();
    CertFacts::parse(&CertificateDer::from(cert.der().to_vec())).unwrap()
}

fn reversed_hex(bytes: &[u8]) -> String {
    let mut b = bytes.to_vec();
    b.reverse();
    hex_upper(&b)
}

fn cn_first(facts_dn: &certgate::identity::Dn) -> String {
    let mut dn = facts_dn.clone();
    dn.rdns.reverse();
    dn.to_der_order_string()
}

// ---------------------------------------------------------------------------------------------
// Account checks

#[tokio::test]
async fn account_outcomes() {
    let ad = ad_or_skip!();
    let dir = ad.directory(&ad.raw());

    let alice = dir.check_account(name("alice"), &[]).await;
    let account = allowed(&alice);
    assert_eq!(account.dn, ad.dn("alice"));
    assert_eq!(account.sam_account_name.as_deref(), Some("alice"));
    assert_eq!(
        account.user_principal_name.as_deref(),
        Some(format!("alice@{}", ad.realm).as_str())
    );
    // tokenGroups: direct, nested and primary group.
    for group in [
        "Intranet Users,OU=Groups",
        "All Staff,OU=Groups",
        "Domain Users,CN=Users",
    ] {
        let dn = format!("CN={group},{}", ad.base_dn);
        assert!(
            account.groups.contains(&dn),
            "{dn} not in {:?}",
            account.groups
        );
    }
    assert_eq!(alice.iis_status(), (200, 0));

    // Every name form IIS accepts reaches the same account.
    let upn = format!("alice@{}", ad.realm);
    let forms = [
        name("EXAMPLE\\alice"),
        name(&upn),
        AccountRef::Name {
            name: "alice",
            default_logon_domain: Some("EXAMPLE"),
        },
        AccountRef::Dn(&account.dn),
    ];
    for form in forms {
        assert_eq!(
            allowed(&dir.check_account(form, &[]).await).dn,
            account.dn,
            "{form:?}"
        );
    }

    let cases = [
        ("nobody", DenyReason::NoSuchUser),
        ("carol", DenyReason::Disabled),
        ("frank", DenyReason::LockedOut),
        ("erin", DenyReason::AccountExpired),
        ("dave", DenyReason::MustChangePassword),
        (".\\alice", DenyReason::UnsupportedName),
        ("OTHERDOMAIN\\alice", DenyReason::NoSuchUser),
    ];
    for (user, reason) in cases {
        let verdict = dir.check_account(name(user), &[]).await;
        assert_eq!(denied(&verdict), reason, "{user}");
        assert_eq!(verdict.iis_status(), (401, 1), "{user}");
    }
    assert_eq!(dir.stats().failures, 0);
}

#[tokio::test]
async fn group_requirements_follow_nesting() {
    let ad = ad_or_skip!();
    let dir = ad.directory(&ad.raw());
    let all_staff = ad.group("All Staff"); // alice is in it only through "Intranet Users"
    let admins = ad.group("Admins Only");

    allowed(
        &dir.check_account(name("alice"), std::slice::from_ref(&all_staff))
            .await,
    );
    // Any of the listed groups is enough.
    allowed(
        &dir.check_account(name("alice"), &[admins.clone(), all_staff.clone()])
            .await,
    );
    // Spelling of the configured DN does not matter.
    let typed = GroupDn::parse(&format!(
        "cn=all staff, ou=groups, {}",
        ad.base_dn.to_lowercase()
    ))
    .unwrap();
    allowed(&dir.check_account(name("alice"), &[typed]).await);

    let verdict = dir
        .check_account(name("alice"), std::slice::from_ref(&admins))
        .await;
    assert_eq!(denied(&verdict), DenyReason::NotInRequiredGroup);
    assert_eq!(verdict.iis_status(), (401, 3));
    let verdict = dir.check_account(name("bob"), &[all_staff]).await;
    assert_eq!(denied(&verdict), DenyReason::NotInRequiredGroup);

    // One load for alice (three operations: lookup, read, groups), reused for every check.
    let stats = dir.stats();
    assert_eq!(stats.loads, 2, "{stats:?}");
    assert_eq!(stats.searches, 6, "{stats:?}");
}

// ---------------------------------------------------------------------------------------------
// Credential checks

async fn credential_outcomes(ad: &Ad, dir: &Directory) {
    let pw = &ad.user_password;
    let wrong = Secret::new("not the password");

    allowed(&dir.check_credentials(name("alice"), pw, &[]).await);
    let verdict = dir.check_credentials(name("bob"), &wrong, &[]).await;
    assert_eq!(denied(&verdict), DenyReason::BadPassword);
    assert_eq!(verdict.iis_status(), (401, 1));
    // The right password right after a wrong one is not served from the negative cache (the
    // key includes the password), and resets bob's bad-password count.
    allowed(&dir.check_credentials(name("bob"), pw, &[]).await);
    // Account-state failures are found before any bind.
    assert_eq!(
        denied(&dir.check_credentials(name("carol"), pw, &[]).await),
        DenyReason::Disabled
    );
    assert_eq!(
        denied(&dir.check_credentials(name("nobody"), pw, &[]).await),
        DenyReason::NoSuchUser
    );
    assert_eq!(dir.stats().user_binds, 3);

    // Groups apply after the password check too.
    let admins = ad.group("Admins Only");
    let verdict = dir.check_credentials(name("alice"), pw, &[admins]).await;
    assert_eq!(denied(&verdict), DenyReason::NotInRequiredGroup);
    assert_eq!(dir.stats().user_binds, 3, "cached positive bind reused");
}

#[tokio::test]
async fn credentials_over_ldaps() {
    let ad = ad_or_skip!();
    let dir = ad.directory(&ad.raw());
    credential_outcomes(&ad, &dir).await;
}

#[tokio::test]
async fn credentials_over_starttls() {
    let ad = ad_or_skip!();
    let mut raw = ad.raw();
    raw.urls = vec![ad.ldap_url.clone()];
    raw.starttls = Some(true);
    let settings = ad.settings(&raw);
    assert_eq!(
        settings.endpoints[0].transport,
        certgate::directory::Transport::StartTls
    );
    let dir = Directory::new(&settings).unwrap();
    credential_outcomes(&ad, &dir).await;
}

#[tokio::test]
async fn plaintext_needs_explicit_opt_in() {
    let ad = ad_or_skip!();
    let mut raw = ad.raw();
    raw.urls = vec![ad.ldap_url.clone()];
    let issues = DirectorySettings::from_raw(&raw, Path::new("/"), "directory").unwrap_err();
    assert_eq!(issues[0].key, "directory.urls[0]");
    raw.allow_plaintext = Some(true);
    let dir = ad.directory(&raw);
    allowed(
        &dir.check_credentials(name("alice"), &ad.user_password, &[])
            .await,
    );
}

#[tokio::test]
async fn empty_password_is_refused_without_a_bind() {
    let ad = ad_or_skip!();
    let dir = ad.directory(&ad.raw());
    let verdict = dir
        .check_credentials(name("alice"), &Secret::new(""), &[])
        .await;
    assert_eq!(denied(&verdict), DenyReason::EmptyPassword);
    assert_eq!(verdict.iis_status(), (401, 1));
    // Not even a lookup: nothing reached the directory.
    let stats = dir.stats();
    assert_eq!(
        (stats.user_binds, stats.searches, stats.connects),
        (0, 0, 0),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Failover, outages, cache

/// Accepts TCP connections and never answers: a DC that black-holes traffic.
async fn black_hole() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (port, task)
}

/// A TCP forwarder in front of the DC that can be switched off (listener and every forwarded
/// connection closed) and on again on the same port.
struct Forwarder {
    port: u16,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Forwarder {
    async fn new(target: SocketAddr) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut fwd = Self {
            port,
            target,
            task: None,
        };
        fwd.start().await;
        fwd
    }

    async fn start(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

fn ldaps_target(ad: &Ad) -> SocketAddr {
    let authority = ad.ldaps_url.trim_start_matches("ldaps://");
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:636")
    };
    authority.parse().unwrap()
}

#[tokio::test]
async fn failover_skips_a_dead_server() {
    let ad = ad_or_skip!();
    let (dead_port, hole) = black_hole().await;
    let mut raw = ad.raw();
    raw.urls = vec![
        format!("ldaps://127.0.0.1:{dead_port}"),
        ad.ldaps_url.clone(),
    ];
    raw.connect_timeout = Some(Duration::from_secs(1));
    raw.retry_dead_after = Some(Duration::from_secs(60));
    let dir = ad.directory(&raw);
    let pw = &ad.user_password;

    // First use: the service connection waits out the dead server once, then uses the second.
    let start = Instant::now();
    allowed(&dir.check_credentials(name("alice"), pw, &[]).await);
    let first = start.elapsed();
    assert!(first >= Duration::from_millis(900), "{first:?}");

    // Later connections (a user bind needs a new one each time) skip the dead server.
    let start = Instant::now();
    allowed(&dir.check_credentials(name("bob"), pw, &[]).await);
    let second = start.elapsed();
    assert!(
        second < Duration::from_millis(800),
        "dead server not skipped: {second:?}"
    );
    hole.abort();

    // A refused connection fails over at once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut raw = ad.raw();
    raw.urls = vec![format!("ldaps://127.0.0.1:{closed}"), ad.ldaps_url.clone()];
    let dir = ad.directory(&raw);
    let start = Instant::now();
    allowed(&dir.check_account(name("alice"), &[]).await);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(dir.stats().failures >= 1);
}

#[tokio::test]
async fn directory_down_then_back() {
    let ad = ad_or_skip!();
    let mut fwd = Forwarder::new(ldaps_target(&ad)).await;
    let mut raw = ad.raw();
    raw.urls = vec![format!("ldaps://127.0.0.1:{}", fwd.port)];
    raw.timeout = Some(Duration::from_secs(1));
    let dir = ad.directory(&raw);
    let pw = &ad.user_password;

    allowed(&dir.check_account(name("alice"), &[]).await);
    allowed(&dir.check_credentials(name("alice"), pw, &[]).await);

    fwd.stop().await;
    // Fresh answers are still served...
    allowed(&dir.check_account(name("alice"), &[]).await);
    allowed(&dir.check_credentials(name("alice"), pw, &[]).await);
    // ...anything else fails closed, quickly.
    let start = Instant::now();
    let verdict = dir.check_account(name("bob"), &[]).await;
    assert_eq!(verdict, Verdict::Unavailable);
    assert_eq!(verdict.iis_status(), (503, 0));
    assert_eq!(
        dir.check_credentials(name("bob"), pw, &[]).await,
        Verdict::Unavailable
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(dir.stats().failures >= 1);

    // Recovery needs nothing but the next request.
    fwd.start().await;
    allowed(&dir.check_account(name("bob"), &[]).await);
    allowed(&dir.check_credentials(name("bob"), pw, &[]).await);
    fwd.stop().await;
}

#[tokio::test]
async fn cache_entries_expire() {
    let ad = ad_or_skip!();
    let mut raw = ad.raw();
    raw.cache_ttl = Some(Duration::from_secs(1));
    raw.negative_cache_ttl = Some(Duration::from_millis(500));
    let dir = ad.directory(&raw);

    allowed(&dir.check_account(name("alice"), &[]).await);
    denied(&dir.check_account(name("carol"), &[]).await);
    allowed(&dir.check_account(name("alice"), &[]).await);
    denied(&dir.check_account(name("carol"), &[]).await);
    assert_eq!(dir.stats().loads, 2);
    assert_eq!(dir.stats().cache_hits, 2);

    // The negative answer expires first.
    tokio::time::sleep(Duration::from_millis(700)).await;
    allowed(&dir.check_account(name("alice"), &[]).await);
    denied(&dir.check_account(name("carol"), &[]).await);
    assert_eq!(dir.stats().loads, 3);

    tokio::time::sleep(Duration::from_millis(500)).await;
    allowed(&dir.check_account(name("alice"), &[]).await);
    assert_eq!(dir.stats().loads, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_checks_make_one_query() {
    let ad = ad_or_skip!();
    let dir = ad.directory(&ad.raw());
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..1000 {
        let dir = dir.clone();
        tasks.spawn(async move { dir.check_account(name("alice"), &[]).await });
    }
    while let Some(verdict) = tasks.join_next().await {
        allowed(&verdict.unwrap());
    }
    let stats = dir.stats();
    eprintln!("1000 concurrent checks in {:?}: {stats:?}", start.elapsed());
    assert_eq!(stats.loads, 1, "{stats:?}");
    // One lookup, one base read, one group resolution; one connection, one service bind.
    assert_eq!(stats.searches, 3, "{stats:?}");
    assert_eq!((stats.connects, stats.service_binds), (1, 1), "{stats:?}");
    assert_eq!(stats.cache_hits + stats.coalesced, 999, "{stats:?}");
}

// ---------------------------------------------------------------------------------------------
// Injection

#[tokio::test]
async fn injection_in_user_names() {
    let ad = ad_or_skip!();
    let dir = ad.directory(&ad.raw());
    let hostile = [
        "*",
        "al*",
        "*)(sAMAccountName=*",
        "alice)(|(sAMAccountName=*",
        "alice)(objectClass=*",
        "*)(|(objectClass=*)",
        "alice\0",
        "\0",
        "al\\2aice",
        "EXAMPLE\\*",
        "*@example.test",
        "alice@example.test)(userPrincipalName=*",
        "\\",
        "(",
        ")",
    ];
    for user in hostile {
        let verdict = dir.check_account(name(user), &[]).await;
        assert!(
            matches!(
                verdict,
                Verdict::Deny(DenyReason::NoSuchUser | DenyReason::UnsupportedName)
            ),
            "{user:?} gave {verdict:?}"
        );
        let verdict = dir
            .check_credentials(name(user), &ad.user_password, &[])
            .await;
        assert!(
            matches!(verdict, Verdict::Deny(_)),
            "{user:?} gave {verdict:?}"
        );
    }
    // No hostile name got as far as a bind, and none made the directory fail.
    let stats = dir.stats();
    assert_eq!((stats.user_binds, stats.failures), (0, 0), "{stats:?}");
}

// ---------------------------------------------------------------------------------------------
// altSecurityIdentities

#[tokio::test]
async fn altsec_strong_forms_map() {
    let ad = ad_or_skip!();
    let ca = test_ca("Strong Mapping CA");
    let certs: Vec<CertFacts> = (0..7)
        .map(|i| leaf(&ca, &format!("grace {i}"), None))
        .collect();
    let c = &certs;
    let stored = vec![
        // Microsoft's documented form: DER-order issuer, byte-reversed serial (lowercase).
        format!(
            "X509:<I>{}<SR>{}",
            c[0].issuer.to_der_order_string(),
            reversed_hex(&c[0].serial).to_lowercase()
        ),
        // Samba's tooling: CN-first issuer, big-endian serial.
        format!(
            "X509:<I>{}<SR>{}",
            cn_first(&c[1].issuer),
            hex_upper(&c[1].serial)
        ),
        format!(
            "X509:<SKI>{}",
            hex_upper(c[2].subject_key_id.as_ref().unwrap())
        ),
        format!("X509:<SHA1-PUKEY>{}", hex_upper(&sha1(&c[3].public_key))),
        format!("X509:<SHA1-PUKEY>{}", hex_upper(&sha1(&c[4].spki))),
        format!("X509:<SHA1-PUKEY>{}", c[5].thumbprint()),
        // Kerberos values share the attribute and must not confuse anything.
        format!("Kerberos:grace@{}", ad.realm.to_uppercase()),
    ];
    ad.set_altsec("grace", &stored).await;

    let dir = ad.directory(&ad.raw());
    let strong = AltSecPolicy::STRONG_ONLY;
    let forms = [
        AltSecForm::IssuerSerial,
        AltSecForm::IssuerSerial,
        AltSecForm::SubjectKeyId,
        AltSecForm::Sha1PublicKey,
        AltSecForm::Sha1PublicKey,
        AltSecForm::Sha1PublicKey,
    ];
    for (i, form) in forms.into_iter().enumerate() {
        assert_eq!(
            dir.find_by_certificate(&c[i], &strong).await,
            CertMatch::Found {
                dn: ad.dn("grace"),
                form: Some(form)
            },
            "certificate {i}"
        );
    }
    // An unmapped certificate from the same CA maps to nobody.
    assert_eq!(
        dir.find_by_certificate(&c[6], &strong).await,
        CertMatch::NotFound
    );

    // The composed IIS AD-mapper path: found, then account-checked with the site's groups.
    let site = SitePolicy::from_raw(
        Some(&RawSiteDirectory {
            verify: Some("account".into()),
            require_groups: None,
            certificate_mapping: Some(RawCertificateMapping {
                enabled: Some(true),
                weak: None,
            }),
        }),
        None,
        "site[0].directory",
    )
    .unwrap();
    let verdict = dir.authenticate_certificate(&c[0], &site).await;
    assert_eq!(allowed(&verdict).sam_account_name.as_deref(), Some("grace"));
    let verdict = dir.authenticate_certificate(&c[6], &site).await;
    assert_eq!(denied(&verdict), DenyReason::NoMapping);
    assert_eq!(verdict.iis_status(), (401, 2));
}

#[tokio::test]
async fn altsec_weak_forms_need_opt_in() {
    let ad = ad_or_skip!();
    let ca = test_ca("Weak Mapping CA");
    let upn = format!("ivan@{}", ad.realm);
    let by_name = leaf(&ca, "ivan", None);
    let by_upn = leaf(&ca, "ivan upn", Some(&upn));
    ad.set_altsec(
        "ivan",
        &[format!(
            "X509:<I>{}<S>{}",
            by_name.issuer.to_der_order_string(),
            by_name.subject.to_der_order_string()
        )],
    )
    .await;

    let dir = ad.directory(&ad.raw());
    let strong = AltSecPolicy::STRONG_ONLY;
    assert_eq!(
        dir.find_by_certificate(&by_name, &strong).await,
        CertMatch::NotFound
    );
    assert_eq!(
        dir.find_by_certificate(&by_upn, &strong).await,
        CertMatch::NotFound
    );

    let weak = AltSecPolicy {
        issuer_subject: true,
        upn: true,
        ..AltSecPolicy::STRONG_ONLY
    };
    let expect = |form| CertMatch::Found {
        dn: ad.dn("ivan"),
        form: Some(form),
    };
    assert_eq!(
        dir.find_by_certificate(&by_name, &weak).await,
        expect(AltSecForm::IssuerSubject)
    );
    assert_eq!(
        dir.find_by_certificate(&by_upn, &weak).await,
        expect(AltSecForm::Upn)
    );
    let truncated = leaf(&ca, "ivan nul", Some(&format!("{upn}\0x")));
    assert_eq!(
        dir.find_by_certificate(&truncated, &weak).await,
        CertMatch::NotFound
    );
}

#[tokio::test]
async fn altsec_ambiguous_mapping_is_denied() {
    let ad = ad_or_skip!();
    let ca = test_ca("Shared Key CA");
    let cert = leaf(&ca, "shared", None);
    let value = format!(
        "X509:<SKI>{}",
        hex_upper(cert.subject_key_id.as_ref().unwrap())
    );
    ad.set_altsec("heidi", std::slice::from_ref(&value)).await;
    ad.set_altsec("judy", &[value]).await;

    let dir = ad.directory(&ad.raw());
    assert_eq!(
        dir.find_by_certificate(&cert, &AltSecPolicy::STRONG_ONLY)
            .await,
        CertMatch::Ambiguous
    );
    let site = SitePolicy {
        certificate_mapping: Some(AltSecPolicy::STRONG_ONLY),
        ..SitePolicy::default()
    };
    let verdict = dir.authenticate_certificate(&cert, &site).await;
    assert_eq!(denied(&verdict), DenyReason::Ambiguous);
    assert_eq!(verdict.iis_status(), (401, 1));
}

#[tokio::test]
async fn altsec_injection_in_certificate_fields() {
    let ad = ad_or_skip!();
    // An issuer whose name is filter syntax: escaping must round-trip it exactly.
    let ca = test_ca("Inject *)(objectClass=*)(CA");
    let target = leaf(&ca, "mallory", None);
    let stored = [
        format!(
            "X509:<I>{}<SR>{}",
            target.issuer.to_der_order_string(),
            reversed_hex(&target.serial)
        ),
        // A weak value an unescaped `CN=*` subject would match as a substring filter.
        format!(
            "X509:<I>{}<S>O=certgate test,CN=mallory",
            target.issuer.to_der_order_string()
        ),
    ];
    ad.set_altsec("mallory", &stored).await;

    let dir = ad.directory(&ad.raw());
    let weak = AltSecPolicy {
        issuer_subject: true,
        subject: true,
        ..AltSecPolicy::STRONG_ONLY
    };
    assert_eq!(
        dir.find_by_certificate(&target, &AltSecPolicy::STRONG_ONLY)
            .await,
        CertMatch::Found {
            dn: ad.dn("mallory"),
            form: Some(AltSecForm::IssuerSerial)
        }
    );
    // Samba compares values as C strings: a NUL must not truncate `mallory\0evil` to
    // `mallory`, which would match the stored weak value.
    for cn in ["*", "mal*", "*)(cn=*", "x\\", "\0", "mallory\0evil"] {
        let attacker = leaf(&ca, cn, None);
        assert_eq!(
            dir.find_by_certificate(&attacker, &weak).await,
            CertMatch::NotFound,
            "{cn:?}"
        );
    }
    assert_eq!(dir.stats().failures, 0);
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_logs_or_errors() {
    let ad = ad_or_skip!();
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A wrong service-account password: every check fails closed, with a clear error.
    let service_marker = "Svc-Marker-7f3a9c!";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), format!("{service_marker}\n")).unwrap();
    let mut raw = ad.raw();
    raw.bind_password_env = None;
    raw.bind_password_file = Some("pw".into());
    let settings = DirectorySettings::from_raw(&raw, dir.path(), "directory").unwrap();
    let broken = Directory::new(&settings).unwrap();
    assert_eq!(
        broken.check_account(name("alice"), &[]).await,
        Verdict::Unavailable
    );
    let probe = broken.probe().await.unwrap_err().to_string();

    // A wrong user password on a working directory.
    let user_marker = Secret::new("User-Marker-42b1e0?");
    let working = ad.directory(&ad.raw());
    let verdict = working
        .check_credentials(name("bob"), &user_marker, &[])
        .await;
    assert_eq!(denied(&verdict), DenyReason::BadPassword);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("service account cannot bind"), "{text}");
    assert!(text.contains("bad_password"), "{text}");
    let everything =
        format!("{text}\n{probe}\n{settings:?}\n{broken:?}\n{working:?}\n{user_marker:?}");
    for secret in [
        service_marker,
        user_marker.expose(),
        ad.user_password.expose(),
    ] {
        assert!(!everything.contains(secret), "secret leaked:\n{everything}");
    }
}
