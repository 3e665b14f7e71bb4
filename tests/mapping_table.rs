//! The one-to-one mapping table (`one_to_one_mappings_file`): a request mapped through it over
//! real TLS, its errors as `certgate check` shows them, hot reload of the table under a running
//! proxy, and `import-iis` writing a table that maps the same users.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certgate::config::{ConfigError, Runtime};
use certgate::pki::Issued;
use certgate::tls::server::ResumptionKeys;
use support::{BASIC, Env, Pki};

/// BASIC with alice's inline entry replaced by a mapping table.
fn with_table(extra: &str) -> String {
    BASIC.replace(
        "[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
         user_name = \"EXAMPLE\\\\alice\"\ncertificate_file = \"alice.crt\"\nenabled = true\n",
        &format!("one_to_one_mappings_file = \"mappings.csv\"\n{extra}"),
    )
}

fn b64(issued: &Issued) -> String {
    STANDARD.encode(issued.der.as_ref())
}

/// A table as `Export-Csv -NoTypeInformation` writes it.
fn table(rows: &[(&str, &Issued, bool)]) -> String {
    let mut text = String::from("\"userName\",\"certificate\",\"enabled\"\r\n");
    for (user, cert, enabled) in rows {
        let enabled = if *enabled { "True" } else { "False" };
        text.push_str(&format!("\"{user}\",\"{}\",\"{enabled}\"\r\n", b64(cert)));
    }
    text
}

fn staged(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// Replaces a file the way editors and Kubernetes do: write aside, rename over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_request_is_mapped_through_the_table_over_tls() {
    let pki = Arc::new(Pki::new());
    let csv = table(&[
        ("EXAMPLE\\alice", &pki.alice, true),
        ("EXAMPLE\\bob", &pki.bob, false),
    ]);
    let files = staged(&[("mappings.csv", &csv)]);
    let env = Env::start_staged(Arc::clone(&pki), &with_table(""), files.path()).await;

    let alice = env.client(Some(&pki.alice)).get(env.addr(), "/").await;
    assert_eq!(alice.status, 200, "{}", alice.text());
    assert_eq!(alice.remote_user().as_deref(), Some("EXAMPLE\\alice"));
    // A disabled row maps nobody: 401.1 as in IIS.
    let bob = env.client(Some(&pki.bob)).get(env.addr(), "/").await;
    assert_eq!(bob.status, 401);
}

#[tokio::test]
async fn inline_entries_and_table_rows_combine_and_duplicates_across_them_are_errors() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let inline = "[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
                  user_name = \"EXAMPLE\\\\bob\"\ncertificate_file = \"bob.crt\"\n";
    std::fs::write(
        dir.path().join("mappings.csv"),
        table(&[("EXAMPLE\\alice", &pki.alice, true)]),
    )
    .unwrap();
    let runtime = load(dir.path(), &with_table(inline)).unwrap();
    let index = &runtime.sites[0].root_scope().mapper.one_to_one;
    assert_eq!(index.len(), 2);
    let alice = index
        .lookup(&certgate::identity::sha256(pki.alice.der.as_ref()))
        .unwrap();
    assert_eq!(alice.source.to_string(), "mappings.csv line 2");

    // bob in the table as well: the row is the duplicate, named by file and line.
    std::fs::write(
        dir.path().join("mappings.csv"),
        table(&[
            ("EXAMPLE\\alice", &pki.alice, true),
            ("EXAMPLE\\bob2", &pki.bob, true),
        ]),
    )
    .unwrap();
    let errors = load(dir.path(), &with_table(inline)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].file.ends_with("mappings.csv"));
    assert_eq!(errors[0].key, "line 3");
    assert!(
        errors[0].reason.contains(
            "already mapped by site[0].iis_client_certificate_mapping_authentication.\
             one_to_one_mappings[0]"
        ),
        "{}",
        errors[0]
    );
}

fn load(dir: &Path, text: &str) -> Result<Runtime, Vec<ConfigError>> {
    let path = dir.join("certgate.toml");
    std::fs::write(&path, text.replace("{backend}", "127.0.0.1:9")).unwrap();
    Runtime::load(&path, &ResumptionKeys::default()).map_err(|e| e.0)
}

