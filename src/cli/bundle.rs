//! `conclave bundle merge`: add keyholders' detached signatures (bundles) to a metadata file.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::folder::{read_limited, write_new_file};
use crate::transport::bundle::{self, Bundle, MAX_BUNDLE_SIZE};
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::metadata::{AnyMetadata, Metadata, Root};
use crate::tuf::verify::ThresholdResult;

use super::{CliError, Outcome};

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
pub fn run(cmd: &BundleCommand) -> Result<Outcome, CliError> {
    let BundleCommand::Merge(a) = cmd;
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
        let bundle = Bundle::from_bytes(&name, &b).map_err(|e| CliError::Invalid(e.to_string()))?;
        bundles.push((name, bundle));
    }
    let report = bundle::merge(&mut md, trusted.as_ref(), &bundles).map_err(|errors| {
        CliError::Invalid(format!(
            "no signature added; refused:\n{}",
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    })?;
    write_new_file(&a.out, &bundle::file_bytes(&md))
        .map_err(|e| CliError::Io(format!("{}: {e}", a.out.display())))?;
    let mut out = String::new();
    for (name, b) in &bundles {
        let _ = writeln!(out, "added {name}: {b}");
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
