//! QR/UR frame decoding: each line is the content of one scanned frame (UR `bytes` fragments);
//! the collector rebuilds and checks the file. The whole input is also tried as an envelope.
#![no_main]

use conclave::transport::qr::{Collector, open_envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = open_envelope(data);
    let mut c = Collector::new();
    for (i, frame) in data.split(|&b| b == b'\n').enumerate() {
        let _ = c.receive(&format!("frame-{i}"), frame);
        let _ = c.progress();
    }
    if let Ok(r) = c.finish() {
        let digest: [u8; 32] = conclave::transcript::record::sha256(&r.data);
        assert_eq!(digest, r.sha256, "rebuilt file does not match its SHA-256");
    }
});
