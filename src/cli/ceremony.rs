//! `conclave ceremony check|print`: validate a ceremony script, render it as the paper form.

use std::path::{Path, PathBuf};

use crate::ceremony::print;
use crate::ceremony::script::Script;
use crate::folder::read_limited;

use super::{CliError, Outcome};

/// Largest script file accepted.
const MAX_SCRIPT: u64 = 1024 * 1024;

/// `conclave ceremony ...`
#[derive(Debug, clap::Subcommand)]
pub enum CeremonyCommand {
    /// Validate a script; name the line and field of each mistake.
    Check {
        /// The script (ceremony-scripts/*.toml).
        file: PathBuf,
    },
    /// Render a script as the paper form the room follows.
    Print {
        /// The script (ceremony-scripts/*.toml).
        file: PathBuf,
        /// A self-contained HTML page instead of text.
        #[arg(long)]
        html: bool,
    },
}

fn load(file: &Path) -> Result<Script, CliError> {
    let bytes = read_limited(file, MAX_SCRIPT).map_err(CliError::Io)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Invalid(format!("{}: not UTF-8 text", file.display())))?;
    Script::parse(&file.display().to_string(), &text).map_err(|errors| {
        CliError::Invalid(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Run a `ceremony` subcommand.
pub fn run(cmd: &CeremonyCommand) -> Result<Outcome, CliError> {
    match cmd {
        CeremonyCommand::Check { file } => {
            let s = load(file)?;
            Ok(Outcome {
                stdout: format!(
                    "{}: {} ({}), {} steps: OK\n",
                    file.display(),
                    s.title,
                    s.kind.as_str(),
                    s.steps.len()
                ),
                success: true,
            })
        }
        CeremonyCommand::Print { file, html } => {
            let s = load(file)?;
            Ok(Outcome {
                stdout: if *html {
                    print::html(&s)
                } else {
                    print::text(&s)
                },
                success: true,
            })
        }
    }
}
