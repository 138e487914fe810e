//! The canonical JSON reader: accepts exactly what the canonical writer writes.
#![no_main]

use conclave::tuf::canonical::parse_canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = parse_canonical(data) {
        assert_eq!(
            v.canonical_bytes(),
            data,
            "accepted bytes that are not canonical"
        );
    }
});
