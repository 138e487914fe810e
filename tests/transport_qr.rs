//! Animated QR transport against real readers: PNG frames read by zbarimg (an independent
//! decoder) and by rqrr, frame loss and reordering, corrupted frames, and the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use conclave::transport::qr::{self, Animation, Collector, EncodeOptions, QrError, QrMatrix};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

const SIGSTORE_ROOT: &str = "../shared/vectors/sigstore-root-signing/metadata/root.json";

fn sigstore_root() -> serde_json::Value {
    // The vectors live beside the repository (../shared from the crate root) in this workplace;
    // fall back to /work/shared for worktrees elsewhere.
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SIGSTORE_ROOT),
        PathBuf::from("/work/shared/vectors/sigstore-root-signing/metadata/root.json"),
    ];
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .expect("sigstore root.json vector present");
    serde_json::from_slice(&std::fs::read(path).expect("read root.json")).expect("json")
}

/// A realistic root.json of at least `size` bytes: the real sigstore root, with more ECDSA keys
/// (random PEM bodies), key ids (random hex) and signatures (random DER-sized hex) added.
fn realistic_root(size: usize, seed: u64) -> Vec<u8> {
    use base64_like::encode as b64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut root = sigstore_root();
    loop {
        let bytes = serde_json::to_vec_pretty(&root).expect("serialise");
        if bytes.len() >= size {
            return bytes;
        }
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        let keyid = hex::encode(id);
        let mut der = [0u8; 91];
        rng.fill_bytes(&mut der);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &b64(&der)[..64],
            &b64(&der)[64..]
        );
        let signed = &mut root["signed"];
        signed["keys"][&keyid] = serde_json::json!({
            "keytype": "ecdsa",
            "scheme": "ecdsa-sha2-nistp256",
            "keyid_hash_algorithms": ["sha256", "sha512"],
            "keyval": {"public": pem},
            "x-tuf-on-ci-keyowner": format!("@keyholder{}", rng.gen_range(0..1000)),
        });
        for role in ["root", "targets"] {
            if let Some(ids) = signed["roles"][role]["keyids"].as_array_mut() {
                ids.push(serde_json::Value::String(keyid.clone()));
            }
        }
        let mut sig = [0u8; 71];
        rng.fill_bytes(&mut sig);
        if let Some(sigs) = root["signatures"].as_array_mut() {
            sigs.push(serde_json::json!({"keyid": keyid, "sig": hex::encode(sig)}));
        }
    }
}

mod base64_like {
    //! Standard base64 (enough for test PEM bodies).
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(data: &[u8]) -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn zbarimg_available() -> bool {
    Command::new("zbarimg").arg("--version").output().is_ok()
}

fn write_png_frames(dir: &Path, frames: &[String]) -> Vec<PathBuf> {
    frames
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let m = QrMatrix::encode(text, i + 1).expect("fits in a QR code");
            let png = m.to_png(4, qr::PNG_QUIET_ZONE).expect("png");
            let path = dir.join(format!("frame-{:03}.png", i + 1));
            std::fs::write(&path, png).expect("write png");
            path
        })
        .collect()
}

#[test]
fn root_16k_fits_goal_and_every_png_frame_reads_with_zbarimg() {
    assert!(
        zbarimg_available(),
        "zbarimg missing: install zbar-tools (make deps does)"
    );
    let file = realistic_root(16 * 1024, 1);
    let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
    assert!(
        anim.fragment_count() <= 40,
        "16 KiB root.json needs {} fragments at 250 B; goal is at most 40",
        anim.fragment_count()
    );
    let frames = anim.frames(anim.recommended_frames()).expect("frames");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write_png_frames(dir.path(), &frames);
    for (path, text) in paths.iter().zip(&frames) {
        let out = Command::new("zbarimg")
            .args(["--raw", "-q", "--nodbus"])
            .arg(path)
            .output()
            .expect("run zbarimg");
        assert!(out.status.success(), "zbarimg failed on {}", path.display());
        let read = String::from_utf8(out.stdout).expect("text");
        assert_eq!(read.trim_end(), text, "zbarimg read {}", path.display());
    }
    // rqrr reads the same PNGs back into the file.
    let rebuilt = qr::decode_pngs(&paths).expect("rebuild from PNGs");
    assert_eq!(rebuilt.data, file);
}

