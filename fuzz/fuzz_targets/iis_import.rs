#![no_main]
//! IIS XML import (`import-iis`): arbitrary applicationHost.config text is either refused with an
//! error or turned into a certgate configuration whose TOML (comments included) parses back to
//! the same configuration.

use certgate::config::raw::RawConfig;
use certgate::tools::iis_import::{ImportOptions, import, to_toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
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
