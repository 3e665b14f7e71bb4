//! `certgate mapping` as an administrator uses it: the real binary edits the real file of a
//! running proxy, which reloads through its admin listener, and real mTLS requests show the
//! effect. Also the admin `POST /reload` endpoint on its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use certgate::identity::CertFacts;
use certgate::pki::ClientSpec;
use support::mapping_cli::{mapping, p};
use support::{Env, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

/// One site requiring certificates; bob is mapped, alice is not. `{admin}` is replaced.
const CONFIG: &str = r#"# certgate configuration (hand-written; keep this comment)
[server]
listen = ["127.0.0.1:0"]      # an ephemeral port for the test
admin_listen = "{admin}"

[[site]]
name = "Default Web Site"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{backend}"

# The IIS mapper: bob only, for now.
[site.iis_client_certificate_mapping_authentication]
enabled    = true   # odd spacing on purpose
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\bob"
certificate_file = "bob.crt"   # bob's laptop

# Public pages.
[[site.location]]
path = "/public"
ssl_flags = "Ssl"
anonymous_authentication = true
"#;

/// A free loopback port for `admin_listen`, so the CLI finds the admin listener in the file.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(config: &str) -> Env {
    let mut spec = ClientSpec::new("alice");
    spec.organizational_units = vec!["Engineering".into()];
    spec.organization = Some("Contoso".into());
    let pki = Pki::new();
    let alice = pki.ca.client(&spec).unwrap();
    let pki = Pki { alice, ..pki };
    Env::start_with(Arc::new(pki), config).await
}

async fn start_with_admin() -> Env {
    let config = CONFIG.replace("{admin}", &format!("127.0.0.1:{}", free_port()));
    start(&config).await
}