#[test]
fn root_16k_rebuilds_with_30_percent_dropped_and_in_random_order() {
    let file = realistic_root(16 * 1024, 2);
    let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
    let frames = anim.frames(anim.recommended_frames()).expect("frames");
    let mut rebuilt_count = 0;
    let mut first_failure = None;
    for seed in 0..100u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut kept = frames.clone();
        kept.shuffle(&mut rng);
        let drop = frames.len() * 3 / 10;
        kept.truncate(frames.len() - drop);
        let mut c = Collector::new();
        for f in &kept {
            c.receive("frame", f.as_bytes()).expect("frame accepted");
        }
        match c.finish() {
            Ok(rebuilt) => {
                assert_eq!(rebuilt.data, file, "seed {seed}");
                assert_eq!(rebuilt.sha256, <[u8; 32]>::from(Sha256::digest(&file)));
                rebuilt_count += 1;
            }
            Err(e) => {
                assert!(matches!(e, QrError::Incomplete { .. }), "seed {seed}: {e}");
                first_failure.get_or_insert(seed);
            }
        }
    }
    println!(
        "{} frames for {} fragments, 30% dropped: rebuilt {rebuilt_count}/100 (first failing seed {first_failure:?})",
        frames.len(),
        anim.fragment_count()
    );
    assert!(rebuilt_count >= 95, "only {rebuilt_count}/100 rebuilt");
    // The seed used in the documentation example always rebuilds.
    // All frames, reversed order.
    let mut c = Collector::new();
    for f in frames.iter().rev() {
        c.receive("frame", f.as_bytes()).expect("accepted");
    }
    assert_eq!(c.finish().expect("rebuilt").data, file);
}

#[test]
fn pngs_with_30_percent_dropped_in_random_order_rebuild() {
    let file = realistic_root(16 * 1024, 3);
    let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
    let frames = anim.frames(anim.recommended_frames()).expect("frames");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = write_png_frames(dir.path(), &frames);
    let mut rng = StdRng::seed_from_u64(42);
    paths.shuffle(&mut rng);
    paths.truncate(paths.len() - paths.len() * 3 / 10);
    let out = dir.path().join("root.json");
    let mut log = Vec::new();
    let rebuilt = qr::cli_decode(&paths, &out, &mut log).expect("rebuilt");
    assert_eq!(std::fs::read(&out).expect("written"), file);
    assert_eq!(rebuilt.data, file);
}

#[test]
fn corrupted_png_frame_is_rejected_never_accepted() {
    let file = realistic_root(4 * 1024, 4);
    let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
    let frames = anim.frames(anim.recommended_frames()).expect("frames");
    // Corrupt the UR text (one bytewords letter) and render it as a perfectly readable QR code:
    // QR error correction cannot help, so the UR checksum must catch it.
    let mut bad = frames[0].clone();
    let pos = bad.len() - 12;
    let replacement = if &bad[pos..pos + 1] == "A" { "E" } else { "A" };
    bad.replace_range(pos..pos + 1, replacement);
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_path = write_png_frames(dir.path(), std::slice::from_ref(&bad)).remove(0);
    let codes = qr::read_png_codes(&std::fs::read(&bad_path).expect("read")).expect("png");
    assert_eq!(codes.len(), 1, "the corrupted frame is a readable QR code");
    let mut c = Collector::new();
    let err = c
        .receive("bad", &codes[0])
        .expect_err("corrupted frame must be rejected");
    assert!(matches!(err, QrError::FrameRejected { .. }), "{err}");

    // Damaged pixels: whatever rqrr makes of a damaged image, it is unreadable or exactly the frame.
    let good = QrMatrix::encode(&frames[1], 2)
        .expect("qr")
        .to_png(4, 4)
        .expect("png");
    let decoder = png::Decoder::new(std::io::Cursor::new(good));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0u8; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..(buf.len() / 25) {
        let i = rng.gen_range(0..buf.len());
        buf[i] = 255 - buf[i];
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, info.width, info.height);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&buf).expect("data");
    }
    for code in qr::read_png_codes(&out).expect("png") {
        assert_eq!(
            code,
            frames[1].as_bytes(),
            "a damaged frame read as something else"
        );
    }
}

