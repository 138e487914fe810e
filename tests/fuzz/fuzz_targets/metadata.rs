//! Metadata parsing and canonicalisation: strict JSON, canonical bytes, the typed metadata.
//! Properties: no panic; canonical bytes read back to the same value; the pretty file reads back
//! to the same value; a file that loads as metadata writes a file that loads with the same
//! signed bytes.
#![no_main]

use conclave::tuf::canonical::{Value, parse_canonical};
use conclave::tuf::metadata::{AnyMetadata, parse_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Value::parse(data) {
        let canonical = v.canonical_bytes();
        assert_eq!(
            canonical.len(),
            v.canonical_len(),
            "canonical_len disagrees"
        );
        let back = parse_canonical(&canonical).expect("canonical bytes read back");
        assert_eq!(back, v, "canonical round trip changed the value");
        let pretty = v.to_pretty_json();
        let again = Value::parse(pretty.as_bytes()).expect("pretty JSON reads back");
        assert_eq!(again, v, "pretty round trip changed the value");
        // The packing parser agrees with the plain one on the canonical form.
        if let Ok(p) = parse_file(data) {
            assert_eq!(p.canonical_bytes(), canonical, "packed value differs");
        }
    } else {
        assert!(
            parse_file(data).is_err(),
            "parse_file accepts what parse refuses"
        );
    }
    if let Ok(md) = AnyMetadata::from_bytes(data) {
        let bytes = conclave::transport::bundle::file_bytes(&md);
        let again = AnyMetadata::from_bytes(&bytes).expect("written metadata reads back");
        assert_eq!(
            again.signed_bytes(),
            md.signed_bytes(),
            "signed bytes changed"
        );
        assert_eq!(again.role_type(), md.role_type());
    }
});
