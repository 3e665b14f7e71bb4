#![no_main]
//! IIS XML import (`import-iis`): arbitrary applicationHost.config text is either refused with an
//! error or turned into a certgate configuration whose TOML (comments included) parses back to
//! the same configuration.
//!
//! The same text is also read as a `netsh http show sslcert` dump (`import-iis --netsh`, the
//! other input of the importer, at no extra CI time): it is refused with an error naming a line
//! of the text, or its bindings import on their own (the synthetic applicationHost.config is
//! always well-formed) and the netsh settings apply.

use certgate::config::raw::RawConfig;
use certgate::tools::iis_import::{ImportOptions, import, netsh, netsh_apply, to_toml};
use libfuzzer_sys::fuzz_target;

fn netsh_dump(text: &str) {
    match netsh::parse(text, "f") {
        Err(e) => assert!(
            e.line <= text.split('\n').count(),
            "error line {} outside the text",
            e.line
        ),
        Ok(bindings) => {
            let prepared = netsh_apply::prepare_alone(&bindings, "f");
            let opts = ImportOptions::default();
            let mut imported = import(&prepared.app_host, &[], &opts).unwrap_or_else(|e| {
                panic!(
                    "the bindings' synthetic applicationHost.config: {e}\n{}",
                    prepared.app_host
                )
            });
            netsh_apply::apply(&mut imported, &bindings, "f", &opts);
            let text = to_toml(&imported).expect("serialise");
            toml::from_str::<RawConfig>(&text).unwrap_or_else(|e| {
                panic!("import-iis --netsh wrote TOML it cannot read back: {e}\n{text}")
            });
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = netsh::decode(data);
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    netsh_dump(xml);
    let Ok(imported) = import(xml, &[], &ImportOptions::default()) else {
        return;
    };
    let Ok(text) = to_toml(&imported) else { return };
    let mut back: RawConfig = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("import-iis wrote TOML it cannot read back: {e}\n{text}"));
    // `id`, `[site.log_file]` and `[site.http_errors]` (from <logFile> and <httpErrors>) are
    // written beside the mapping configuration, not held in `imported.config`: compare the rest.
    for site in &mut back.sites {
        site.id = None;
        site.log_file = None;
        site.http_errors = None;
    }
    // Serialising what was read back gives the same body: nothing was lost or reinterpreted.
    let body = toml::to_string_pretty(&imported.config).expect("serialise");
    assert_eq!(toml::to_string_pretty(&back).expect("serialise"), body);
});