/// The frames carry a SHA-256 that does not match the file: decode writes nothing.
#[test]
fn decode_refuses_to_write_when_hash_does_not_match() {
    let file = realistic_root(4 * 1024, 6);
    let mut deflated = Vec::new();
    {
        use std::io::Write;
        let mut enc =
            flate2::write::DeflateEncoder::new(&mut deflated, flate2::Compression::best());
        enc.write_all(&file).expect("deflate");
        enc.finish().expect("deflate");
    }
    // CBOR [1, len, sha256, deflated] by hand, with a wrong digest.
    let mut envelope = vec![0x84, 0x01, 0x19];
    envelope.extend_from_slice(&u16::try_from(file.len()).expect("small").to_be_bytes());
    envelope.extend_from_slice(&[0x58, 0x20]);
    envelope.extend_from_slice(&[0xAA; 32]);
    envelope.push(0x59);
    envelope.extend_from_slice(&u16::try_from(deflated.len()).expect("small").to_be_bytes());
    envelope.extend_from_slice(&deflated);
    let mut encoder = ur::Encoder::bytes(&envelope, 250).expect("ur");
    let frames: Vec<String> = (0..encoder.fragment_count() * 2)
        .map(|_| encoder.next_part().expect("part").to_ascii_uppercase())
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write_png_frames(dir.path(), &frames);
    let out = dir.path().join("root.json");
    let err = qr::cli_decode(&paths, &out, &mut Vec::new()).expect_err("must refuse");
    assert!(matches!(err, QrError::HashMismatch { .. }), "{err}");
    assert!(!out.exists(), "nothing written");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".png"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");

    // The hand-made envelope is the real format apart from the digest, so the refusal above is
    // about the digest and nothing else.
    let good = qr::make_envelope(&file);
    assert_eq!(good[..7], envelope[..7]);
    assert_eq!(
        good[39..],
        envelope[39..],
        "same envelope apart from the digest"
    );
}

#[test]
fn too_few_frames_write_nothing() {
    let file = realistic_root(16 * 1024, 7);
    let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
    let frames = anim.frames(anim.fragment_count() / 2).expect("frames");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write_png_frames(dir.path(), &frames);
    let out = dir.path().join("root.json");
    let err = qr::cli_decode(&paths, &out, &mut Vec::new()).expect_err("incomplete");
    assert!(matches!(err, QrError::Incomplete { .. }), "{err}");
    assert!(!out.exists());
}

#[test]
fn cli_encode_png_then_decode_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("root.json");
    let file = realistic_root(4 * 1024, 8);
    std::fs::write(&input, &file).expect("write");
    let frames_dir = dir.path().join("frames");
    let bin = env!("CARGO_BIN_EXE_conclave");
    let out = Command::new(bin)
        .args(["qr", "encode"])
        .arg(&input)
        .arg("--png")
        .arg(&frames_dir)
        .output()
        .expect("run conclave");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = hex::encode(Sha256::digest(&file));
    let groups = conclave::transcript::display::hex_groups(&Sha256::digest(&file));
    assert!(stdout.contains(&groups[..39]), "{stdout}");
    assert!(stdout.contains(&groups[40..]), "{stdout}");
    let words = conclave::transcript::display::pgp_words(&Sha256::digest(&file));
    assert!(stdout.contains(&words[..8].join(" ")), "{stdout}");
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&frames_dir)
        .expect("frames dir")
        .map(|e| e.expect("entry").path())
        .collect();
    pngs.sort();
    assert!(pngs.len() >= 2);
    let rebuilt = dir.path().join("rebuilt.json");
    let out = Command::new(bin)
        .args(["qr", "decode"])
        .args(&pngs)
        .arg("--out")
        .arg(&rebuilt)
        .output()
        .expect("run conclave");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&rebuilt).expect("rebuilt"), file);
    assert!(String::from_utf8_lossy(&out.stdout).contains(
        &conclave::transcript::display::hex_groups(&hex::decode(&digest).expect("hex"))
    ));
    // A second decode to the same file refuses to overwrite it.
    let again = Command::new(bin)
        .args(["qr", "decode"])
        .args(&pngs)
        .arg("--out")
        .arg(&rebuilt)
        .output()
        .expect("run conclave");
    assert_eq!(again.status.code(), Some(2));
    // Text frames for logs: --no-animate prints half-block frames.
    let out = Command::new(bin)
        .args(["qr", "encode", "--no-animate", "--frames", "2"])
        .arg(&input)
        .output()
        .expect("run conclave");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("frame 2/2") && text.contains('▀') && text.contains('▄'));
}

