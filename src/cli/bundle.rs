//! `conclave bundle export`: a keyholder signs metadata with their token and writes a bundle
//! (a detached signature) instead of a whole file; `conclave bundle merge`: add keyholders'
//! bundles to a metadata file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::folder::{read_limited, write_new_file};
use crate::transcript::display::hex_groups;
use crate::transport::bundle::{self, Bundle, MAX_BUNDLE_SIZE};
use crate::transport::qr::{Animation, DEFAULT_FRAGMENT_SIZE, EncodeOptions};
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::metadata::{AnyMetadata, Metadata, Root};
use crate::tuf::verify::ThresholdResult;

use super::token::{ModuleArg, sign_with_token};
use super::{CliError, Outcome};
use crate::driver::SignRequest;

/// Arguments of `conclave bundle export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    pub token: Option<String>,
    /// The key on the token, by label or TUF key id (or a unique prefix of 8+ hex digits).
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    pub key: String,
    /// The metadata to sign (only read; the signature goes into the bundle).
    #[arg(long, value_name = "FILE")]
    pub metadata: PathBuf,
    /// Trusted root: names the keys of targets/snapshot/timestamp, and the old root keys when
    /// signing a new root.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Where to write the bundle (must not exist).
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
    /// The keyholder's name, for the prompt ("PIN for token ... of keyholder alice").
    #[arg(long, value_name = "NAME")]
    pub keyholder: Option<String>,
}

/// Arguments of `conclave bundle merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The metadata the bundles sign (unchanged; the result goes to --out).
    #[arg(long, value_name = "FILE")]
    pub metadata: PathBuf,
    /// The root trusted before this one: for a root rotation its root keys may sign too; for
    /// targets, snapshot and timestamp it names the keys that may sign.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Where to write the metadata with the signatures added (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Bundle files.
    #[arg(required = true, value_name = "BUNDLE")]
    pub bundles: Vec<PathBuf>,
}

/// `conclave bundle ...`
#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    /// Sign metadata with a token key and write the signature as a bundle (a few hundred bytes:
    /// one QR frame with `conclave qr encode --fragment-size 400`, two at the default size).
    Export(ExportArgs),
    /// Check bundles against a metadata file and add their signatures (all or none).
    Merge(MergeArgs),
}

fn meter(out: &mut String, label: &str, r: &ThresholdResult) {
    let _ = writeln!(
        out,
        "{label}: {} of threshold {} {}",
        r.signed.len(),
        r.threshold,
        if r.verified() {
            "(met)"
        } else {
            "(not met yet)"
        }
    );
}

/// Run a `bundle` subcommand.
pub fn run(cmd: &BundleCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        BundleCommand::Export(a) => export(a, config),
        BundleCommand::Merge(a) => merge(a),
    }
}

