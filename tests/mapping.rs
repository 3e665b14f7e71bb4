//! IIS mapping semantics end to end: many-to-one through the proxy, `import-iis` output that
//! behaves like a hand-written config, and `explain` reaching the proxy's decision.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use certgate::iis_import::{ImportOptions, import, to_toml};
use certgate::pki::{ClientSpec, Issued};
use http::Request;
use support::{Env, Pki};

/// Certificates with the OUs the many-to-one rules look at.
struct People {
    security: Issued,
    contractor: Issued,
    sales: Issued,
    two_ous: Issued,
}

fn people(pki: &Pki) -> People {
    let make = |cn: &str, ous: &[&str], o: &str| {
        let mut spec = ClientSpec::new(cn);
        spec.organizational_units = ous.iter().map(|s| (*s).to_owned()).collect();
        spec.organization = Some(o.to_owned());
        pki.ca.client(&spec).unwrap()
    };
    People {
        security: make("sam", &["Security"], "Contoso"),
        contractor: make("carl", &["Contractors"], "Contoso"),
        sales: make("sally", &["Sales"], "Contoso"),
        two_ous: make("tess", &["Sales", "Security"], "Contoso"),
    }
}

const MANY_TO_ONE: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[[site]]
name = "Contoso"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "CONTOSO\\alice"
certificate_file = "alice.crt"

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Block contractors"
permission_mode = "Deny"
user_name = "nobody"
rules = [{ certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "contract*", compare_case_sensitive = false }]

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Security team"
user_name = "CONTOSO\\security"
rules = [
  { certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Security" },
  { certificate_field = "Subject", certificate_sub_field = "O", match_criteria = "Contoso" },
  { certificate_field = "Issuer", certificate_sub_field = "CN", match_criteria = "Example * CA" },
]

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Everyone at Contoso"
user_name = "CONTOSO\\staff"
enabled = false
rules = [{ certificate_field = "Subject", certificate_sub_field = "O", match_criteria = "Contoso" }]
"#;

async fn user_of(env: &Env, identity: &Issued) -> (u16, Option<String>, String) {
    let resp = env.client(Some(identity)).get(env.addr(), "/").await;
    let user = (resp.status == 200)
        .then(|| {
            resp.echo()["headers"]["x-remote-user"]
                .as_str()
                .map(str::to_owned)
        })
        .flatten();
    (resp.status, user, resp.text())
}

#[tokio::test]
async fn many_to_one_rules_allow_deny_and_skip_in_iis_order() {
    let pki = Arc::new(Pki::new());
    let p = people(&pki);
    let env = Env::start_with(Arc::clone(&pki), MANY_TO_ONE).await;

    // One-to-one wins before any many-to-one rule.
    assert_eq!(
        user_of(&env, &pki.alice).await.1.as_deref(),
        Some("CONTOSO\\alice")
    );
    // All rules of "Security team" match.
    assert_eq!(
        user_of(&env, &p.security).await.1.as_deref(),
        Some("CONTOSO\\security")
    );
    // A multi-valued OU matches if any value does.
    assert_eq!(
        user_of(&env, &p.two_ous).await.1.as_deref(),
        Some("CONTOSO\\security")
    );
    // The Deny mapping comes first: 403.12.
    let (status, _, body) = user_of(&env, &p.contractor).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("403.12") && body.contains("Mapper denied access"),
        "{body}"
    );
    // Only the disabled mapping would match: 401.2.
    let (status, _, body) = user_of(&env, &p.sales).await;
    assert_eq!(status, 401);
    assert!(body.contains("401.2"), "{body}");
}

#[tokio::test]
async fn disabled_mapping_families_never_match() {
    let pki = Arc::new(Pki::new());
    let p = people(&pki);
    let config = MANY_TO_ONE.replace(
        "[site.iis_client_certificate_mapping_authentication]\nenabled = true\n",
        "[site.iis_client_certificate_mapping_authentication]\nenabled = true\n\
         one_to_one_certificate_mappings_enabled = false\nmany_to_one_certificate_mappings_enabled = false\n",
    );
    let env = Env::start_with(Arc::clone(&pki), &config).await;
    for identity in [&pki.alice, &p.security, &p.contractor] {
        let (status, _, body) = user_of(&env, identity).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("401.2"), "{body}");
    }
}

fn b64(issued: &Issued) -> String {
    certgate::identity::CertFacts::parse(&issued.der)
        .unwrap()
        .base64_der()
}

