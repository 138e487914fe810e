//! Conclave on the PKCS#11 modules keyholders actually bring, emulated: each test runs the
//! `conclave` binary against SoftHSM2 tokens seen through the device-profile module
//! (`tests/pkcs11-profile/`), which imposes the documented behaviour of `yubihsm_pkcs11`,
//! `ykcs11`, OpenSC with a Nitrokey HSM, opencryptoki, tpm2-pkcs11 or a PIN-pad reader (the
//! vendor source each profile follows is named in its `src/lib.rs` and in docs/hsm.md). These
//! are emulations: none of this ran on the physical devices.

mod common;

use common::profile::Bench;

/// Without a profile the module is transparent; each profile shows its vendor's token
/// information (label, maker, model, serial, firmware encoding decoded).
#[test]
fn each_profile_shows_its_vendors_token_information() {
    let mut b = Bench::new("alice,bob", "none");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains("token \"alice\"") && run.stdout.contains("token \"bob\""),
        "{run:?}"
    );

    b.set("CONCLAVE_PROFILE", "opensc-nitrokey");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"alice (UserPIN)\""), "{run:?}");
    assert!(run.stdout.contains("www.CardContact.de"), "{run:?}");
}
