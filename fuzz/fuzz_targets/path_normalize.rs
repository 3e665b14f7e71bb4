#![no_main]
//! Request-path normalisation (`forward::path`): whatever the client sends, an accepted path
//! is one the backend and the location matcher read the same way.

use certgate::forward::path::{in_location, normalize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = normalize(raw) else { return };
    for form in [&p.forward, &p.canonical] {
        // No dot segments, no control characters, no backslashes survive.
        assert!(
            !form.split('/').any(|s| s == "." || s == ".."),
            "dot segment in {form:?} from {raw:?}"
        );
        assert!(
            !form.chars().any(|c| c.is_ascii_control() || c == '\\'),
            "control character or backslash in {form:?} from {raw:?}"
        );
    }
    assert!(p.forward.starts_with('/'), "forward {:?}", p.forward);
    // The forwarded form is plain RFC 3986: no raw spaces, `?`, `#` or non-ASCII.
    assert!(
        p.forward
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#'),
        "forward {:?} from {raw:?}",
        p.forward
    );
    // The canonical form is the root (empty) or `/seg/seg` with no empty segment: an empty
    // segment would let `/;x/secure` dodge the location `/secure` while a backend serves it.
    assert!(
        p.canonical.is_empty()
            || (p.canonical.starts_with('/')
                && !p.canonical.ends_with('/')
                && !p.canonical.contains("//")),
        "canonical {:?} from {raw:?}",
        p.canonical
    );
    // What is forwarded normalises to itself (the backend sees exactly what was matched).
    let again = normalize(&p.forward).expect("forwarded path refused on re-normalisation");
    assert_eq!(again, p, "not idempotent for {raw:?}");
    assert!(in_location(&p.canonical, "") && in_location(&p.canonical, &p.canonical));
});
