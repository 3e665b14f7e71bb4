//! Connection-bound Kerberos authentication to the backend (`persist_auth`), against the test
//! KDC and Apache mod_auth_gssapi (see tests/kerberos.rs):
//!
//! ```sh
//! bash scripts/with-ad.sh cargo test --features kerberos --test kerberos_bound
//! ```
//!
//! Apache keeps a connection authenticated under `/bound` (`GssapiConnectionBound On`, as IIS
//! does by default) and not elsewhere; its access log records whether each request carried a
//! Negotiate token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::kerberos::{OneConnection, backend_saw, config, krb, start, stats};

macro_rules! krb_or_skip {
    () => {
        match krb() {
            Some(k) => k,
            None => return,
        }
    };
}

const ALICE: &str = "alice@EXAMPLE.TEST";

/// With `GssapiConnectionBound On` alice's second request rides her authenticated backend
/// connection: one token in all, and the backend sees the second without `Authorization` and
/// still as alice. With `persist_auth = false` every request carries a token.
#[tokio::test]
async fn a_bound_connection_carries_alice_without_a_new_token() {
    let k = krb_or_skip!();
    for (persist, tokens, bound, saw) in [
        ("true", 1, 1, ["token 200", "- 200"]),
        ("false", 2, 0, ["token 200", "token 200"]),
    ] {
        let spn = format!("spn = \"{}\"\npersist_auth = {persist}", k.backend_spn);
        let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
        let mut client = OneConnection::open(&env, &env.pki.alice).await;
        let path = format!("/bound/persist-{persist}-{}/whoami", std::process::id());
        assert_eq!(client.user(&path, None).await, ALICE);
        assert_eq!(client.user(&path, None).await, ALICE);
        let s = stats(&env);
        assert_eq!(
            (s.tokens, s.bound_requests, s.bound_retries),
            (tokens, bound, 0),
            "persist_auth = {persist}: {s:?}"
        );
        assert_eq!(
            backend_saw(&k, &path, 2).await,
            saw,
            "persist_auth = {persist}"
        );
    }
}

/// A backend that says `Persistent-Auth: false` with its answer (IIS with `authPersistNonNTLM`
/// off) gets a token with every request, even where it would keep the connection: a token-less
/// request to an IIS that also allows anonymous access would run as nobody. The hint is
/// certgate's business with the backend and does not reach the client.
#[tokio::test]
async fn persistent_auth_false_from_the_backend_means_a_token_every_time() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let mut client = OneConnection::open(&env, &env.pki.alice).await;
    let path = format!("/bound/hint-off/{}/whoami", std::process::id());
    for _ in 0..2 {
        let (status, head, body) = client.get_with_head(&path).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("REMOTE_USER={ALICE}")), "{body}");
        assert!(head.get("persistent-auth").is_none(), "{head:?}");
    }
    let s = stats(&env);
    assert_eq!((s.tokens, s.bound_requests), (2, 0), "{s:?}");
    assert_eq!(backend_saw(&k, &path, 2).await, ["token 200", "token 200"]);
}

/// Without connection-bound authentication (Apache's default) the token-less request gets a
/// Negotiate 401; certgate resends it once with a token, so the client sees alice, and then
/// sends this backend tokens straight away instead of wasting a round trip per request.
#[tokio::test]
async fn a_backend_that_does_not_keep_the_logon_gets_the_request_again_with_a_token() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let mut client = OneConnection::open(&env, &env.pki.alice).await;
    let path = format!("/unbound-{}/whoami", std::process::id());
    for _ in 0..3 {
        assert_eq!(client.user(&path, None).await, ALICE);
    }
    let s = stats(&env);
    assert_eq!(
        (s.tokens, s.bound_requests, s.bound_retries),
        (3, 1, 1),
        "{s:?}"
    );
    assert_eq!(
        backend_saw(&k, &path, 4).await,
        ["token 200", "- 401", "token 200", "token 200"]
    );
}

/// A request with a body always carries a fresh token, even on an authenticated connection
/// (it could not be resent after a 401); the body-less request after it needs none.
#[tokio::test]
async fn a_request_with_a_body_always_carries_a_fresh_token() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let mut client = OneConnection::open(&env, &env.pki.alice).await;
    let path = format!("/bound/body-{}/whoami", std::process::id());
    assert_eq!(client.user(&path, None).await, ALICE);
    assert_eq!(client.user(&path, Some("form=1")).await, ALICE);
    assert_eq!(client.user(&path, None).await, ALICE);
    let s = stats(&env);
    assert_eq!((s.tokens, s.bound_requests), (2, 1), "{s:?}");
    assert_eq!(
        backend_saw(&k, &path, 3).await,
        ["token 200", "token 200", "- 200"]
    );
}

/// A client's own `Authorization` never reaches the backend on a Kerberos scope, also not on a
/// request that rides an authenticated connection (it would log the connection on as someone
/// else).
#[tokio::test]
async fn a_client_authorization_header_is_not_forwarded_on_a_bound_connection() {
    let k = krb_or_skip!();
    let spn = format!("spn = \"{}\"", k.backend_spn);
    let env = start(&config(&k, "EXAMPLE\\alice", &spn, "")).await;
    let mut client = OneConnection::open(&env, &env.pki.alice).await;
    let path = format!("/bound/client-auth-{}/whoami", std::process::id());
    assert_eq!(client.user(&path, None).await, ALICE);
    let (status, body) = client
        .send_with(&path, &[("authorization", "Negotiate YWJj")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("REMOTE_USER={ALICE}")), "{body}");
    assert_eq!(backend_saw(&k, &path, 2).await, ["token 200", "- 200"]);
}