/// applicationHost.config in IIS's own format, with inherited collections and nested locations.
fn application_host(pki: &Pki) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <sites>
      <site name="Contoso" id="2">
        <application path="/" applicationPool="Contoso">
          <virtualDirectory path="/" physicalPath="C:\inetpub\contoso" />
        </application>
        <bindings>
          <binding protocol="https" bindingInformation="*:443:localhost" sslFlags="1" />
        </bindings>
      </site>
    </sites>
  </system.applicationHost>
  <location path="Contoso" overrideMode="Allow">
    <system.webServer>
      <security>
        <access sslFlags="Ssl, SslNegotiateCert, SslRequireCert" />
        <authentication>
          <anonymousAuthentication enabled="false" />
          <iisClientCertificateMappingAuthentication enabled="true" defaultLogonDomain="CONTOSO">
            <oneToOneMappings>
              <add userName="CONTOSO\alice" password="[enc:AesProvider:abc:enc]" certificate="{alice}" />
            </oneToOneMappings>
            <manyToOneMappings>
              <add name="Block contractors" permissionMode="Deny" userName="nobody">
                <rules>
                  <add certificateField="Subject" certificateSubField="OU" matchCriteria="contract*" compareCaseSensitive="false" />
                </rules>
              </add>
              <add name="Security team" userName="CONTOSO\security">
                <rules>
                  <add certificateField="Subject" certificateSubField="OU" matchCriteria="Security" />
                  <add certificateField="Subject" certificateSubField="O" matchCriteria="Contoso" />
                </rules>
              </add>
            </manyToOneMappings>
          </iisClientCertificateMappingAuthentication>
        </authentication>
      </security>
    </system.webServer>
  </location>
  <location path="Contoso/public">
    <system.webServer>
      <security>
        <access sslFlags="Ssl" />
        <authentication>
          <anonymousAuthentication enabled="true" />
        </authentication>
      </security>
    </system.webServer>
  </location>
  <location path="Contoso/hr">
    <system.webServer>
      <security>
        <authentication>
          <iisClientCertificateMappingAuthentication>
            <manyToOneMappings>
              <clear />
              <add name="Sales only" userName="CONTOSO\sales">
                <rules>
                  <add certificateField="Subject" certificateSubField="OU" matchCriteria="Sales" />
                </rules>
              </add>
            </manyToOneMappings>
          </iisClientCertificateMappingAuthentication>
        </authentication>
      </security>
    </system.webServer>
  </location>
</configuration>
"#,
        alice = b64(&pki.alice)
    )
}

