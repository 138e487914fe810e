//! `conclave rstuf review|sign`: Repository Service for TUF (RSTUF) files on the offline side.
//! `review` checks and shows a ceremony-payload.json, an update-payload.json or RSTUF's pending
//! file (`GET /api/v1/metadata/sign/`); `sign` reviews a pending root against the root this
//! appliance trusts and writes one `sign-payload.json` signed with a keyholder's token
//! (Distributed Asynchronous Signing). docs/pipeline-rstuf.md.

use std::path::{Path, PathBuf};

use super::token::{ModuleArg, open_signing_key, terminal};
use super::{CliError, Outcome};
use crate::driver;
use crate::folder::read_limited;
use crate::text::{show, show_message};
use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Value};
use crate::tuf::metadata::{Metadata, Root};
use crate::tuf::rstuf::{self, Pending, PendingReview};

/// Subcommands of `conclave rstuf`.
#[derive(Debug, clap::Subcommand)]
pub enum RstufCommand {
    /// Check and show an RSTUF file: ceremony-payload.json, update-payload.json, or the pending
    /// file of RSTUF's API (GET /api/v1/metadata/sign/).
    Review(ReviewArgs),
    /// Review RSTUF's pending root against the trusted root and sign it with a key on a token:
    /// writes sign-payload.json for `rstuf admin send sign` / POST /api/v1/metadata/sign.
    Sign(SignArgs),
}

/// `conclave rstuf review`
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The file.
    pub file: PathBuf,
}

/// `conclave rstuf sign`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// RSTUF's pending file (the JSON response of GET /api/v1/metadata/sign/).
    #[arg(long, value_name = "FILE")]
    pub pending: PathBuf,
    /// The root this appliance trusts: the pending file's trusted_root must be it (same signed
    /// bytes); for a pending root v1, the pending root itself (the bootstrap's 1.root.json).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: PathBuf,
    /// The signature payload (a new file).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The PKCS#11 module.
    #[command(flatten)]
    pub module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    pub token: Option<String>,
    /// The key on the token, by label or TUF key id.
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    pub key: String,
    /// The keyholder's name, for the prompt.
    #[arg(long, value_name = "NAME")]
    pub keyholder: Option<String>,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

/// Run `conclave rstuf ...`.
pub fn run(cmd: &RstufCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        RstufCommand::Review(a) => review(a),
        RstufCommand::Sign(a) => sign(a, config),
    }
}

fn invalid(e: rstuf::RstufError) -> CliError {
    CliError::Invalid(show_message(&e.to_string()))
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    read_limited(path, DEFAULT_MAX_FILE_SIZE).map_err(CliError::Io)
}

/// What an RSTUF file holds, checked: the pending root (as a pending file) and its review.
fn load(path: &Path, bytes: &[u8]) -> Result<(String, Pending, PendingReview), CliError> {
    let file = path.display().to_string();
    let v = Value::parse(bytes).map_err(|e| {
        CliError::Invalid(format!(
            "{file}: $: not JSON: {}",
            show_message(&e.to_string())
        ))
    })?;
    let top = v.as_object();
    let (kind, pending) = if top.is_some_and(|m| m.contains_key("data")) {
        (
            "RSTUF pending file",
            rstuf::parse_pending(&file, bytes).map_err(invalid)?,
        )
    } else {
        let root = top
            .and_then(|m| m.get("metadata"))
            .and_then(Value::as_object)
            .and_then(|m| m.get("root"))
            .ok_or_else(|| CliError::Invalid(format!("{file}: $.metadata.root: missing")))?;
        let root = Metadata::<Root>::from_value(root.clone()).map_err(|e| {
            CliError::Invalid(format!(
                "{file}: $.metadata.root: {}",
                show_message(&e.to_string())
            ))
        })?;
        let kind = if top.is_some_and(|m| m.contains_key("settings")) {
            "RSTUF ceremony payload (bootstrap)"
        } else {
            "RSTUF update payload"
        };
        if kind.ends_with("(bootstrap)") {
            // Every rule of the payload: settings, timeout, root v1, model, a signature.
            rstuf::read_ceremony_payload(&file, bytes).map_err(invalid)?;
        } else {
            // The pure core's checks of an update payload (version, model, a signature).
            rstuf::update_payload(&root).map_err(invalid)?;
        }
        (
            kind,
            Pending {
                root,
                trusted: None,
                other_roles: Vec::new(),
            },
        )
    };
    let review = rstuf::review_pending(&file, &pending).map_err(invalid)?;
    Ok((kind.to_string(), pending, review))
}

