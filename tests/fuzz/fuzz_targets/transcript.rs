//! Transcript parsing and verification: the hash chain, the seal and its signatures, the
//! auditor's verdict (strict and partial), the record lines one by one.
#![no_main]

use conclave::transcript::audit::audit;
use conclave::transcript::chain::{scan_chain, split_torn_tail};
use conclave::transcript::{Record, verify_chain, verify_seal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = verify_chain(data) {
        let _ = verify_seal(&t);
        let _ = t.begin();
    }
    let strict = audit(data, None, false);
    let partial = audit(data, None, true);
    if strict.intact() {
        assert!(partial.intact(), "intact strictly but not partially");
    }
    let _ = scan_chain(data);
    let _ = split_torn_tail(data);
    for line in data.split(|&b| b == b'\n') {
        if let Ok(r) = Record::parse_line(line) {
            // The file holds `to_line()` with its `\n`; the reader takes lines without it.
            let written = r.to_line();
            let written = written.strip_suffix('\n').unwrap_or(&written);
            assert_eq!(
                written.as_bytes(),
                line,
                "a record is written back other than it was read"
            );
            let again = Record::parse_line(written.as_bytes()).expect("written record reads");
            assert_eq!(
                again.hash_hex(),
                r.hash_hex(),
                "record changed on the round trip"
            );
            let _ = conclave::transcript::display::summary(&r);
        }
    }
});
