//! Any TOML text as the config file: parsed and validated, or refused with
//! a setting name; never a panic.
#![no_main]
use arcly_server::config::{Cli, FileConfig, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = toml::from_str::<FileConfig>(text) else { return };
    if let Err(e) = Settings::merge(&file, &Cli::default()) {
        assert!(!e.setting.is_empty());
    }
});
