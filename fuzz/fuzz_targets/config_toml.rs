#![no_main]
//! Configuration loading from TOML text (`config::Runtime::from_toml`), with a real PKI on disk
//! (`ca.crt`, `server.crt`, `server.key`, `alice.crt`, `alice.der`, `ca.crl` beside the file) so
//! inputs get past file loading into validation. A file is either accepted or refused with
//! errors that each name the file and say why; loading is deterministic.

use certgate::config::Runtime;
use certgate::tls::server::ResumptionKeys;
use certgate_fuzz::pki_dir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = pki_dir::dir().join("certgate.toml");
    let keys = ResumptionKeys::default();
    let first = Runtime::from_toml(text, &path, &keys);
    match &first {
        Ok(rt) => {
            assert!(
                !rt.sites.is_empty(),
                "a configuration without sites was accepted"
            );
            assert!(rt.site_for_sni(None).is_some(), "no default site");
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without an error");
            for e in &errors.0 {
                assert_eq!(e.file, path, "error names another file: {e}");
                assert!(!e.reason.trim().is_empty(), "error without a reason: {e:?}");
            }
        }
    }
    // Same text, same verdict and the same errors.
    let second = Runtime::from_toml(text, &path, &keys);
    match (&first, &second) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "errors differ"),
        _ => panic!("loading the same text twice gave different verdicts"),
    }
});
