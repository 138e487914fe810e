//! Writes the seed corpus of every fuzz target into OUT/<target>/ from the repository's own test
//! data (tests/data, ceremony-scripts) plus generated inputs (QR frames and images, bundles, a
//! repository signed with the `repository_signed` key). Run by `make fuzz`:
//! `cargo run --example seeds -- REPO_ROOT OUT`.

use std::fs;
use std::path::{Path, PathBuf};

use conclave::signer::Signer;
use conclave::transport::bundle::Bundle;
use conclave::transport::qr::{Animation, EncodeOptions, QrMatrix};
use conclave::tuf::canonical::Value;
use conclave::tuf::metadata::AnyMetadata;
use conclave_fuzz::{SECTION, fuzz_signer};
use time::OffsetDateTime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, out] = args.as_slice() else {
        return Err("usage: seeds REPO_ROOT OUT".into());
    };
    let repo = Path::new(repo);
    let out = Path::new(out);
    let data = repo.join("tests/data");
    let mut json = Vec::new();
    walk(&data, &mut |p| {
        if p.extension().is_some_and(|e| e == "json") {
            json.push(p.to_path_buf());
        }
    })?;
    json.sort();
    let mut n = 0;
    let mut put = |target: &str, name: &str, bytes: &[u8]| -> Res<()> {
        let dir = out.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)?;
        n += 1;
        Ok(())
    };

    // Metadata, canonical bytes, keys.
    for (i, p) in json.iter().enumerate() {
        let bytes = fs::read(p)?;
        put("metadata", &format!("vec-{i}"), &bytes)?;
        if let Ok(v) = Value::parse(&bytes) {
            put("canonical", &format!("vec-{i}"), &v.canonical_bytes())?;
            let keys = key_objects(&v);
            for (j, k) in keys.iter().enumerate() {
                let mut obj = vec![j as u8];
                obj.extend_from_slice(&k.canonical_bytes());
                put("key", &format!("obj-{i}-{j}"), &obj)?;
                if let Some(public) = k
                    .as_object()
                    .and_then(|m| m.get("keyval"))
                    .and_then(Value::as_object)
                    .and_then(|m| m.get("public"))
                    .and_then(Value::as_str)
                {
                    let scheme = k
                        .as_object()
                        .and_then(|m| m.get("scheme"))
                        .and_then(Value::as_str);
                    let selector: u8 = match scheme {
                        Some("ed25519") => 0,
                        Some("ecdsa-sha2-nistp256") => 1,
                        Some("ecdsa-sha2-nistp384") => 3,
                        _ => 4,
                    };
                    let mut raw = vec![selector];
                    raw.extend_from_slice(public.as_bytes());
                    put("key", &format!("pub-{i}-{j}"), &raw)?;
                }
            }
        }
    }

    // Repository folders: every folder holding a root, first root as trusted.
    let mut dirs: Vec<PathBuf> = json
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for (i, dir) in dirs.iter().enumerate() {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let trusted = files
            .iter()
            .find(|p| name(p) == "1.root.json")
            .or_else(|| files.iter().find(|p| name(p) == "root.json"));
        let Some(trusted) = trusted.cloned() else {
            continue;
        };
        let mut input = Vec::new();
        let faketime = dir.parent().map(|d| d.join("faketime"));
        if let Some(t) = faketime.and_then(|f| fs::read_to_string(f).ok()) {
            let fmt = time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]+00:00"
            );
            if let Ok(dt) = time::PrimitiveDateTime::parse(t.trim(), &fmt) {
                input.extend_from_slice(
                    format!("@{}\n", dt.assume_utc().unix_timestamp()).as_bytes(),
                );
            }
        }
        for p in std::iter::once(&trusted).chain(files.iter().filter(|p| **p != trusted)) {
            input.extend_from_slice(SECTION);
            input.extend_from_slice(name(p).as_bytes());
            input.push(b'\n');
            input.extend_from_slice(&fs::read(p)?);
            input.push(b'\n');
        }
        put("repository", &format!("dir-{i}"), &input)?;
    }

    // A repository signed by the fuzz key: root rotation, delegation, two targets.
    let signed = signed_repository()?;
    check_signed_repository(&signed)?;
    put("repository_signed", "basic", &signed)?;
    put("repository", "fuzz-key", &signed)?;

    // Ceremony scripts.
    for e in fs::read_dir(repo.join("ceremony-scripts"))? {
        let p = e?.path();
        if p.extension().is_some_and(|e| e == "toml") {
            put("script", &name_of(&p), &fs::read(&p)?)?;
        }
    }

    // Transcripts.
    let mut transcripts = Vec::new();
    walk(&data.join("transcript"), &mut |p| {
        transcripts.push(p.to_path_buf())
    })?;
    for p in transcripts {
        if p.extension().is_some_and(|e| e == "jsonl") {
            put("transcript", &name_of(&p), &fs::read(&p)?)?;
        }
    }

    // QR frames and images, bundles, made from a real root.
    let root_file =
        data.join("vectors/tuf-conformance-static/sigstore-root-signing/metadata/5.root.json");
    let root = fs::read(&root_file)?;
    for (size, frag) in [(root.len(), 250), (200, 40), (30, 10)] {
        let file = &root[..size.min(root.len())];
        let mut a = Animation::new(
            file,
            &EncodeOptions {
                fragment_size: frag,
                module_px: 4,
            },
        )?;
        let count = a.recommended_frames();
        let frames = a.frames(count)?;
        put(
            "qr_frames",
            &format!("frames-{size}-{frag}"),
            frames.join("\n").as_bytes(),
        )?;
        if size <= 200 {
            let png = QrMatrix::encode(&frames[0], 0)?.to_png(4, 4)?;
            put("qr_png", &format!("frame-{size}-{frag}.png"), &png)?;
        }
    }
    let md = AnyMetadata::from_bytes(&root)?;
    let AnyMetadata::Root(r) = &md else {
        return Err("5.root.json is not a root".into());
    };
    let keyid = r
        .signatures
        .first()
        .map(|s| s.keyid.clone())
        .ok_or("no signature")?;
    let time = OffsetDateTime::from_unix_timestamp(1_739_102_528)?;
    for (i, sig) in [vec![0x30u8; 70], vec![1u8; 64]].iter().enumerate() {
        let b = Bundle::new(&md, keyid.clone(), sig, Some("0123456789".into()), time);
        put("bundle", &format!("bundle-{i}"), &b.to_bytes())?;
    }
    eprintln!("seeds: {n} files in {}", out.display());
    Ok(())
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Res<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, f)?;
        } else {
            f(&p);
        }
    }
    Ok(())
}