/// The text between the common prefix and suffix of `a` and `b`: what `b` inserted into `a`
/// (`a`'s own middle must be empty, or this is not a pure insertion).
fn inserted(a: &str, b: &str) -> String {
    let prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let rest_a = &a.as_bytes()[prefix..];
    let rest_b = &b.as_bytes()[prefix..];
    let suffix = rest_a
        .iter()
        .rev()
        .zip(rest_b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    assert_eq!(
        rest_a.len(),
        suffix,
        "the edit changed existing text, not only inserted:\n--- before\n{a}\n--- after\n{b}"
    );
    String::from_utf8(rest_b[..rest_b.len() - suffix].to_vec()).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_certificate_while_the_proxy_runs_turns_401_2_into_200() {
    let env = start_with_admin().await;
    let config = env.config_path();
    let before = std::fs::read_to_string(&config).unwrap();
    let alice = env.client(Some(&env.pki.alice));
    assert_eq!(alice.get(env.addr(), "/").await.code(), "401.2");

    let alice_crt = env.dir.path().join("alice.crt");
    let run = mapping(&[
        "add",
        "-c",
        p(&config),
        "--site",
        "Default Web Site",
        "--user",
        r"EXAMPLE\alice",
        "--cert",
        p(&alice_crt),
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("the running proxy reloaded the configuration (1 site(s))"),
        "{}",
        run.stdout
    );

    let resp = alice.get(env.addr(), "/").await;
    assert_eq!(resp.code(), "200");
    assert_eq!(resp.remote_user().as_deref(), Some(r"EXAMPLE\alice"));
    // bob is untouched.
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(
        bob.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\bob")
    );

    // The file gained exactly one entry, in IIS's one-line base64 form, after bob's.
    let after = std::fs::read_to_string(&config).unwrap();
    let block = inserted(&before, &after);
    let facts = CertFacts::parse(&env.pki.alice.der).unwrap();
    assert!(block.contains(&facts.base64_der()), "{block}");
    assert!(block.contains(&facts.thumbprint()), "{block}");
    assert!(
        block
            .contains("[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]"),
        "{block}"
    );
    assert!(
        after.find("bob's laptop").unwrap() < after.find(&facts.base64_der()).unwrap()
            && after.find(&facts.base64_der()).unwrap() < after.find("# Public pages.").unwrap(),
        "{after}"
    );
    // And it is what `certgate check` accepts.
    let check = std::process::Command::new(BIN)
        .args(["check", "-c", p(&config)])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[tokio::test]
async fn every_edit_keeps_the_rest_of_the_file_byte_for_byte() {
    let env = start(&CONFIG.replace("{admin}", "127.0.0.1:0")).await;
    let config = env.config_path();
    let c = p(&config);
    let original = std::fs::read_to_string(&config).unwrap();
    let alice_crt = env.dir.path().join("alice.crt");
    let steps: &[&[&str]] = &[
        &[
            "add",
            "-c",
            c,
            "--user",
            r"EXAMPLE\alice",
            "--cert",
            p(&alice_crt),
            "--password-env",
            "ALICE_PW",
        ],
        &[
            "add-many",
            "-c",
            c,
            "--name",
            "Engineers",
            "--user",
            r"EXAMPLE\engineers",
            "--description",
            "OU=Engineering",
        ],
        &[
            "add-rule",
            "-c",
            c,
            "--mapping",
            "Engineers",
            "--sub-field",
            "OU",
            "--criteria",
            "Engineering",
        ],
        &[
            "add-rule",
            "-c",
            c,
            "--mapping",
            "Engineers",
            "--field",
            "Issuer",
            "--sub-field",
            "CN",
            "--criteria",
            "example*",
            "--case-insensitive",
        ],
    ];
    let mut texts = vec![original.clone()];
    for args in steps {
        let mut args = args.to_vec();
        args.push("--no-reload");
        let run = mapping(&args).await;
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        let now = std::fs::read_to_string(&config).unwrap();
        let block = inserted(texts.last().unwrap(), &now);
        assert!(!block.is_empty());
        texts.push(now);
    }
    let last = texts.last().unwrap();
    assert!(last.contains("password_env = \"ALICE_PW\""));
    assert!(last.contains(
        "  { certificate_field = \"Issuer\", certificate_sub_field = \"CN\", match_criteria = \"example*\", compare_case_sensitive = false },\n"
    ), "{last}");
    // Undoing each step in reverse gives back every earlier file exactly (the rules array the
    // first add-rule created stays, empty, until its mapping goes).
    let undo: &[&[&str]] = &[
        &[
            "remove-rule",
            "-c",
            c,
            "--mapping",
            "engineers",
            "--field",
            "issuer",
            "--sub-field",
            "cn",
            "--criteria",
            "example*",
        ],
        &[
            "remove-rule",
            "-c",
            c,
            "--mapping",
            "Engineers",
            "--index",
            "0",
        ],
        &["remove-many", "-c", c, "--name", "Engineers"],
        &["remove", "-c", c, "--cert", p(&alice_crt)],
    ];
    for (k, args) in undo.iter().enumerate() {
        let mut args = args.to_vec();
        args.push("--no-reload");
        let run = mapping(&args).await;
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        let now = std::fs::read_to_string(&config).unwrap();
        let expected = &texts[texts.len() - 2 - k];
        if k == 1 {
            // `rules = [\n]` is left where the first rule was created.
            assert_eq!(inserted(expected, &now), "rules = [\n]\n", "{now}");
        } else {
            assert_eq!(&now, expected, "after {args:?}");
        }
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    assert_eq!(
        files_in(env.dir.path())
            .iter()
            .filter(|n| n.starts_with('.'))
            .count(),
        0
    );
}

#[tokio::test]
async fn bad_edits_are_refused_with_checks_messages_and_the_file_is_untouched() {
    let env = start(&CONFIG.replace("{admin}", "127.0.0.1:0")).await;
    let config = env.config_path();
    let c = p(&config);
    let original = std::fs::read(&config).unwrap();
    let listing = files_in(env.dir.path());
    let bob_crt = env.dir.path().join("bob.crt");
    let key = env.dir.path().join("server.key");

    // Mapping bob's certificate twice: IIS's duplicate collection key, in `check`'s words.
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        r"EXAMPLE\bob2",
        "--cert",
        p(&bob_crt),
    ])
    .await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let expected_key =
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[1]";
    assert!(
        run.stderr.contains(&format!(
            "error: {c}: {expected_key}: the same certificate is already mapped by \
             site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0]"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the edit was refused and the file is unchanged")
    );
    // `check` on the same mistake made by hand says the same thing.
    let by_hand = env.dir.path().join("by-hand.toml");
    let text = String::from_utf8(original.clone()).unwrap().replace(
        "certificate_file = \"bob.crt\"   # bob's laptop\n",
        "certificate_file = \"bob.crt\"\n\
         [[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
         user_name = \"EXAMPLE\\\\bob2\"\ncertificate_file = \"bob.crt\"\n",
    );
    std::fs::write(&by_hand, text).unwrap();
    let check = std::process::Command::new(BIN)
        .args(["check", "-c", p(&by_hand)])
        .output()
        .unwrap();
    std::fs::remove_file(&by_hand).unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    let reason = |s: &str| {
        s.lines()
            .find(|l| l.contains(expected_key))
            .and_then(|l| l.split_once(expected_key).map(|(_, r)| r.to_owned()))
    };
    assert_eq!(reason(&check_err), reason(&run.stderr), "{check_err}");

    // An unknown site, a file that is not a certificate, a rule the loader rejects.
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--site",
        "Intranet",
        "--user",
        "x",
        "--cert",
        p(&bob_crt),
    ])
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no [[site]] is named `Intranet` (sites: `Default Web Site`)"),
        "{}",
        run.stderr
    );
    let run = mapping(&["add", "-c", c, "--user", "x", "--cert", p(&key)]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("server.key: not a certificate"),
        "{}",
        run.stderr
    );
    let run = mapping(&[
        "add-many",
        "-c",
        c,
        "--name",
        "X",
        "--user",
        "x",
        "--permission",
        "Maybe",
    ])
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("many_to_one_mappings[0].permission_mode"),
        "{}",
        run.stderr
    );
    let run = mapping(&["remove", "-c", c, "--user", r"EXAMPLE\nobody"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(r"no one-to-one mapping in Default Web Site is for `EXAMPLE\nobody`")
    );
    // A location without its own mapper section: adding there would hide the site's mappings.
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--location",
        "/public",
        "--user",
        "x",
        "--cert",
        p(&bob_crt),
    ])
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "has no [site.location.iis_client_certificate_mapping_authentication] section"
        ),
        "{}",
        run.stderr
    );

    assert_eq!(std::fs::read(&config).unwrap(), original);
    assert_eq!(files_in(env.dir.path()), listing);
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_and_enable_take_effect_in_the_running_proxy() {
    let env = start_with_admin().await;
    let c = env.config_path();
    let c = p(&c);
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(bob.get(env.addr(), "/").await.code(), "200");

    let run = mapping(&["disable", "-c", c, "--user", r"example\BOB"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(r"one-to-one mapping [0] (EXAMPLE\bob) in Default Web Site is now disabled"),
        "{}",
        run.stdout
    );
    assert_eq!(bob.get(env.addr(), "/").await.code(), "401.2");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        text.contains("certificate_file = \"bob.crt\"   # bob's laptop\nenabled = false\n"),
        "{text}"
    );

    // Doing it again changes nothing and reloads nothing.
    let run = mapping(&["disable", "-c", c, "--user", r"EXAMPLE\bob"]).await;
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("was already disabled"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(env.config_path()).unwrap(), text);

    let bob_crt = env.dir.path().join("bob.crt");
    let run = mapping(&["enable", "-c", c, "--cert", p(&bob_crt)]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        bob.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\bob")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_to_one_mapping_and_rules_while_the_proxy_runs() {
    let env = start_with_admin().await;
    let c = env.config_path();
    let c = p(&c);
    let alice = env.client(Some(&env.pki.alice));
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(alice.get(env.addr(), "/").await.code(), "401.2");

    let run = mapping(&[
        "add-many",
        "-c",
        c,
        "--name",
        "Engineers",
        "--user",
        r"EXAMPLE\engineers",
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("has no rules and never matches"),
        "{}",
        run.stdout
    );
    assert_eq!(alice.get(env.addr(), "/").await.code(), "401.2");

    let run = mapping(&[
        "add-rule",
        "-c",
        c,
        "--mapping",
        "Engineers",
        "--field",
        "Subject",
        "--sub-field",
        "OU",
        "--criteria",
        "engineer*",
        "--case-insensitive",
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        alice.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\engineers")
    );
    // bob has no OU; his one-to-one mapping still wins for him.
    assert_eq!(
        bob.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\bob")
    );

    // A Deny mapping put first (IIS -AtIndex 0) answers 403.12.
    let run = mapping(&[
        "add-many",
        "-c",
        c,
        "--name",
        "No alice",
        "--permission",
        "Deny",
        "--user",
        "nobody",
        "--at-index",
        "0",
        "--no-reload",
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = mapping(&[
        "add-rule",
        "-c",
        c,
        "--mapping",
        "No alice",
        "--sub-field",
        "CN",
        "--criteria",
        "alice",
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(alice.get(env.addr(), "/").await.code(), "403.12");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(text.find("name = \"No alice\"").unwrap() < text.find("name = \"Engineers\"").unwrap());

    let run = mapping(&["disable", "-c", c, "--name", "no ALICE"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(alice.get(env.addr(), "/").await.code(), "200");
}

#[tokio::test]
async fn list_json_describes_every_mapping_without_secrets() {
    let extra = r#"
[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Engineers"
permission_mode = "Allow"
user_name = "EXAMPLE\\engineers"
password_env = "ENGINEERS_PASSWORD"
rules = [
  { certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Engineering", compare_case_sensitive = false },
]
"#;
    let config = CONFIG
        .replace("{admin}", "127.0.0.1:0")
        .replace("\n# Public pages.", &format!("{extra}\n# Public pages."));
    let env = start(&config).await;
    let c = env.config_path();
    let c = p(&c);
    let alice_crt = env.dir.path().join("alice.crt");
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        r"EXAMPLE\alice",
        "--cert",
        p(&alice_crt),
        "--disabled",
        "--password-env",
        "ALICE_PASSWORD",
        "--no-reload",
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    let run = mapping(&["list", "-c", c, "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let scopes = json["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 2, "the site and its /public location");
    let site = &scopes[0];
    assert_eq!(site["site"], "Default Web Site");
    assert_eq!(site["enabled"], true);
    let one = site["one_to_one"].as_array().unwrap();
    assert_eq!(one.len(), 2);
    let bob = CertFacts::parse(&env.pki.bob.der).unwrap();
    let alice = CertFacts::parse(&env.pki.alice.der).unwrap();
    assert_eq!(one[0]["user_name"], r"EXAMPLE\bob");
    assert_eq!(one[0]["enabled"], true);
    assert_eq!(one[0]["source"]["file"], "bob.crt");
    assert_eq!(
        one[0]["certificate"]["thumbprint"],
        bob.thumbprint().as_str()
    );
    assert_eq!(one[1]["user_name"], r"EXAMPLE\alice");
    assert_eq!(one[1]["enabled"], false);
    assert_eq!(one[1]["source"], "inline");
    assert_eq!(
        one[1]["certificate"]["subject"],
        alice.subject.to_string().as_str()
    );
    assert_eq!(
        one[1]["certificate"]["thumbprint"],
        alice.thumbprint().as_str()
    );
    assert_eq!(one[1]["password"]["env"], "ALICE_PASSWORD");
    let many = site["many_to_one"].as_array().unwrap();
    assert_eq!(many[0]["name"], "Engineers");
    assert_eq!(many[0]["password"]["env"], "ENGINEERS_PASSWORD");
    assert_eq!(many[0]["rules"][0]["certificate_sub_field"], "OU");
    assert_eq!(many[0]["rules"][0]["compare_case_sensitive"], false);
    assert_eq!(scopes[1]["location"], "/public");
    assert_eq!(scopes[1]["has_mapper_section"], false);
    // Certificates are described, never dumped.
    assert!(!run.stdout.contains(&alice.base64_der()[..40]));

    let run = mapping(&["list", "-c", c]).await;
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains(r"one-to-one [1] EXAMPLE\alice DISABLED"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("rule [0] Subject OU = \"Engineering\" (case-insensitive)"),
        "{}",
        run.stdout
    );
}

/// One request to the admin listener; the whole answer.
async fn admin(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    (status, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_endpoint_answers_with_checks_errors_and_keeps_serving() {
    let env = start(&CONFIG.replace("{admin}", "127.0.0.1:0")).await;
    let addr = env.server.admin_addr.unwrap();
    let bob = env.client(Some(&env.pki.bob));
    let config = env.config_path();
    let good = std::fs::read_to_string(&config).unwrap();

    assert_eq!(admin(addr, "GET /reload HTTP/1.1").await.0, 405);
    let (status, body) = admin(addr, "POST /reload HTTP/1.1").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("configuration reloaded: 1 site(s)\n"),
        "{body}"
    );

    // A broken file: every error, in `check`'s words, and the old configuration keeps serving.
    std::fs::write(
        &config,
        good.replace(
            "client_ca = [\"ca.crt\"]",
            "client_ca = [\"missing-ca.crt\"]",
        )
        .replace("ssl_flags = \"Ssl\"\n", "ssl_flags = \"Sometimes\"\n"),
    )
    .unwrap();
    let (status, body) = admin(addr, "POST /reload HTTP/1.1").await;
    assert_eq!(status, 422, "{body}");
    let c = config.display().to_string();
    assert!(
        body.contains(&format!("error: {c}: site[0].client_ca[0]: ")),
        "{body}"
    );
    assert!(
        body.contains(&format!("error: {c}: site[0].location[0].ssl_flags: ")),
        "{body}"
    );
    assert!(
        body.contains(
            "configuration rejected (2 error(s)); still serving the previous configuration"
        ),
        "{body}"
    );
    let (status, body) = admin(addr, "POST /reload?format=json HTTP/1.1").await;
    assert_eq!(status, 422);
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["result"], "rejected");
    let keys: Vec<&str> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"site[0].client_ca[0]"), "{keys:?}");
    assert_eq!(
        bob.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\bob")
    );

    // The CLI reports the proxy's refusal (here the proxy's own file is broken) and exits 3.
    let other = tempfile::tempdir().unwrap();
    for name in ["ca.crt", "server.crt", "server.key", "bob.crt", "alice.crt"] {
        std::fs::copy(env.dir.path().join(name), other.path().join(name)).unwrap();
    }
    let other_config = other.path().join("certgate.toml");
    std::fs::write(&other_config, &good).unwrap();
    let run = mapping(&[
        "add",
        "-c",
        p(&other_config),
        "--user",
        "x",
        "--cert",
        p(&other.path().join("alice.crt")),
        "--admin-url",
        &format!("http://{addr}"),
    ])
    .await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("error: {c}: site[0].client_ca[0]: ")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the running proxy rejected the configuration"),
        "{}",
        run.stderr
    );
    // Nobody listening: written, not reloaded, exit 3.
    let run = mapping(&[
        "remove",
        "-c",
        p(&other_config),
        "--user",
        "x",
        "--admin-url",
        &format!("http://127.0.0.1:{}", free_port()),
    ])
    .await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cannot ask the proxy to reload"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&other_config).unwrap(), good);

    // A web page elsewhere cannot make a browser reload the proxy.
    let (status, _) = admin(addr, "POST /reload HTTP/1.1\r\nOrigin: http://evil.example").await;
    assert_eq!(status, 403);

    std::fs::write(&config, &good).unwrap();
    assert_eq!(admin(addr, "POST /reload HTTP/1.1").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locations_own_mapper_section_and_rules_written_as_tables() {
    // The shape `import-iis` writes: rules as [[...rules]] tables, a location with its own
    // mapper section (which replaces the site's there).
    let extra = r#"
[[site.location]]
path = "/admin"
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"

[site.location.iis_client_certificate_mapping_authentication]
enabled = true

[[site.location.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Admins"
user_name = "EXAMPLE\\admins"

[[site.location.iis_client_certificate_mapping_authentication.many_to_one_mappings.rules]]
certificate_field = "Subject"
certificate_sub_field = "O"
match_criteria = "Contoso"
compare_case_sensitive = true
"#;
    let config = format!(
        "{}{extra}",
        CONFIG.replace("{admin}", &format!("127.0.0.1:{}", free_port()))
    );
    let env = start(&config).await;
    let c = env.config_path();
    let c = p(&c);
    let alice = env.client(Some(&env.pki.alice));
    let get = |path: &'static str| {
        let alice = alice.clone();
        let addr = env.addr();
        async move { alice.get(addr, path).await }
    };
    assert_eq!(
        get("/admin/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\admins")
    );

    // A second rule, AND-ed: alice's OU is Engineering, not Security.
    let before = std::fs::read_to_string(env.config_path()).unwrap();
    let run = mapping(&[
        "add-rule",
        "-c",
        c,
        "--location",
        "/ADMIN/",
        "--mapping",
        "admins",
        "--sub-field",
        "OU",
        "--criteria",
        "Security",
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let after = std::fs::read_to_string(env.config_path()).unwrap();
    let block = inserted(&before, &after);
    assert!(
        block.contains(
            "[[site.location.iis_client_certificate_mapping_authentication.many_to_one_mappings.rules]]\n"
        ),
        "{block}"
    );
    assert!(
        after.ends_with("match_criteria = \"Security\"\ncompare_case_sensitive = true\n"),
        "{after}"
    );
    assert_eq!(get("/admin/").await.code(), "401.2");

    // A one-to-one entry for the location only; the site root is unchanged for alice.
    let alice_crt = env.dir.path().join("alice.crt");
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--location",
        "/admin",
        "--user",
        r"EXAMPLE\alice-admin",
        "--cert",
        p(&alice_crt),
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        get("/admin/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\alice-admin")
    );
    assert_eq!(get("/").await.code(), "401.2");

    let run = mapping(&[
        "list",
        "-c",
        c,
        "--location",
        "/admin",
        "--site",
        "Default Web Site",
        "--json",
    ])
    .await;
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let scope = &json["scopes"][0];
    assert_eq!(scope["location"], "/admin");
    assert_eq!(scope["one_to_one"][0]["user_name"], r"EXAMPLE\alice-admin");
    assert_eq!(
        scope["many_to_one"][0]["rules"].as_array().unwrap().len(),
        2
    );
}