/// The output must be a new file in an existing folder: checked before the token is touched.
fn check_new_output(out: &Path) -> Result<(), CliError> {
    if out.symlink_metadata().is_ok() {
        return Err(CliError::Usage(format!(
            "{} exists already; Conclave never overwrites (choose another --out)",
            out.display()
        )));
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--out {}: folder {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    Ok(())
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

fn export(a: &ExportArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    check_new_output(&a.out)?;
    let signed = sign_with_token(
        &SignRequest {
            token: a.token.as_deref(),
            key: &a.key,
            keyholder: a.keyholder.as_deref(),
            metadata: &a.metadata,
            trusted_root: a.trusted_root.as_deref(),
            force: false,
        },
        &a.module,
        config,
        a.pin_stdin,
    )?;
    // Without --force the key is named by a role, so there is at least one key id.
    let Some(keyid) = signed.keyids.first().cloned() else {
        return Err(CliError::Invalid(format!(
            "no role of {} names the key; nothing written",
            signed.what
        )));
    };
    let b = Bundle::new(
        &signed.md,
        keyid.clone(),
        &signed.sig,
        Some(signed.token.serial.clone()),
        time::OffsetDateTime::now_utc(),
    );
    let bytes = b.to_bytes();
    // What is written is what merge will read: parse it back and compare before writing.
    let name = a.out.display().to_string();
    let back = Bundle::from_bytes(&name, &bytes)
        .map_err(|e| CliError::Usage(format!("internal error: the bundle does not parse: {e}")))?;
    if back != b || back.signed_sha256 != hex::encode(sha256(signed.md.signed_bytes())) {
        return Err(CliError::Usage(
            "internal error: the bundle read back differs from the one made; nothing written"
                .into(),
        ));
    }
    let fragments = |fragment_size: usize| {
        Animation::new(
            &bytes,
            &EncodeOptions {
                fragment_size,
                ..EncodeOptions::default()
            },
        )
        .map(|anim| anim.fragment_count())
        .map_err(|e| CliError::Usage(format!("internal error: {e}")))
    };
    let at_default = fragments(crate::transport::qr::one_frame_size(
        &bytes,
        DEFAULT_FRAGMENT_SIZE,
    ))?;
    write_new_file(&a.out, &bytes).map_err(|e| CliError::Io(format!("{name}: {e}")))?;

    let mut out = format!(
        "signed {} with key \"{}\" on {} in {} ms\n",
        signed.what,
        crate::text::show(&signed.key_label),
        crate::text::show(&signed.token.to_string()),
        signed.took.as_millis()
    );
    for n in &signed.named_by {
        let _ = writeln!(out, "  key named by the {n}");
    }
    if signed.keyids.len() > 1 {
        let others: Vec<String> = signed.keyids[1..].iter().map(|k| k.to_string()).collect();
        let _ = writeln!(
            out,
            "  note: the key is also listed as {}; a bundle carries one key id ({keyid})",
            others.join(", ")
        );
    }
    let _ = writeln!(out, "bundle: {b}");
    let _ = writeln!(
        out,
        "  signed bytes SHA-256  {}",
        hex_groups(&sha256(signed.md.signed_bytes()))
    );
    let _ = writeln!(
        out,
        "  bundle file SHA-256   {}",
        hex_groups(&sha256(&bytes))
    );
    let _ = writeln!(
        out,
        "  {} bytes; `conclave qr encode {name}` shows it as {at_default} QR frame(s)",
        bytes.len()
    );
    let _ = writeln!(out, "  written to {name}");
    let _ = writeln!(
        out,
        "Carry the bundle to the appliance that merges (conclave bundle merge); compare the bundle's SHA-256 there."
    );
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}

fn merge(a: &MergeArgs) -> Result<Outcome, CliError> {
    let bytes = read_limited(&a.metadata, DEFAULT_MAX_FILE_SIZE).map_err(CliError::Io)?;
    let mut md = AnyMetadata::from_bytes(&bytes)
        .map_err(|e| CliError::Invalid(format!("{}: {e}", a.metadata.display())))?;
    let trusted = match &a.trusted_root {
        None => None,
        Some(p) => {
            let b = read_limited(p, DEFAULT_MAX_FILE_SIZE).map_err(CliError::Io)?;
            let r = Metadata::<Root>::from_bytes(&b)
                .map_err(|e| CliError::Invalid(format!("{}: {e}", p.display())))?;
            Some(r.signed().clone())
        }
    };
    let mut bundles = Vec::new();
    for p in &a.bundles {
        let b = read_limited(p, MAX_BUNDLE_SIZE).map_err(CliError::Io)?;
        let name = p.display().to_string();
        let bundle = Bundle::from_bytes(&name, &b)
            .map_err(|e| CliError::Invalid(crate::text::show_message(&e.to_string())))?;
        bundles.push((name, bundle));
    }
    let report = bundle::merge(&mut md, trusted.as_ref(), &bundles).map_err(|errors| {
        CliError::Invalid(format!(
            "no signature added; refused:\n{}",
            errors
                .iter()
                .map(|e| format!("  {}", crate::text::show_message(&e.to_string())))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    })?;
    write_new_file(&a.out, &bundle::file_bytes(&md))
        .map_err(|e| CliError::Io(format!("{}: {e}", a.out.display())))?;
    let mut out = String::new();
    for (name, b) in &bundles {
        let _ = writeln!(out, "added {}: {b}", crate::text::show(name));
    }
    meter(&mut out, "signatures counted", &report.threshold);
    if let Some(prev) = &report.by_previous {
        meter(&mut out, "signatures counted by the previous root", prev);
    }
    let _ = writeln!(out, "wrote {}", a.out.display());
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}