#[test]
fn table_errors_name_the_file_line_and_column_all_at_once() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let (good, bob) = (b64(&pki.alice), b64(&pki.bob));
    std::fs::write(
        dir.path().join("mappings.csv"),
        format!(
            "userName,certificate,enabled\nalice,{good},true\nbob,not-base64!,true\n\
             carol,{good},true\ndave,{good}\nerin,{bob},maybe\n"
        ),
    )
    .unwrap();
    let errors = load(dir.path(), &with_table("")).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 4, "{shown:#?}");
    assert!(errors.iter().all(|e| e.file.ends_with("mappings.csv")));
    assert!(shown[0].contains("mappings.csv: line 3, column 2 (certificate): not valid base64"));
    assert!(
        shown[1].contains(
            "mappings.csv: line 4: the same certificate is already mapped by mappings.csv line 2"
        ),
        "{}",
        shown[1]
    );
    assert!(shown[2].contains("mappings.csv: line 5: 2 fields, but the header has 3 columns"));
    assert!(shown[3].contains("mappings.csv: line 6, column 3 (enabled): `maybe`"));

    // A missing table is an error at the key that names it.
    std::fs::remove_file(dir.path().join("mappings.csv")).unwrap();
    let errors = load(dir.path(), &with_table("")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].key,
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings_file"
    );
    assert!(errors[0].reason.contains("cannot read"), "{}", errors[0]);

    // `certgate check` prints them and fails.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["check", "-c"])
        .arg(dir.path().join("certgate.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("one_to_one_mappings_file"), "{stderr}");
}

#[test]
fn a_location_can_have_its_own_table() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    std::fs::write(
        dir.path().join("mappings.csv"),
        table(&[("EXAMPLE\\alice", &pki.alice, true)]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("admins.csv"),
        table(&[("EXAMPLE\\bob", &pki.bob, true)]),
    )
    .unwrap();
    let config = with_table(
        "\n[[site.location]]\npath = \"/admin\"\n\
         [site.location.iis_client_certificate_mapping_authentication]\nenabled = true\n\
         one_to_one_mappings_file = \"admins.csv\"\n",
    );
    let runtime = load(dir.path(), &config).unwrap();
    let site = &runtime.sites[0];
    let admin = site.scope_for("/admin");
    assert_eq!(admin.path, "/admin");
    assert_eq!(admin.mapper.one_to_one.len(), 1);
    let bob = certgate::identity::sha256(pki.bob.der.as_ref());
    assert!(admin.mapper.one_to_one.lookup(&bob).is_some());
    assert!(site.root_scope().mapper.one_to_one.lookup(&bob).is_none());
    // Both tables are watched.
    for name in ["mappings.csv", "admins.csv"] {
        assert!(runtime.files.iter().any(|f| f.ends_with(name)), "{name}");
    }
}

#[tokio::test]
async fn editing_the_table_reloads_it_and_a_bad_edit_keeps_the_old_one() {
    let pki = Arc::new(Pki::new());
    let files = staged(&[(
        "mappings.csv",
        &table(&[("EXAMPLE\\alice", &pki.alice, true)]),
    )]);
    let config = with_table("").replace(
        "backend_response_timeout = \"1s\"",
        "backend_response_timeout = \"1s\"\nwatch = true\nwatch_interval = \"100ms\"",
    );
    let env = Arc::new(Env::start_staged(Arc::clone(&pki), &config, files.path()).await);
    let watcher = {
        let env = Arc::clone(&env);
        tokio::spawn(async move { env.server.watch(env.config_path()).await })
    };
    let csv = env.dir.path().join("mappings.csv");
    let bob = env.client(Some(&pki.bob));
    let alice = env.client(Some(&pki.alice));
    assert_eq!(bob.get(env.addr(), "/").await.status, 401);

    // Add bob: he maps once the watcher has reloaded.
    replace(
        &csv,
        &table(&[
            ("EXAMPLE\\alice", &pki.alice, true),
            ("EXAMPLE\\bob", &pki.bob, true),
        ]),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = bob.get(env.addr(), "/").await;
        if resp.status == 200 {
            assert_eq!(resp.remote_user().as_deref(), Some("EXAMPLE\\bob"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the table change was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken edit (bob's certificate cut short, alice removed) is refused: both still map.
    let mut broken = table(&[("EXAMPLE\\bob", &pki.bob, true)]);
    broken.truncate(broken.len() - 30);
    broken.push_str("\"\r\n");
    replace(&csv, &broken);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(alice.get(env.addr(), "/").await.status, 200);
    assert_eq!(bob.get(env.addr(), "/").await.status, 200);

    // Fixing it is picked up again: alice is gone.
    replace(&csv, &table(&[("EXAMPLE\\bob", &pki.bob, true)]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while alice.get(env.addr(), "/").await.status != 401 {
        assert!(
            Instant::now() < deadline,
            "the fixed table was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bob.get(env.addr(), "/").await.status, 200);
    watcher.abort();
}

/// An IIS configuration with one-to-one mappings at the site and at a location.
fn application_host(pki: &Pki) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <sites>
      <site name="Contoso" id="2">
        <bindings>
          <binding protocol="https" bindingInformation="*:443:localhost" sslFlags="1" />
        </bindings>
      </site>
    </sites>
  </system.applicationHost>
  <location path="Contoso">
    <system.webServer>
      <security>
        <access sslFlags="Ssl, SslNegotiateCert, SslRequireCert" />
        <authentication>
          <anonymousAuthentication enabled="false" />
          <iisClientCertificateMappingAuthentication enabled="true">
            <oneToOneMappings>
              <add userName="CONTOSO\alice" certificate="{alice}" />
              <add userName="CONTOSO\bob" enabled="false" certificate="{bob}" />
            </oneToOneMappings>
          </iisClientCertificateMappingAuthentication>
        </authentication>
      </security>
    </system.webServer>
  </location>
  <location path="Contoso/admin">
    <system.webServer>
      <security>
        <authentication>
          <iisClientCertificateMappingAuthentication enabled="true">
            <oneToOneMappings>
              <clear />
              <add userName="CONTOSO\bob-admin" certificate="{bob}" />
            </oneToOneMappings>
          </iisClientCertificateMappingAuthentication>
        </authentication>
      </security>
    </system.webServer>
  </location>
</configuration>
"#,
        alice = b64(&pki.alice),
        bob = b64(&pki.bob),
    )
}

/// Runs `certgate import-iis` into `dir`; returns the TOML text.
fn import_iis(dir: &Path, app_host: &Path, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .arg("import-iis")
        .arg(app_host)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--certificate",
            "server.crt",
            "--private-key",
            "server.key",
            "--client-ca",
            "ca.crt",
            "--backend",
            "http://{backend}",
            "-o",
        ])
        .arg(dir.join("certgate.toml"))
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    std::fs::read_to_string(dir.join("certgate.toml")).unwrap()
}

#[tokio::test]
async fn import_iis_writes_tables_that_map_the_same_as_inline_mappings() {
    let pki = Arc::new(Pki::new());
    let work = tempfile::tempdir().unwrap();
    let app_host = work.path().join("applicationHost.config");
    std::fs::write(&app_host, application_host(&pki)).unwrap();

    let inline_dir = tempfile::tempdir().unwrap();
    let inline = import_iis(inline_dir.path(), &app_host, &[]);
    assert!(!inline.contains("one_to_one_mappings_file"), "{inline}");

    let table_dir = tempfile::tempdir().unwrap();
    let csv = table_dir.path().join("mappings.csv");
    let tabled = import_iis(
        table_dir.path(),
        &app_host,
        &["--mappings-file", csv.to_str().unwrap()],
    );
    // Next to the TOML, so named relative to it; the location's table is numbered.
    assert!(
        tabled.contains("one_to_one_mappings_file = \"mappings.csv\""),
        "{tabled}"
    );
    assert!(
        tabled.contains("one_to_one_mappings_file = \"mappings-2.csv\""),
        "{tabled}"
    );
    assert!(
        !tabled
            .contains("[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]")
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("\"userName\",\"certificate\",\"enabled\"\r\n"),
        "{text}"
    );
    assert!(text.contains("\"CONTOSO\\bob\","), "{text}");
    std::fs::remove_file(table_dir.path().join("certgate.toml")).unwrap();

    let from_inline = Env::start_with(Arc::clone(&pki), &inline).await;
    let from_table = Env::start_staged(Arc::clone(&pki), &tabled, table_dir.path()).await;
    let mut answers = Vec::new();
    for (who, identity) in [("alice", &pki.alice), ("bob", &pki.bob)] {
        for path in ["/", "/admin/x"] {
            let mut seen = Vec::new();
            for env in [&from_inline, &from_table] {
                let resp = env.client(Some(identity)).get(env.addr(), path).await;
                seen.push((resp.status, resp.remote_user()));
            }
            assert_eq!(seen[0], seen[1], "{who} {path}: table vs inline");
            answers.push(seen.remove(0));
        }
    }
    // Not trivially uniform: alice maps at the root only, bob (disabled there) at /admin only.
    assert_eq!(
        answers,
        [
            (200, Some("CONTOSO\\alice".to_owned())),
            (401, None),
            (401, None),
            (200, Some("CONTOSO\\bob-admin".to_owned())),
        ]
    );
}