/// Key objects of a root or a targets role with delegations.
fn key_objects(v: &Value) -> Vec<Value> {
    let signed = v
        .as_object()
        .and_then(|m| m.get("signed"))
        .and_then(Value::as_object);
    let Some(signed) = signed else {
        return Vec::new();
    };
    let keys = signed.get("keys").or_else(|| {
        signed
            .get("delegations")
            .and_then(Value::as_object)
            .and_then(|d| d.get("keys"))
    });
    keys.and_then(Value::as_object)
        .map(|m| m.iter().map(|(_, k)| k.clone()).collect())
        .unwrap_or_default()
}

fn signed_repository() -> Res<Vec<u8>> {
    let signer = fuzz_signer();
    let key = signer.key().to_value().to_pretty_json();
    let kid = signer.key().key_id().0;
    let sha = |b: &[u8]| {
        conclave::transcript::record::sha256(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let expires = "2030-01-01T00:00:00Z";
    let root = |v: u64| {
        let roles: Vec<String> = ["root", "timestamp", "snapshot", "targets"]
            .iter()
            .map(|r| format!("\"{r}\": {{\"keyids\": [\"{kid}\"], \"threshold\": 1}}"))
            .collect();
        format!(
            "{{\"signatures\": [], \"signed\": {{\"_type\": \"root\", \"spec_version\": \"1.0.31\", \"version\": {v}, \"expires\": \"{expires}\", \"consistent_snapshot\": false, \"keys\": {{\"{kid}\": {key}}}, \"roles\": {{{}}}}}}}",
            roles.join(", ")
        )
    };
    let target = |content: &[u8]| {
        format!(
            "{{\"length\": {}, \"hashes\": {{\"sha256\": \"{}\"}}}}",
            content.len(),
            sha(content)
        )
    };
    let targets = format!(
        "{{\"signatures\": [], \"signed\": {{\"_type\": \"targets\", \"spec_version\": \"1.0.31\", \"version\": 1, \"expires\": \"{expires}\", \"targets\": {{\"file.txt\": {}}}, \"delegations\": {{\"keys\": {{\"{kid}\": {key}}}, \"roles\": [{{\"name\": \"a\", \"keyids\": [\"{kid}\"], \"threshold\": 1, \"terminating\": true, \"paths\": [\"a/*\"]}}, {{\"name\": \"b\", \"keyids\": [\"{kid}\"], \"threshold\": 1, \"terminating\": false, \"path_hash_prefixes\": [\"00\", \"8\"]}}]}}}}}}",
        target(b"hello")
    );
    let a = format!(
        "{{\"signatures\": [], \"signed\": {{\"_type\": \"targets\", \"spec_version\": \"1.0.31\", \"version\": 2, \"expires\": \"{expires}\", \"targets\": {{\"a/x.tgz\": {}}}}}}}",
        target(b"x")
    );
    let b = format!(
        "{{\"signatures\": [], \"signed\": {{\"_type\": \"targets\", \"spec_version\": \"1.0.31\", \"version\": 1, \"expires\": \"{expires}\", \"targets\": {{}}, \"delegations\": {{\"keys\": {{}}, \"succinct_roles\": {{\"keyids\": [\"{kid}\"], \"threshold\": 1, \"bit_length\": 2, \"name_prefix\": \"bin\"}}}}}}}}"
    );
    let snapshot = format!(
        "{{\"signatures\": [], \"signed\": {{\"_type\": \"snapshot\", \"spec_version\": \"1.0.31\", \"version\": 3, \"expires\": \"{expires}\", \"meta\": {{\"targets.json\": {{\"version\": 1}}, \"a.json\": {{\"version\": 2}}, \"b.json\": {{\"version\": 1}}}}}}}}"
    );
    // Lengths and hashes of snapshot.json change when it is re-signed: the timestamp leaves
    // them out (optional in TUF).
    let timestamp_plain = format!(
        "{{\"signatures\": [], \"signed\": {{\"_type\": \"timestamp\", \"spec_version\": \"1.0.31\", \"version\": 4, \"expires\": \"{expires}\", \"meta\": {{\"snapshot.json\": {{\"version\": 3}}}}}}}}"
    );
    let mut out = Vec::new();
    for (name, body) in [
        ("1.root.json", root(1)),
        ("2.root.json", root(2)),
        ("timestamp.json", timestamp_plain),
        ("snapshot.json", snapshot),
        ("targets.json", targets),
        ("a.json", a),
        ("b.json", b),
    ] {
        Value::parse(body.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
        out.extend_from_slice(SECTION);
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(body.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// The signed seed must verify once re-signed, or the fuzzer starts from a rejected repository.
fn check_signed_repository(input: &[u8]) -> Res<()> {
    let mut input = conclave_fuzz::RepoInput::parse(input).ok_or("seed does not split")?;
    let mut signer = fuzz_signer();
    for (_, bytes) in input.files.iter_mut() {
        *bytes = conclave_fuzz::resign(bytes, &mut signer);
    }
    let (name, root) = &input.files[0];
    let report =
        conclave::tuf::repository::verify_repository(name, root, &input.source(), input.now);
    if !report.is_valid() {
        return Err(format!(
            "the signed seed repository does not verify: {:?}",
            report.error
        )
        .into());
    }
    Ok(())
}