/// The same policy written by hand.
const HAND_WRITTEN: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[[site]]
name = "Contoso"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true
default_logon_domain = "CONTOSO"

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "CONTOSO\\alice"
certificate_file = "alice.crt"

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Block contractors"
permission_mode = "Deny"
user_name = "nobody"
rules = [{ certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "contract*", compare_case_sensitive = false }]

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Security team"
user_name = "CONTOSO\\security"
rules = [
  { certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Security" },
  { certificate_field = "Subject", certificate_sub_field = "O", match_criteria = "Contoso" },
]

[[site.location]]
path = "/public"
ssl_flags = "Ssl"
anonymous_authentication = true

[[site.location]]
path = "/hr"
[site.location.iis_client_certificate_mapping_authentication]
enabled = true
default_logon_domain = "CONTOSO"
[[site.location.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "CONTOSO\\alice"
certificate_file = "alice.crt"
[[site.location.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "Sales only"
user_name = "CONTOSO\\sales"
rules = [{ certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Sales" }]
"#;

#[tokio::test]
async fn imported_iis_config_answers_like_the_hand_written_one() {
    let pki = Arc::new(Pki::new());
    let p = people(&pki);

    let imported = import(
        &application_host(&pki),
        &[],
        &ImportOptions {
            listen: vec!["127.0.0.1:0".into()],
            certificate: Some("server.crt".into()),
            private_key: Some("server.key".into()),
            client_ca: vec!["ca.crt".into()],
            backend: Some("http://{backend}".into()),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("CONTOSO\\alice")),
        "encrypted password warning must name the mapping: {:?}",
        imported.warnings
    );
    let toml_text = to_toml(&imported).unwrap();
    assert!(!toml_text.contains("IMPORT-PLACEHOLDER"), "{toml_text}");

    let from_iis = Env::start_with(Arc::clone(&pki), &toml_text).await;
    let by_hand = Env::start_with(Arc::clone(&pki), HAND_WRITTEN).await;

    let identities: [(&str, Option<&Issued>); 7] = [
        ("none", None),
        ("alice", Some(&pki.alice)),
        ("security", Some(&p.security)),
        ("contractor", Some(&p.contractor)),
        ("sales", Some(&p.sales)),
        ("two_ous", Some(&p.two_ous)),
        ("untrusted", Some(&pki.untrusted)),
    ];
    let mut answers = Vec::new();
    for (who, identity) in identities {
        for path in ["/", "/public/x", "/hr/x", "/HR/./y", "/public/../hr"] {
            let mut seen = Vec::new();
            for env in [&from_iis, &by_hand] {
                let client = env.client(identity).with_alpn(&[b"http/1.1"]);
                let req = Request::get(path)
                    .header("host", "localhost")
                    .body(Bytes::new())
                    .unwrap();
                let resp = client.send(env.addr(), "localhost", req).await.unwrap();
                let user = (resp.status == 200)
                    .then(|| {
                        resp.echo()["headers"]["x-remote-user"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .flatten();
                let code = resp
                    .text()
                    .split("HTTP Error ")
                    .nth(1)
                    .and_then(|s| s.split(' ').next())
                    .map(str::to_owned);
                seen.push((resp.status, code, user));
            }
            assert_eq!(seen[0], seen[1], "{who} {path}: imported vs hand-written");
            answers.push((who, path, seen.remove(0)));
        }
    }
    // The matrix is not trivially uniform: spot-check the IIS semantics it exercised.
    let find = |who: &str, path: &str| {
        answers
            .iter()
            .find(|(w, p, _)| *w == who && *p == path)
            .map(|(_, _, a)| a.clone())
            .unwrap()
    };
    assert_eq!(find("alice", "/").2.as_deref(), Some("CONTOSO\\alice"));
    assert_eq!(
        find("security", "/").2.as_deref(),
        Some("CONTOSO\\security")
    );
    assert_eq!(find("contractor", "/").1.as_deref(), Some("403.12"));
    assert_eq!(find("sales", "/").1.as_deref(), Some("401.2"));
    assert_eq!(find("sales", "/hr/x").2.as_deref(), Some("CONTOSO\\sales"));
    assert_eq!(find("security", "/HR/./y").1.as_deref(), Some("401.2"));
    assert_eq!(find("none", "/public/x").0, 200);
    assert_eq!(find("none", "/").1.as_deref(), Some("403.7"));
    assert_eq!(find("untrusted", "/").1.as_deref(), Some("403.16"));
}

#[tokio::test]
async fn explain_reaches_the_same_decision_as_the_proxy() {
    let pki = Arc::new(Pki::new());
    let p = people(&pki);
    let env = Env::start_with(Arc::clone(&pki), MANY_TO_ONE).await;
    let runtime = env.server.shared().runtime();
    for identity in [
        &pki.alice,
        &p.security,
        &p.contractor,
        &p.sales,
        &pki.expired,
        &pki.untrusted,
    ] {
        let explained = certgate::explain::explain(
            &runtime,
            std::slice::from_ref(&identity.der),
            &certgate::explain::Target {
                host: Some("localhost"),
                site: None,
                path: "/x",
            },
        )
        .unwrap();
        let (status, user, body) = user_of(&env, identity).await;
        assert_eq!(explained.verdict.status, status, "{explained}\n{body}");
        assert_eq!(explained.verdict.user_name, user, "{explained}");
        if status != 200 {
            assert!(
                body.contains(&explained.verdict.code),
                "{explained}\n{body}"
            );
        }
    }
    // The trace names the rule values that decided.
    let explained = certgate::explain::explain(
        &runtime,
        std::slice::from_ref(&p.contractor.der),
        &certgate::explain::Target {
            host: Some("localhost"),
            site: None,
            path: "/",
        },
    )
    .unwrap();
    let text = explained.to_string();
    assert!(text.contains("\"Block contractors\" Deny"), "{text}");
    assert!(text.contains("[\"Contractors\"]"), "{text}");
    assert!(text.contains("403.12"), "{text}");
    let json = serde_json::to_value(&explained).unwrap();
    assert_eq!(json["mapper"]["many_to_one"][0]["selected"], true);
    assert_eq!(json["verdict"]["code"], "403.12");
}
