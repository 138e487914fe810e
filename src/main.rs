//! The `conclave` command: parse arguments, call the library, map results to exit codes
//! (0 ok, 1 verification failed, 2 usage or I/O error).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use conclave::cli::{self, CliError, Outcome};
use conclave::text::terminal_safe;

/// Conclave: offline root key ceremonies for TUF repositories.
#[derive(Debug, Parser)]
#[command(name = "conclave", version, about)]
struct Cli {
    /// Configuration file (default: $CONCLAVE_CONFIG, else /etc/conclave/config.toml); it
    /// chooses the PKCS#11 module (`[pkcs11] module = "/path/to/module.so"`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Without a command: the terminal UI (`conclave tui`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The terminal UI: walk the room through a ceremony on the keyholders' tokens.
    Tui(cli::tui::TuiArgs),
    /// Verify a repository's root chain and roles from a trusted root.
    Verify(cli::verify::VerifyArgs),
    /// Summarise any metadata file, with the SHA-256 of its canonical signed bytes.
    Inspect(cli::verify::InspectArgs),
    /// Ceremony scripts: check one, or print it as the paper form.
    #[command(subcommand)]
    Ceremony(cli::ceremony::CeremonyCommand),
    /// Send or receive a file as animated QR codes.
    #[command(subcommand)]
    Qr(cli::qr::QrCommand),
    /// Check the machine: air gap (network interfaces, radios) and process hardening.
    Selfcheck,
    /// Practice ceremony on SoftHSM2 practice tokens in the terminal UI (unattended with
    /// --headless).
    Rehearse(cli::rehearse::RehearseArgs),
    /// Signature bundles: detached signatures carried between appliances.
    #[command(subcommand)]
    Bundle(cli::bundle::BundleCommand),
    /// Removable media: list candidates, export files with read-back, list and check an import.
    #[command(subcommand)]
    Usb(cli::usb::UsbCommand),
    /// Keyholder tokens (PKCS#11): list, generate keys, create practice tokens.
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Add a signature from a token key to a metadata file.
    Sign(cli::token::SignArgs),
    /// in-toto layouts: show one for review, sign it with a targets key on a token.
    #[command(subcommand)]
    Intoto(cli::intoto::IntotoCommand),
    /// Key-event log: append a ceremony's key events, sign its checkpoint, verify it.
    #[command(subcommand)]
    Log(cli::log::LogCommand),
    /// Ceremony transcripts: verify the hash chain, the seal and the exported artifacts.
    #[command(subcommand)]
    Transcript(cli::transcript::TranscriptCommand),
    /// tuf-on-ci signing events: review and sign offline, write the signatures on the
    /// connected machine.
    #[command(subcommand, name = "tuf-on-ci")]
    TufOnCi(cli::tuf_on_ci::TufOnCiCommand),
    /// Repository Service for TUF: review its payloads and pending root, sign the pending root.
    #[command(subcommand)]
    Rstuf(cli::rstuf::RstufCommand),
}

fn run(cli: &Cli) -> Result<Outcome, CliError> {
    let Some(command) = &cli.command else {
        return cli::tui::run(&cli::tui::TuiArgs::default(), cli.config.as_deref());
    };
    match command {
        Command::Tui(a) => cli::tui::run(a, cli.config.as_deref()),
        Command::Verify(a) => cli::verify::run_verify(a),
        Command::Inspect(a) => cli::verify::run_inspect(a),
        Command::Ceremony(c) => cli::ceremony::run(c, cli.config.as_deref()),
        Command::Qr(c) => cli::qr::run(c),
        Command::Bundle(c) => cli::bundle::run(c, cli.config.as_deref()),
        Command::Usb(c) => cli::usb::run(c),
        Command::Rehearse(a) => cli::rehearse::run(a),
        Command::Selfcheck => cli::selfcheck::run(),
        Command::Token(c) => cli::token::run_token(c, cli.config.as_deref()),
        Command::Sign(a) => cli::token::run_sign(a, cli.config.as_deref()),
        Command::Transcript(c) => cli::transcript::run(c),
        Command::Log(c) => cli::log::run(c, cli.config.as_deref()),
        Command::Intoto(c) => cli::intoto::run(c, cli.config.as_deref()),
        Command::TufOnCi(c) => cli::tuf_on_ci::run(c, cli.config.as_deref()),
        Command::Rstuf(c) => cli::rstuf::run(c, cli.config.as_deref()),
    }
}

fn main() -> ExitCode {
    // First: proxy variables out of the environment, so that no library or child process
    // (pcscd clients, python in tests) is pointed at a network proxy.
    let scrubbed = conclave::system::proxy_variables();
    for name in &scrubbed {
        // SAFETY: `remove_var` is unsafe because another thread may read the environment at the
        // same time. This is the first statement of `main`: no thread has been spawned yet (the
        // allocator starts none), so nothing else can read the environment concurrently.
        unsafe { std::env::remove_var(name) };
    }
    // Files and folders get the modes Conclave sets (0644/0755, 0600/0700 next to secrets),
    // never wider: a caller's umask of 000 would make SoftHSM2's and every library's files
    // world-writable.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    // Then core dumps off, not dumpable and memory locked, before any PIN can be read. What
    // cannot be applied is a warning here and a NO in `conclave selfcheck`; the commands still run.
    // Arguments are parsed first (they hold no secret): the commands that only read public
    // data do not lock memory.
    let cli = Cli::parse();
    // Commands that never read a PIN do not lock memory either: what they read is untrusted
    // input (media, QR frames, bundles, transcripts), which must not be locked in RAM.
    let public_only = matches!(
        cli.command,
        Some(
            Command::Verify(_)
                | Command::Inspect(_)
                | Command::Usb(_)
                | Command::Qr(_)
                | Command::Transcript(_)
                | Command::Rstuf(cli::rstuf::RstufCommand::Review(_))
                | Command::Bundle(cli::bundle::BundleCommand::Merge(_))
                | Command::TufOnCi(
                    cli::tuf_on_ci::TufOnCiCommand::Review(_)
                        | cli::tuf_on_ci::TufOnCiCommand::Apply(_)
                )
        )
    );
    let hardening = conclave::system::harden(scrubbed, !public_only);
    for problem in &hardening.problems {
        eprintln!("conclave: warning: {}", terminal_safe(problem));
    }
    let result = run(&cli);
    #[cfg(debug_assertions)]
    stop_for_memory_scan();
    match result {
        Ok(outcome) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth a panic.
            // The last guard: nothing a terminal interprets reaches it, whatever a command
            // forgot to render (the commands render input with `conclave::text::show`).
            let _ = stdout.write_all(terminal_safe(&outcome.stdout).as_bytes());
            let _ = stdout.flush();
            if outcome.success {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("conclave: {}", terminal_safe(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Debug builds (the test suite) only: when `CONCLAVE_TEST_STOP_AT_EXIT` is set, stop (SIGSTOP)
/// after the command is done and every PIN buffer was dropped, so that a test can search this
/// process's memory for the PINs (`tests/ceremony_run.rs`).
#[cfg(debug_assertions)]
fn stop_for_memory_scan() {
    if std::env::var_os("CONCLAVE_TEST_STOP_AT_EXIT").is_some() {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
    }
}
