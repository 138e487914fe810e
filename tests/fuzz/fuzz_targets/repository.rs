//! Verification of a whole repository folder given as sections (see `RepoInput`): the first
//! section is the trusted root. Seeds are the real repositories of tests/data/vectors.
#![no_main]

use conclave::tuf::repository::verify_repository;
use conclave_fuzz::RepoInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = RepoInput::parse(data) else {
        return;
    };
    let (name, root) = &input.files[0];
    let report = verify_repository(name, root, &input.source(), input.now);
    if !report.is_valid() {
        assert!(report.error.is_some(), "invalid report without an error");
    }
});
