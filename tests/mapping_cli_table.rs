//! `certgate mapping` on a site that keeps its one-to-one mappings in a mapping table
//! (`one_to_one_mappings_file`): the real binary edits the real CSV file of a running proxy,
//! which reloads through its admin listener, and real mTLS requests show the effect.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use certgate::identity::CertFacts;
use support::mapping_cli::{mapping, p};
use support::{Env, Pki};

const CONFIG: &str = r#"# certgate configuration; the mappings are in mappings.csv
[server]
listen = ["127.0.0.1:0"]
admin_listen = "{admin}"

[[site]]
name = "Default Web Site"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true
one_to_one_mappings_file = "mappings.csv"   # written by import-iis --mappings-file
"#;

/// What `Export-Csv -NoTypeInformation` would write for bob, with a Windows PowerShell
/// `#TYPE` line: the edits must keep all of it.
fn table(bob: &str) -> String {
    format!(
        "#TYPE Selected.Microsoft.IIs.PowerShell.Framework.ConfigurationElement\r\n\
         \"userName\",\"certificate\",\"enabled\"\r\n\
         \"EXAMPLE\\bob\",\"{bob}\",\"True\"\r\n"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(admin: &str) -> (Env, String) {
    let pki = Pki::new();
    let bob = CertFacts::parse(&pki.bob.der).unwrap().base64_der();
    let staged = tempfile::tempdir().unwrap();
    let original = table(&bob);
    std::fs::write(staged.path().join("mappings.csv"), &original).unwrap();
    let env = Env::start_staged(
        Arc::new(pki),
        &CONFIG.replace("{admin}", admin),
        staged.path(),
    )
    .await;
    (env, original)
}

#[tokio::test(flavor = "multi_thread")]
async fn add_disable_enable_list_remove_edit_the_table_and_the_running_proxy_follows() {
    let (env, original) = start(&format!("127.0.0.1:{}", free_port())).await;
    let config = env.config_path();
    let c = p(&config);
    let csv = env.dir.path().join("mappings.csv");
    let toml_before = std::fs::read(&config).unwrap();
    let alice_crt = env.dir.path().join("alice.crt");
    let alice = env.client(Some(&env.pki.alice));
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(alice.get(env.addr(), "/").await.code(), "401.2");
    assert_eq!(
        bob.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\bob")
    );
    std::fs::set_permissions(&csv, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();

    // add: one row appended in the file's own style; the rest byte for byte.
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        r"EXAMPLE\alice",
        "--cert",
        p(&alice_crt),
    ])
    .await;
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("mappings.csv line 4"), "{run}");
    assert!(
        run.stdout
            .contains("the running proxy reloaded the configuration (1 site(s))"),
        "{run}"
    );
    let alice_b64 = CertFacts::parse(&env.pki.alice.der).unwrap().base64_der();
    let added = format!("{original}\"EXAMPLE\\alice\",\"{alice_b64}\",\"True\"\r\n");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), added);
    assert_eq!(
        std::fs::read(&config).unwrap(),
        toml_before,
        "the TOML is not touched"
    );
    let mode = std::fs::metadata(&csv).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o640,
        "the table keeps its permissions"
    );
    let resp = alice.get(env.addr(), "/").await;
    assert_eq!(resp.code(), "200");
    assert_eq!(resp.remote_user().as_deref(), Some(r"EXAMPLE\alice"));

    // disable: only that row's `enabled` field changes.
    let run = mapping(&["disable", "-c", c, "--user", r"example\ALICE"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        added.replace(
            &format!("{alice_b64}\",\"True\""),
            &format!("{alice_b64}\",\"False\"")
        )
    );
    assert_eq!(alice.get(env.addr(), "/").await.code(), "401.2");

    // list shows the rows with their table line, as the administrator knows them.
    let run = mapping(&["list", "-c", c, "--json"]).await;
    assert_eq!(run.code, 0, "{run}");
    let listing: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = listing["scopes"][0]["one_to_one"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listing:#}");
    assert_eq!(rows[1]["user_name"], r"EXAMPLE\alice");
    assert_eq!(rows[1]["enabled"], false);
    assert_eq!(rows[1]["source"]["table"], "mappings.csv");
    assert_eq!(rows[1]["source"]["line"], 4);
    assert_eq!(
        rows[1]["certificate"]["thumbprint"],
        CertFacts::parse(&env.pki.alice.der).unwrap().thumbprint()
    );
    let run = mapping(&["list", "-c", c]).await;
    assert!(
        run.stdout
            .contains(r"one-to-one [1] EXAMPLE\alice DISABLED (mappings.csv line 4)"),
        "{run}"
    );

    // enable, by certificate.
    let run = mapping(&["enable", "-c", c, "--cert", p(&alice_crt)]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), added);
    assert_eq!(alice.get(env.addr(), "/").await.code(), "200");
    let run = mapping(&["enable", "-c", c, "--cert", p(&alice_crt)]).await;
    assert!(run.stdout.contains("was already enabled"), "{run}");

    // remove: the table is what it was before the add, byte for byte.
    let run = mapping(&["remove", "-c", c, "--user", r"EXAMPLE\alice"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), original);
    assert_eq!(alice.get(env.addr(), "/").await.code(), "401.2");
    assert_eq!(
        bob.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\bob")
    );
    // No temporary files left next to the table.
    let mut names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test]
async fn bad_table_edits_are_refused_with_the_loader_messages_and_the_file_untouched() {
    let (env, original) = start("127.0.0.1:0").await;
    let config = env.config_path();
    let c = p(&config);
    let csv = env.dir.path().join("mappings.csv");

    // A certificate already mapped (IIS: duplicate collection key).
    let bob_crt = env.dir.path().join("bob.crt");
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        r"EXAMPLE\eve",
        "--cert",
        p(&bob_crt),
        "--no-reload",
    ])
    .await;
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "error: {}: line 4: the same certificate is already mapped by mappings.csv line 3 \
             (IIS: duplicate collection key)",
            csv.display()
        )),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("the edit was refused and the file is unchanged"),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), original);

    // A row the loader refuses: no user.
    let alice_crt = env.dir.path().join("alice.crt");
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        "",
        "--cert",
        p(&alice_crt),
        "--no-reload",
    ])
    .await;
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "error: {}: line 4, column 1 (userName): the mapping names no user",
            csv.display()
        )),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), original);

    // A password file cannot live in a table.
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        "x",
        "--cert",
        p(&alice_crt),
        "--password-file",
        "pw",
        "--no-reload",
    ])
    .await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("--password-env"), "{run}");

    // Nothing maps alice: nothing to remove.
    let run = mapping(&["remove", "-c", c, "--cert", p(&alice_crt), "--no-reload"]).await;
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains(
            "no one-to-one mapping in Default Web Site (mappings.csv or the configuration) maps \
             this certificate"
        ),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), original);

    // A mapping added where the mapper is off is written, with a note saying it is not used.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("enabled = true", "enabled = false", 1),
    )
    .unwrap();
    let run = mapping(&[
        "add",
        "-c",
        c,
        "--user",
        r"EXAMPLElice",
        "--cert",
        p(&alice_crt),
        "--no-reload",
    ])
    .await;
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("note: the mapper section is not enabled"),
        "{run}"
    );
}
