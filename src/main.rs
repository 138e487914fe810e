//! The `conclave` command line: parse, call the library, map errors to exit codes.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Offline root key ceremony appliance for TUF repositories.
#[derive(Parser)]
#[command(name = "conclave", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send or receive a file as animated QR codes.
    #[command(subcommand)]
    Qr(QrCommand),
}

#[derive(Subcommand)]
enum QrCommand {
    /// Show FILE as animated QR codes in the terminal, or write the frames as PNG files.
    Encode {
        /// The file to send.
        file: PathBuf,
        /// Write PNG frames into this folder instead of animating.
        #[arg(long, value_name = "DIR")]
        png: Option<PathBuf>,
        /// Bytes per fountain fragment.
        #[arg(long, default_value_t = conclave::transport::qr::DEFAULT_FRAGMENT_SIZE)]
        fragment_size: usize,
        /// Milliseconds each frame is shown.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
        /// Number of frames to write or print (default: 1.5 times the fragment count).
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Qr(cmd) => run_qr(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_qr(cmd: QrCommand) -> anyhow::Result<()> {
    use conclave::transport::qr;
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
                file: &file,
                png_dir: png.as_deref(),
                fragment_size,
                interval: std::time::Duration::from_millis(interval_ms),
                frames,
                animate: !no_animate,
            },
            &mut stdout,
        )?,
        QrCommand::Decode { images, out } => {
            qr::cli_decode(&images, &out, &mut stdout)?;
        }
    }
    Ok(())
}
