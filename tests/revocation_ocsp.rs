//! OCSP answers that must not let a certificate through, each made by a real `openssl ocsp`
//! (offline, `-reqin`/`-respout`; under `faketime` for answers from the past or the future) and
//! served by the real CDP server process: a signature with one byte flipped, a responder the CA
//! did not authorise, an answer past its nextUpdate, one issued in the future, "unknown" (deny
//! by default, `unknown_status = "allow"` lets it pass), "revoked"; and "good" passing. Every
//! refusal is 403.13 and `certgate explain` names the responder and why.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use certgate::pki::Issued;
use support::revocation::{
    CdpServer, Revoked, client_cert, code, explain, ocsp_response, site_config,
};
use support::{Env, Pki};

const ENTRIES: &[Revoked<'static>] = &[(0xA11, "valid"), (0xB0B, "keyCompromise")];

struct Case {
    name: &'static str,
    serial: u64,
    /// The answer served (a file of the CDP server).
    response: Vec<u8>,
    /// What the proxy answers, and words `explain` must say.
    code: &'static str,
    says: &'static str,
}

#[tokio::test]
async fn ocsp_answers_that_must_not_pass_fail_closed_and_explain_names_them() {
    let pki = Arc::new(Pki::new());
    let ca = Issued {
        cert_pem: pki.ca.cert_pem.clone(),
        key_pem: pki.ca.key_pem(),
        der: pki.ca.der.clone(),
    };
    let foreign = pki.other_ca.ocsp_signer("Foreign responder").unwrap();
    let answer =
        |serial, signer: &Issued, clock| ocsp_response(&pki.ca, ENTRIES, signer, serial, 60, clock);
    let mut flipped = answer(0xA11, &ca, None);
    // A CA-signed answer carries no certificate (-resp_no_certs), so its last byte is the
    // signature's.
    *flipped.last_mut().unwrap() ^= 0x01;
    let cases = [
        Case {
            name: "good",
            serial: 0xA11,
            response: answer(0xA11, &ca, None),
            code: "200",
            says: "not revoked (OCSP",
        },
        Case {
            name: "revoked",
            serial: 0xB0B,
            response: answer(0xB0B, &ca, None),
            code: "403.13",
            says: "revoked (OCSP",
        },
        Case {
            name: "unknown",
            serial: 0xC0C,
            response: answer(0xC0C, &ca, None),
            code: "403.13",
            says: "the responder does not know it",
        },
        Case {
            name: "bad-signature",
            serial: 0xA11,
            response: flipped,
            code: "403.13",
            says: "not signed by the CA or a responder it authorised",
        },
        Case {
            name: "no-ocsp-signing",
            serial: 0xA11,
            response: answer(0xA11, &pki.server, None),
            code: "403.13",
            says: "not signed by the CA or a responder it authorised",
        },
        Case {
            name: "other-ca",
            serial: 0xA11,
            response: answer(0xA11, &foreign, None),
            code: "403.13",
            says: "not signed by the CA or a responder it authorised",
        },
        Case {
            name: "stale",
            serial: 0xA11,
            response: answer(0xA11, &ca, Some("-2d")),
            code: "403.13",
            says: "OCSP response is not current",
        },
        Case {
            name: "future",
            serial: 0xA11,
            response: answer(0xA11, &ca, Some("+1d")),
            code: "403.13",
            says: "OCSP response is not current",
        },
    ];
    let served = tempfile::tempdir().unwrap();
    for case in &cases {
        std::fs::write(served.path().join(case.name), &case.response).unwrap();
    }
    let cdp = CdpServer::start(served.path(), 0);
    let state = tempfile::tempdir().unwrap();
    let env = Env::start_with(Arc::clone(&pki), &site_config(state.path(), "")).await;
    for case in &cases {
        let url = cdp.url(case.name);
        let cert = client_cert(
            &pki,
            case.name,
            case.serial,
            &[],
            std::slice::from_ref(&url),
        );
        assert_eq!(code(&env, &cert).await, case.code, "{}", case.name);
        let (verdict, detail) = explain(&env, &cert).await;
        assert_eq!(verdict, case.code, "{}: explain: {detail}", case.name);
        assert!(
            detail.contains(&format!("OCSP {url}")) && detail.contains(case.says),
            "{}: explain should name {url} and say {:?}: {detail}",
            case.name,
            case.says
        );
    }

    // unknown_status = "allow" lets the unknown answer through, and explain says so.
    let allow = Env::start_with(
        Arc::clone(&pki),
        &site_config(state.path(), "unknown_status = \"allow\""),
    )
    .await;
    let url = cdp.url("unknown");
    let cert = client_cert(
        &pki,
        "unknown-allowed",
        0xC0C,
        &[],
        std::slice::from_ref(&url),
    );
    assert_eq!(code(&allow, &cert).await, "200");
    let (verdict, detail) = explain(&allow, &cert).await;
    assert_eq!(verdict, "200", "{detail}");
    assert!(
        detail.contains("the responder does not know it")
            && detail.contains("allowed by revocation.unknown_status = \"allow\""),
        "{detail}"
    );
}
