//! Verification of a whole repository folder whose every file is re-signed with one fixed key
//! before verification: mutations of versions, hashes, lengths, expiry, delegations and paths
//! get past the signature check to the checks behind it. Seeds list that key for every role.
#![no_main]

use conclave::tuf::repository::verify_repository;
use conclave_fuzz::{RepoInput, fuzz_signer, resign};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = RepoInput::parse(data) else {
        return;
    };
    let mut signer = fuzz_signer();
    for (_, bytes) in input.files.iter_mut() {
        *bytes = resign(bytes, &mut signer);
    }
    let (name, root) = &input.files[0];
    let report = verify_repository(name, root, &input.source(), input.now);
    if !report.is_valid() {
        assert!(report.error.is_some(), "invalid report without an error");
    }
});
