//! `conclave`: parse the command line, call the library, map errors to exit codes
//! (0 ok, 1 verification failed or refused, 2 usage or I/O).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use conclave::cli::{self, CliError};

/// Offline root key ceremony appliance for TUF repositories.
#[derive(Debug, Parser)]
#[command(name = "conclave", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Keyholder tokens (PKCS#11): list, generate keys, create practice tokens.
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Add a signature from a token key to a metadata file.
    Sign(cli::token::SignArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result: Result<(), CliError> = match cli.command {
        Command::Token(cmd) => cli::token::run_token(cmd),
        Command::Sign(args) => cli::token::run_sign(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}
