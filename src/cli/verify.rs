//! `conclave verify` and `conclave inspect`: argument handling and the human-readable reports.

use std::fmt::Write as _;
use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::folder::read_limited;
use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Value};
use crate::tuf::metadata::{AnyMetadata, Delegations, KeyMap, Root};
use crate::tuf::repository::{KeySummary, Report, RootSummary};

use super::{CliError, Outcome};
use crate::text::{show, show_message};

/// A list of input strings, each shown safely, as `["a", "b"]`.
fn show_list(items: &[String]) -> String {
    let shown: Vec<String> = items.iter().map(|i| format!("\"{}\"", show(i))).collect();
    format!("[{}]", shown.join(", "))
}

/// Arguments of `conclave verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The root you already trust (e.g. the root shipped with clients, or the last ceremony's).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: PathBuf,
    /// Folder with the repository's metadata (N.root.json, timestamp.json, snapshot, targets, ...).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// Reference time for expiry, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Largest metadata file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
}

/// Arguments of `conclave inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Any TUF metadata file.
    pub file: PathBuf,
    /// Largest metadata file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
}

/// Parse `--at`, or take the current time.
pub fn reference_time(at: Option<&str>) -> Result<OffsetDateTime, CliError> {
    match at {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| CliError::Usage(format!("--at: \"{s}\" is not an RFC 3339 time ({e})"))),
    }
}

/// Run `conclave verify`.
pub fn run_verify(args: &VerifyArgs) -> Result<Outcome, CliError> {
    let now = reference_time(args.at.as_deref())?;
    let (report, verified) = crate::driver::audit_files::verify_repository_folder(
        &args.trusted_root,
        &args.repo,
        args.max_file_size,
        now,
    )
    .map_err(|e| CliError::Io(e.to_string()))?;
    // The process ends after the report: the system takes this memory back at once.
    std::mem::forget(verified);
    let io_failure = matches!(
        report.failure,
        Some(crate::tuf::verify::VerifyError::Io { .. })
    );
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| CliError::Io(e.to_string()))? + "\n"
    } else {
        render_report(&report)
    };
    if io_failure {
        // Print what was verified before the medium failed; the exit code says "I/O error".
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(crate::text::terminal_safe(&text).as_bytes());
        return Err(CliError::Io(show_message(
            &report.error.unwrap_or_default(),
        )));
    }
    Ok(Outcome {
        stdout: text,
        success: report.is_valid(),
    })
}

fn key_line(out: &mut String, prefix: &str, k: &KeySummary, owner: Option<&str>) {
    let kind = if k.keytype == k.scheme {
        show(&k.keytype)
    } else {
        format!("{}/{}", show(&k.keytype), show(&k.scheme))
    };
    let _ = write!(
        out,
        "{prefix}{}  {kind}  fingerprint {}",
        show(&k.keyid),
        show(&k.fingerprint)
    );
    if let Some(o) = owner {
        let _ = write!(out, "  owner {}", show(o));
    }
    if !k.keyid_is_hash {
        out.push_str("  (key id is not the key's hash)");
    }
    out.push('\n');
}

