//! `conclave bundle export`: a keyholder signs metadata with their token and writes a bundle
//! (a detached signature) instead of a whole file; `conclave bundle merge`: add keyholders'
//! bundles to a metadata file. Arguments and rendering only: the files, the token work and
//! the checks are [`crate::driver::export_bundle`] and [`crate::driver::merge_bundles`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::driver::{self, BundleExported, Merged, SignRequest, SystemClock};
use crate::transcript::display::hex_groups;
use crate::transcript::record::sha256;
use crate::tuf::verify::ThresholdResult;

use super::token::{ModuleArg, terminal};
use super::{CliError, Outcome};

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

fn export(a: &ExportArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let BundleExported {
        signed,
        keyid,
        bundle: b,
        bytes,
        qr_frames: at_default,
    } = driver::export_bundle(
        &SignRequest {
            token: a.token.as_deref(),
            key: &a.key,
            keyholder: a.keyholder.as_deref(),
            metadata: &a.metadata,
            trusted_root: a.trusted_root.as_deref(),
            force: false,
        },
        &a.out,
        &mut || Ok(Box::new(a.module.open_typed(config)?)),
        &mut terminal(a.pin_stdin),
        &SystemClock,
    )?;
    let name = a.out.display().to_string();
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
    let Merged { bundles, report } =
        driver::merge_bundles(&a.metadata, a.trusted_root.as_deref(), &a.bundles, &a.out)?;
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
