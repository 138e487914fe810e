//! Signature bundle parsing, and merging a parsed bundle into a real root (the sigstore root v5
//! with its signatures removed).
#![no_main]

use conclave::transport::bundle::{Bundle, merge};
use conclave::tuf::metadata::AnyMetadata;
use conclave::tuf::metadata::Root;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ROOT: &[u8] = include_bytes!(
    "../../data/vectors/tuf-conformance-static/sigstore-root-signing/metadata/5.root.json"
);

static PARSED: OnceLock<Option<(AnyMetadata, Root)>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(b) = Bundle::from_bytes("fuzz.bundle.json", data) else {
        return;
    };
    let again = Bundle::from_bytes("again", &b.to_bytes()).expect("written bundle reads back");
    assert_eq!(again, b, "bundle changed on the round trip");
    let _ = b.to_string();
    let Some((md, trusted)) = PARSED.get_or_init(|| match AnyMetadata::from_bytes(ROOT) {
        Ok(AnyMetadata::Root(mut md)) => {
            let trusted = md.signed().clone();
            md.signatures.clear();
            Some((AnyMetadata::Root(md), trusted))
        }
        _ => None,
    }) else {
        return;
    };
    let mut any = md.clone();
    let _ = merge(&mut any, Some(trusted), &[("fuzz.bundle.json".into(), b)]);
});