fn root_block(out: &mut String, r: &RootSummary, prev: Option<&RootSummary>) {
    let _ = writeln!(
        out,
        "  root v{} ({})  expires {}{}",
        r.version,
        show(&r.file),
        show(&r.expires),
        match r.consistent_snapshot {
            Some(true) => "  consistent snapshots",
            _ => "",
        }
    );
    match &r.signed_by_previous {
        Some(prev_ids) => {
            let prev_thr = prev.map_or(0, |p| role_threshold(p, "root"));
            let _ = writeln!(
                out,
                "    signed by {} key(s) of the previous root (threshold {prev_thr}) and {} of its own (threshold {})",
                prev_ids.len(),
                r.signed_by.len(),
                role_threshold(r, "root")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "    self-signed by {} key(s) (threshold {})",
                r.signed_by.len(),
                role_threshold(r, "root")
            );
        }
    }
    if let Some(p) = prev {
        let added: Vec<&KeySummary> = r
            .keys
            .iter()
            .filter(|k| !p.keys.iter().any(|o| o.keyid == k.keyid))
            .collect();
        let removed: Vec<&KeySummary> = p
            .keys
            .iter()
            .filter(|k| !r.keys.iter().any(|n| n.keyid == k.keyid))
            .collect();
        if added.is_empty() && removed.is_empty() {
            out.push_str("    keys unchanged\n");
        } else {
            for k in added {
                key_line(out, "    + added   ", k, None);
            }
            for k in removed {
                key_line(out, "    - removed ", k, None);
            }
        }
    } else {
        out.push_str("    keys:\n");
        for k in &r.keys {
            key_line(out, "      ", k, None);
        }
    }
    for role in &r.roles {
        let signed: Vec<String> = if role.role == "root" {
            role.keyids
                .iter()
                .filter(|k| r.signed_by.contains(k))
                .map(|k| short(k))
                .collect()
        } else {
            Vec::new()
        };
        let _ = write!(
            out,
            "    {:<9} threshold {} of {} key(s): {}",
            show(&role.role),
            role.threshold,
            role.keyids.len(),
            role.keyids
                .iter()
                .map(|k| short(k))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if role.role == "root" {
            let _ = write!(out, "  [signed: {}]", signed.join(" "));
        }
        out.push('\n');
    }
}

fn role_threshold(r: &RootSummary, role: &str) -> u64 {
    r.roles
        .iter()
        .find(|x| x.role == role)
        .map_or(0, |x| x.threshold)
}

/// A key id's first 16 characters, shown safely (key ids come from the metadata).
fn short(k: &str) -> String {
    let end = k.char_indices().nth(16).map_or(k.len(), |(i, _)| i);
    show(&k[..end])
}

/// The human report of `conclave verify`.
pub fn render_report(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Reference time: {}", show(&r.reference_time));
    out.push_str("\nRoot chain\n");
    let mut prev = None;
    for root in r.trusted_root.iter().chain(r.chain.iter()) {
        root_block(&mut out, root, prev);
        prev = Some(root);
    }
    if !r.roles.is_empty() {
        out.push_str("\nRoles\n");
    }
    for role in &r.roles {
        let _ = writeln!(
            out,
            "  {} v{} ({})  expires {}  delegated by {}",
            show(&role.role),
            role.version,
            show(&role.file),
            show(&role.expires),
            show(&role.delegator)
        );
        let _ = writeln!(
            out,
            "    signed by {} of threshold {}: {}",
            role.signed_by.len(),
            role.threshold,
            role.signed_by
                .iter()
                .map(|k| short(k))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (k, why) in &role.not_counted {
            let _ = writeln!(out, "    not counted {}: {}", short(k), show_message(why));
        }
        if let Some(n) = role.target_count {
            let _ = writeln!(out, "    {n} target file(s)");
        }
        if !role.delegates_to.is_empty() {
            let names: Vec<String> = role.delegates_to.iter().map(|d| show(d)).collect();
            let _ = writeln!(out, "    delegates to: {}", names.join(", "));
        }
    }
    if !r.notes.is_empty() {
        out.push_str("\nNotes\n");
        for n in &r.notes {
            let _ = writeln!(out, "  - {}", show_message(n));
        }
    }
    out.push('\n');
    match &r.error {
        None => {
            let _ = writeln!(
                out,
                "VALID: root chain to v{} and every role present verified",
                r.final_root_version().unwrap_or(0)
            );
        }
        Some(e) => {
            let _ = writeln!(out, "FAILED: {}", show_message(e));
        }
    }
    out
}

/// Run `conclave inspect`.
pub fn run_inspect(args: &InspectArgs) -> Result<Outcome, CliError> {
    let bytes = read_limited(&args.file, args.max_file_size).map_err(CliError::Io)?;
    let md = AnyMetadata::from_bytes(&bytes).map_err(|e| {
        CliError::Invalid(format!(
            "{}: {}",
            show(&args.file.display().to_string()),
            show_message(&e.to_string())
        ))
    })?;
    Ok(Outcome {
        stdout: render_inspect(&show(&args.file.display().to_string()), &md),
        success: true,
    })
}

fn keys_block(out: &mut String, keys: &KeyMap) {
    for (id, k) in keys {
        key_line(
            out,
            "  ",
            &KeySummary::new(id, k),
            owner_of(k.unrecognized.get("x-tuf-on-ci-keyowner")),
        );
    }
}

fn owner_of(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

fn delegations_block(out: &mut String, d: &Delegations) {
    out.push_str("delegation keys:\n");
    keys_block(out, &d.keys);
    if let Some(roles) = &d.roles {
        for r in roles {
            let _ = writeln!(
                out,
                "  role \"{}\" threshold {} of {}{}  {}",
                show(&r.name),
                r.role.threshold,
                r.role.keyids.len(),
                if r.terminating { " terminating" } else { "" },
                match (&r.paths, &r.path_hash_prefixes) {
                    (Some(p), _) => format!("paths {}", show_list(p)),
                    (None, Some(h)) => format!("path_hash_prefixes {}", show_list(h)),
                    _ => String::new(),
                }
            );
        }
    }
    if let Some(s) = &d.succinct_roles {
        let _ = writeln!(
            out,
            "  succinct hash bins: {} bins {}..{} (bit_length {}), threshold {} of {}",
            s.bin_count(),
            show(&s.bin_name(0)),
            show(&s.bin_name(s.bin_count() - 1)),
            s.bit_length,
            s.role.threshold,
            s.role.keyids.len()
        );
    }
}

fn root_inspect(out: &mut String, root: &Root) {
    out.push_str("keys:\n");
    keys_block(out, &root.keys);
    out.push_str("roles:\n");
    for (ty, role) in &root.roles {
        let _ = writeln!(
            out,
            "  {:<9} threshold {} of {}: {}",
            ty.as_str(),
            role.threshold,
            role.keyids.len(),
            role.keyids
                .iter()
                .map(|k| show(k.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

/// The human summary of `conclave inspect`.
pub fn render_inspect(file: &str, md: &AnyMetadata) -> String {
    let mut out = String::new();
    let c = md.common();
    let digest = hex::encode(sha2_256(md.signed_bytes()));
    let _ = writeln!(out, "{file}: {} v{}", md.role_type(), c.version);
    let _ = writeln!(
        out,
        "spec_version {}  expires {}",
        show(&c.spec_version),
        show(&c.expires.raw)
    );
    let _ = writeln!(
        out,
        "signed part: {} canonical bytes, SHA-256 {digest}",
        md.signed_bytes().len()
    );
    match md {
        AnyMetadata::Root(m) => root_inspect(&mut out, m.signed()),
        AnyMetadata::Targets(m) => {
            let t = m.signed();
            let _ = writeln!(out, "{} target file(s)", t.targets.len());
            for (name, tf) in t.target_files().take(20) {
                match tf {
                    Some(tf) => {
                        let _ = writeln!(out, "  {}  {} bytes", show(name), tf.length);
                    }
                    None => {
                        let _ = writeln!(out, "  {}  (unreadable entry)", show(name));
                    }
                }
            }
            if t.targets.len() > 20 {
                let _ = writeln!(out, "  ... and {} more", t.targets.len() - 20);
            }
            if let Some(d) = &t.delegations {
                delegations_block(&mut out, d);
            }
        }
        AnyMetadata::Snapshot(m) => {
            for (name, mf) in &m.signed().meta {
                let _ = writeln!(out, "  {} v{}", show(name), mf.version);
            }
        }
        AnyMetadata::Timestamp(m) => {
            let s = &m.signed().snapshot_meta;
            let _ = writeln!(
                out,
                "  snapshot.json v{}{}",
                s.version,
                s.length.map(|l| format!(", {l} bytes")).unwrap_or_default()
            );
        }
    }
    out.push_str("signatures:\n");
    for s in md.signatures() {
        let _ = writeln!(
            out,
            "  {}  {}",
            show(s.keyid.as_str()),
            if s.sig.is_empty() {
                "(empty slot)".to_string()
            } else {
                format!("{} bytes", s.sig.len() / 2)
            }
        );
    }
    out
}

fn sha2_256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}
