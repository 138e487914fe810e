//! Key parsing: PEM (SPKI) and hex public keys for every scheme, as a key object in JSON and as
//! a bare `keyval.public` string; a parsed key verifies an arbitrary signature without panic.
#![no_main]

use conclave::tuf::canonical::{Map, Value};
use conclave::tuf::key::Key;
use conclave::tuf::metadata::key_from_value;
use libfuzzer_sys::fuzz_target;

const SCHEMES: [(&str, &str); 6] = [
    ("ed25519", "ed25519"),
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa", "ecdsa-sha2-nistp384"),
    ("rsa", "rsassa-pss-sha256"),
    ("ed25519", "rsassa-pss-sha256"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // A whole key object in JSON.
    if let Ok(v) = Value::parse(rest)
        && let Ok(k) = key_from_value(v, "$.signed.keys[\"fuzz\"]")
    {
        let _ = k.key_id();
        if let Ok(pk) = k.public_key() {
            let _ = pk.verify(b"message", rest);
            let _ = pk.fingerprint();
        }
    }
    // A bare public key string under each scheme; the tail after a NUL is the signature.
    let (public, sig) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let (keytype, scheme) = SCHEMES[usize::from(selector) % SCHEMES.len()];
    let key = Key {
        keytype: keytype.into(),
        scheme: scheme.into(),
        public: String::from_utf8_lossy(public).into_owned(),
        keyval_unrecognized: Map::new(),
        unrecognized: Map::new(),
    };
    if let Ok(pk) = key.public_key() {
        let _ = pk.verify(b"message", sig);
        let _ = key.verify_hex(b"message", &String::from_utf8_lossy(sig));
        // A key that parses re-encodes to a key that parses to the same material.
        let again = Key::from_public_key(&pk);
        let pk2 = again.public_key().expect("re-encoded key parses");
        assert_eq!(pk2.material(), pk.material(), "key material changed");
    }
});
