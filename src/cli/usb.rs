//! `conclave usb list|export|import`: removable media through the library in
//! `transport::usb` (discovery, atomic export with read-back, import listing).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::transport::usb::{
    self, DEFAULT_IMPORT_LIMIT, ExportOptions, RealSystem, StdFs, UsbError,
};

use super::{CliError, Outcome};
use crate::text::show;

/// `conclave usb ...`
#[derive(Debug, clap::Subcommand)]
pub enum UsbCommand {
    /// List candidate media: mounted filesystems on removable or USB block devices.
    List,
    /// Copy files into a folder (a mounted stick): each written under a temporary name,
    /// fsynced, renamed, read back and compared; SHA256SUMS written last; then sync.
    Export {
        /// Destination folder (e.g. a mount point from `conclave usb list`).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Replace files of the same name with different content (also SHA256SUMS, which lists
        /// the files of this export only). Without it such an export writes nothing.
        #[arg(long)]
        overwrite: bool,
        /// Files to copy (kept under their own names).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the files in a folder with size, SHA-256 and what they are, and check SHA256SUMS.
    Import {
        /// The folder on the media.
        dir: PathBuf,
        /// Largest file read, in bytes (larger ones are refused and listed).
        #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_IMPORT_LIMIT)]
        max_file_size: u64,
        /// Also read the folders directly inside it (a tuf-on-ci event's `root_history/`),
        /// listing their files as `FOLDER/NAME`.
        #[arg(long)]
        sub_folders: bool,
    },
}

fn usb_err(e: UsbError) -> CliError {
    CliError::Io(e.to_string())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Run a `usb` subcommand.
pub fn run(cmd: &UsbCommand) -> Result<Outcome, CliError> {
    match cmd {
        UsbCommand::List => list(),
        UsbCommand::Export {
            to,
            overwrite,
            files,
        } => export(to, *overwrite, files),
        UsbCommand::Import {
            dir,
            max_file_size,
            sub_folders,
        } => import(dir, *max_file_size, *sub_folders),
    }
}

fn list() -> Result<Outcome, CliError> {
    let media = usb::find_media(&RealSystem).map_err(usb_err)?;
    let mut out = String::new();
    if media.is_empty() {
        out.push_str(
            "no removable or USB media mounted; mount one, or name a folder with `conclave usb export --to DIR`\n",
        );
    }
    for m in &media {
        let _ = writeln!(
            out,
            "{}  {}  {}{}",
            show(&m.mount_point.display().to_string()),
            show(&m.device),
            show(&m.fstype),
            m.label
                .as_ref()
                .map(|l| format!("  label \"{}\"", show(l)))
                .unwrap_or_default()
        );
        let mut facts = Vec::new();
        if let Some(s) = &m.space {
            facts.push(format!("{} free of {}", mib(s.free), mib(s.total)));
        } else if let Some(d) = m.device_size {
            facts.push(format!("device {}", mib(d)));
        }
        if m.usb {
            facts.push("USB".into());
        }
        if m.removable {
            facts.push("removable".into());
        }
        if m.read_only {
            facts.push("READ-ONLY".into());
        }
        let _ = writeln!(out, "    {}", facts.join(", "));
    }
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}

fn export(to: &std::path::Path, overwrite: bool, files: &[PathBuf]) -> Result<Outcome, CliError> {
    let plan = usb::read_export_files(files, DEFAULT_IMPORT_LIMIT).map_err(|e| match e {
        UsbError::NotExportable(_) => CliError::Usage(e.to_string()),
        e => usb_err(e),
    })?;
    let report =
        usb::export_files(&StdFs, to, &plan, ExportOptions { overwrite }).map_err(usb_err)?;
    Ok(Outcome {
        stdout: report.summary(),
        success: true,
    })
}

fn import(dir: &std::path::Path, limit: u64, sub_folders: bool) -> Result<Outcome, CliError> {
    let report = if sub_folders {
        usb::import_dir_with_subfolders(dir, limit)
    } else {
        usb::import_dir(dir, limit)
    }
    .map_err(usb_err)?;
    let sums_ok = report.sums.as_ref().is_none_or(|c| c.all_ok());
    let mut out = report.summary();
    if !sums_ok {
        out.push_str("SHA256SUMS does not match the files: do not use them\n");
    }
    Ok(Outcome {
        stdout: out,
        success: sums_ok,
    })
}
