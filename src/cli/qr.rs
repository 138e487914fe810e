//! `conclave qr encode|decode`: send or receive a file as animated QR codes.

use std::path::PathBuf;

use crate::transport::qr::{self, QrError};

use super::{CliError, Outcome};

/// `conclave qr ...`
#[derive(Debug, clap::Subcommand)]
pub enum QrCommand {
    /// Show FILE as animated QR codes in the terminal, or write the frames as PNG files.
    Encode {
        /// The file to send.
        file: PathBuf,
        /// Write PNG frames into this folder instead of animating.
        #[arg(long, value_name = "DIR")]
        png: Option<PathBuf>,
        /// Bytes per fountain fragment.
        #[arg(long, default_value_t = qr::DEFAULT_FRAGMENT_SIZE)]
        fragment_size: usize,
        /// Milliseconds each frame is shown.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
        /// Number of frames to write or print (default: 2.5 times the fragment count).
        #[arg(long)]
        frames: Option<usize>,
        /// Print the frames one after another instead of animating.
        #[arg(long)]
        no_animate: bool,
    },
    /// Rebuild a file from PNG frames (any order) and write it to --out if its SHA-256 checks.
    Decode {
        /// PNG images, each holding one or more frames.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Where to write the rebuilt file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

fn map_err(e: QrError) -> CliError {
    match e {
        // The received file is not the one that was sent: a verification failure.
        QrError::HashMismatch { .. } | QrError::FrameRejected { .. } | QrError::Envelope(_) => {
            CliError::Invalid(e.to_string())
        }
        other => CliError::Io(other.to_string()),
    }
}

/// Run a `qr` subcommand. The animation writes to the terminal itself.
pub fn run(cmd: &QrCommand) -> Result<Outcome, CliError> {
    let mut stdout = std::io::stdout();
    match cmd {
        QrCommand::Encode {
            file,
            png,
            fragment_size,
            interval_ms,
            frames,
            no_animate,
        } => qr::cli_encode(
            &qr::EncodeCommand {
                file,
                png_dir: png.as_deref(),
                fragment_size: *fragment_size,
                interval: std::time::Duration::from_millis(*interval_ms),
                frames: *frames,
                animate: !no_animate,
            },
            &mut stdout,
        )
        .map_err(map_err)?,
        QrCommand::Decode { images, out } => {
            qr::cli_decode(images, out, &mut stdout).map_err(map_err)?;
        }
    }
    Ok(Outcome {
        stdout: String::new(),
        success: true,
    })
}