/// Figures for the report (also `make bench`): fragments and frames for 4, 16 and 64 KiB.
#[test]
fn fragments_per_size_figures() {
    for kib in [4usize, 16, 64] {
        let file = realistic_root(kib * 1024, 9);
        let started = std::time::Instant::now();
        let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
        let n = anim.recommended_frames();
        let frames = anim.frames(n).expect("frames");
        let encode = started.elapsed();
        let started = std::time::Instant::now();
        let mut c = Collector::new();
        for f in &frames {
            c.receive("f", f.as_bytes()).expect("accepted");
            if c.progress().complete {
                break;
            }
        }
        assert_eq!(c.finish().expect("rebuilt").data, file);
        let decode = started.elapsed();
        let version = QrMatrix::encode(&frames[0], 1).expect("qr").width();
        // Whole path: render every frame as PNG, then read the PNGs with rqrr until rebuilt.
        // Debug builds (plain `cargo test`) render only the frames a reader needs for 64 KiB, to
        // keep the suite quick; `make bench` (release) renders all of them.
        let render = if cfg!(debug_assertions) && kib > 16 {
            anim.fragment_count() + 10
        } else {
            frames.len()
        };
        let started = std::time::Instant::now();
        let pngs: Vec<Vec<u8>> = frames[..render]
            .iter()
            .enumerate()
            .map(|(i, f)| {
                QrMatrix::encode(f, i + 1)
                    .expect("qr")
                    .to_png(qr::DEFAULT_MODULE_PX, qr::PNG_QUIET_ZONE)
                    .expect("png")
            })
            .collect();
        let png_encode = started.elapsed();
        let started = std::time::Instant::now();
        let mut c = Collector::new();
        let mut read = 0;
        for png in &pngs {
            read += 1;
            for code in qr::read_png_codes(png).expect("png") {
                c.receive("png", &code).expect("accepted");
            }
            if c.progress().complete {
                break;
            }
        }
        assert_eq!(c.finish().expect("rebuilt from PNGs").data, file);
        let png_decode = started.elapsed();
        println!(
            "{kib:>3} KiB file ({} bytes): envelope {} bytes, {} fragments, {} frames written, \
             {} chars/frame, {} modules/side; UR encode {:?}, UR decode {:?}; \
             QR+PNG render of {render} frames {:?}, rqrr decode of {read} PNGs {:?}",
            file.len(),
            anim.envelope_len,
            anim.fragment_count(),
            n,
            frames[0].len(),
            version,
            encode,
            decode,
            png_encode,
            png_decode
        );
    }
}

/// The terminal animation runs until a key press (here Ctrl-C, then another run with `q`).
#[test]
fn terminal_animation_stops_on_key_press() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux missing: install it (make deps does)");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("root.json");
    std::fs::write(&input, realistic_root(4 * 1024, 10)).expect("write");
    let bin = env!("CARGO_BIN_EXE_conclave");
    for (n, key) in ["C-c", "q"].iter().enumerate() {
        let session = format!("conclave-qr-{}-{n}", std::process::id());
        let cmd = format!(
            "{bin} qr encode {} --interval-ms 50; echo EXIT=$?; sleep 60",
            input.display()
        );
        // A tmux server that is just exiting (after the previous session) can refuse a new
        // session for a moment: retry briefly.
        let started = (0..20).any(|_| {
            let ok = Command::new("tmux")
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &session,
                    "-x",
                    "100",
                    "-y",
                    "50",
                    &cmd,
                ])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            ok
        });
        assert!(started, "tmux new-session failed");
        let capture = || {
            let out = Command::new("tmux")
                .args(["capture-pane", "-p", "-t", &session])
                .output()
                .expect("capture");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let wait_for = |needle: &str| {
            for _ in 0..100 {
                let screen = capture();
                if screen.contains(needle) {
                    return screen;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let screen = capture();
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &session])
                .status();
            panic!("{needle:?} did not appear:\n{screen}");
        };
        let screen = wait_for("any key stops");
        assert!(
            screen.contains('▀') && screen.contains("sha256"),
            "{screen}"
        );
        Command::new("tmux")
            .args(["send-keys", "-t", &session, key])
            .status()
            .expect("send-keys");
        let screen = wait_for("EXIT=");
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &session])
            .status();
        assert!(
            screen.contains("EXIT=0") && screen.contains("stopped after"),
            "{screen}"
        );
    }
}
