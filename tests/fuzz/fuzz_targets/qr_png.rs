//! QR frame images: PNG decoding and QR detection of an arbitrary image, then the contents
//! through the frame collector.
#![no_main]

use conclave::transport::qr::{Collector, read_png_codes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(codes) = read_png_codes(data) {
        let mut c = Collector::new();
        for code in codes {
            let _ = c.receive("frame.png", &code);
        }
        let _ = c.finish();
    }
});