fn describe(path: &Path, kind: &str, p: &Pending, r: &PendingReview) -> String {
    let mut out = format!(
        "{kind} {}\n  SHA-256 of root's signed bytes: {}\n",
        show(&path.display().to_string()),
        hex::encode(p.root.signed_digest())
    );
    for l in &r.lines {
        out.push_str(&format!("  {l}\n"));
    }
    out.push_str(if r.complete() {
        "  root meets its thresholds\n"
    } else {
        "  root is pending: more root signatures are needed\n"
    });
    out
}

fn review(a: &ReviewArgs) -> Result<Outcome, CliError> {
    let bytes = read(&a.file)?;
    let (kind, p, r) = load(&a.file, &bytes)?;
    if p.root.signed().common.version == 1 && r.by_self.signed.is_empty() {
        return Err(CliError::Invalid(format!(
            "{}: $.metadata.root.signatures: no valid signature by a root key",
            a.file.display()
        )));
    }
    Ok(Outcome {
        stdout: describe(&a.file, &kind, &p, &r),
        success: true,
    })
}

fn sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    // Everything checked before the PIN: the output, the pending file, its anchor, the key.
    if a.out.symlink_metadata().is_ok() {
        return Err(CliError::Usage(format!(
            "{} exists; Conclave writes the signature payload to a new file",
            a.out.display()
        )));
    }
    let bytes = read(&a.pending)?;
    let file = a.pending.display().to_string();
    let pending = rstuf::parse_pending(&file, &bytes).map_err(invalid)?;
    let review = rstuf::review_pending(&file, &pending).map_err(invalid)?;
    let trusted_bytes = read(&a.trusted_root)?;
    let trusted = Metadata::<Root>::from_bytes(&trusted_bytes).map_err(|e| {
        CliError::Invalid(format!(
            "{}: {}",
            a.trusted_root.display(),
            show_message(&e.to_string())
        ))
    })?;
    if pending.trusted.is_some() {
        // The trusted_root is the appliance's root or its next version signed by it.
        rstuf::check_anchor(
            &file,
            &pending,
            &a.trusted_root.display().to_string(),
            &trusted,
        )
        .map_err(invalid)?;
    } else if pending.root.signed_bytes() != trusted.signed_bytes() {
        return Err(CliError::Invalid(format!(
            "{file}: $.data.metadata.root: not the root this appliance trusts ({}): refusing to sign",
            a.trusted_root.display()
        )));
    }
    if let Some(t) = &pending.trusted {
        // The anchor is trusted only at its own threshold (the bootstrap's partial root v1 is
        // the exception: it is the pending root itself).
        crate::tuf::verify::trust_root(&a.trusted_root.display().to_string(), &t.to_file_bytes())
            .map_err(|e| CliError::Invalid(show_message(&e.to_string())))?;
    }
    let mut out = describe(&a.pending, "RSTUF pending file", &pending, &review);
    if review.complete() {
        return Err(CliError::Invalid(format!(
            "{file}: $.data.metadata.root.signatures: the pending root already meets its thresholds; nothing to sign"
        )));
    }
    let wanted = review.still_to_sign();
    let k = open_signing_key(
        &a.module,
        config,
        a.token.as_deref(),
        &a.key,
        a.keyholder.as_deref(),
        a.pin_stdin,
        "sign RSTUF's pending root",
    )?;
    let (token, label) = (k.token.clone(), k.key.label.clone());
    let keyid =
        driver::sign_pending_root(k, &mut terminal(a.pin_stdin), &pending, &wanted, &a.out)?;
    let root = pending.root.signed();
    out.push_str(&format!(
        "signed root v{} with key \"{}\" on {token} (key id {keyid})\n  written to {}\n",
        root.common.version,
        show(&label),
        a.out.display()
    ));
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}
