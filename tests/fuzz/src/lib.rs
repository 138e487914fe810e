//! Helpers shared by the fuzz targets: the file format of a repository input and the fixed key
//! the `repository_signed` target signs with.

use std::collections::HashMap;

use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Algorithm;
use time::OffsetDateTime;

/// Marker that starts each file of a repository input: `=== NAME\n` then the bytes.
pub const SECTION: &[u8] = b"=== ";

/// The reference time used when an input does not give one (`@UNIX_SECONDS\n` first line).
pub const DEFAULT_NOW: i64 = 1_739_102_528; // 2025-02-09T12:02:08Z

/// A repository folder written as one input: an optional `@UNIX_SECONDS` line, then sections
/// `=== NAME\n<bytes>`. The first section is the trusted root; every section is also a file of
/// the folder.
pub struct RepoInput {
    /// Reference time.
    pub now: OffsetDateTime,
    /// Files in order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl RepoInput {
    /// Split the input; `None` when it has no section.
    pub fn parse(data: &[u8]) -> Option<RepoInput> {
        let mut rest = data;
        let mut now = OffsetDateTime::from_unix_timestamp(DEFAULT_NOW).ok()?;
        if let Some(line) = rest.strip_prefix(b"@") {
            let end = line.iter().position(|&b| b == b'\n')?;
            let secs: i64 = std::str::from_utf8(&line[..end]).ok()?.parse().ok()?;
            now = OffsetDateTime::from_unix_timestamp(secs).ok()?;
            rest = &line[end + 1..];
        }
        let mut files = Vec::new();
        let mut rest = rest.strip_prefix(SECTION)?;
        loop {
            let nl = rest.iter().position(|&b| b == b'\n')?;
            let name = String::from_utf8_lossy(&rest[..nl]).into_owned();
            let body = &rest[nl + 1..];
            let next = find(body, b"\n=== ");
            match next {
                Some(i) => {
                    files.push((name, body[..i].to_vec()));
                    rest = &body[i + 1 + SECTION.len()..];
                }
                None => {
                    files.push((name, body.to_vec()));
                    break;
                }
            }
        }
        Some(RepoInput { now, files })
    }

    /// The folder as the in-memory metadata source.
    pub fn source(&self) -> HashMap<String, Vec<u8>> {
        self.files.iter().cloned().collect()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The Ed25519 key every role of a `repository_signed` input is signed with.
pub fn fuzz_signer() -> SoftwareSigner {
    SoftwareSigner::from_seed(Algorithm::Ed25519, &[7u8; 32]).expect("a fixed Ed25519 seed")
}

/// Replace the signatures of a metadata file by one signature of `signer` over its canonical
/// `signed` bytes, so that mutations of the content reach the checks after the signature
/// check. Bytes that are not a metadata object are returned as they are.
pub fn resign(bytes: &[u8], signer: &mut SoftwareSigner) -> Vec<u8> {
    let Ok(Value::Object(mut m)) = Value::parse(bytes) else {
        return bytes.to_vec();
    };
    let Some(signed) = m.get("signed") else {
        return bytes.to_vec();
    };
    let Ok(sig) = signer.sign(&signed.canonical_bytes()) else {
        return bytes.to_vec();
    };
    let mut s = conclave::tuf::canonical::Map::new();
    s.insert("keyid".into(), signer.key().key_id().0.into());
    s.insert("sig".into(), hex_encode(&sig).into());
    m.insert("signatures".into(), Value::Array(vec![Value::Object(s)]));
    Value::Object(m).to_pretty_json().into_bytes()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
