//! Ceremony script parsing (TOML): errors, never a panic; every error names a line.
#![no_main]

use conclave::ceremony::script::Script;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Script::parse("fuzz.toml", text) {
        Ok(s) => {
            let _ = format!("{s:?}");
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without an error");
            for e in &errors {
                let _ = e.to_string();
            }
        }
    }
});
