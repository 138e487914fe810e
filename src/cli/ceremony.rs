//! `conclave ceremony check|print`: validate a ceremony script, render it as the paper form.

use std::path::{Path, PathBuf};

use crate::ceremony::print;
use crate::ceremony::script::Script;
use crate::driver::module::{ModuleUse, Named, choose_module_here};
use crate::driver::{
    AnswersError, NamedScript, ScriptFileError, Secrets, find_script, piv_slots, read_answers,
    read_pins,
};

use super::{CliError, Outcome};

/// `conclave ceremony ...`
#[derive(Debug, clap::Subcommand)]
pub enum CeremonyCommand {
    /// Validate a script; name the line and field of each mistake.
    Check {
        /// The script: a shipped name (bootstrap-root, ...) or a script file (a path with a '/'
        /// or ending in .toml is always a file: ./NAME for a file named like a shipped script).
        file: PathBuf,
    },
    /// Run (or continue) a ceremony on real tokens, answered by an answers file.
    Run(RunArgs),
    /// Render a script as the paper form the room follows.
    Print {
        /// The script: a shipped name or a script file, as for `check`.
        file: PathBuf,
        /// A self-contained HTML page instead of text.
        #[arg(long)]
        html: bool,
    },
}

/// Arguments of `conclave ceremony run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The script: a shipped name (bootstrap-root, ...) or a script file (a path with a '/' or
    /// ending in .toml is always a file: ./NAME for a file named like a shipped script).
    pub script: String,
    /// Workspace: the transcript goes here; `WORKSPACE/input/` holds the input media (online
    /// keys, key requests), `WORKSPACE/export/` receives the results. Running the same command
    /// again continues an interrupted ceremony, or reports a finished one (its checks run
    /// again, nothing changed).
    #[arg(long, value_name = "DIR")]
    pub workspace: PathBuf,
    /// Start a new ceremony of this script in the workspace rather than report its finished
    /// one. Refused while one is unfinished (continue it: run without --new), for a second
    /// bootstrap, and for a tuf-on-ci or RSTUF event signed already (another event needs no
    /// --new).
    #[arg(long)]
    pub new: bool,
    /// Answers file (TOML): people present, parameter values, token of each keyholder. Never
    /// PINs.
    #[arg(long, value_name = "FILE")]
    pub answers: PathBuf,
    /// Read the keyholders' PINs from standard input, one `keyholder=PIN` line each, and the
    /// PIV management key of a keyholder's YubiKey as a line `management-key:keyholder=HEX`
    /// (otherwise each is asked on the terminal when the token is used).
    #[arg(long)]
    pub pin_stdin: bool,
}

/// `--new`: a new ceremony of the script, or the one in the workspace continued or reported.
pub fn start(new: bool) -> crate::driver::Start {
    if new {
        crate::driver::Start::New
    } else {
        crate::driver::Start::Continue
    }
}

/// The answers file's and the PIN lines' errors, with the exit code they always had (2).
fn answers_error(e: AnswersError) -> CliError {
    match e {
        AnswersError::Unreadable(m) => CliError::Io(m),
        AnswersError::Invalid(m) => CliError::Usage(m),
    }
}

fn run_ceremony(a: &RunArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    use crate::driver::{self as rehearse, Plan, Workspace};
    let script = script_arg(Path::new(&a.script))?;
    let (name, text) = (script.name().to_string(), script.text);
    let answers = read_answers(&a.answers).map_err(answers_error)?;
    // The module: the answers file's (only one the appliance allows: never code from the input
    // media), else the configuration's, else the built-in search (a real ceremony never falls
    // back to SoftHSM2); said in the output.
    let module = choose_module_here(
        Named::answers(&a.answers, answers.module.as_deref()),
        config,
        ModuleUse::Ceremony {
            practice: answers.practice,
        },
    )
    .map_err(super::token::module_error)?;
    eprintln!("conclave: PKCS#11 module {}", module.describe());
    let (piv_slot, piv_slots) = piv_slots(
        &a.answers,
        answers.piv_slot.as_deref(),
        &answers.piv_slots,
        &answers.people.keyholders,
    )
    .map_err(answers_error)?;
    let (pins, management_keys) = if a.pin_stdin {
        read_pins(&answers.people.keyholders).map_err(answers_error)?
    } else {
        (Secrets::new(), Secrets::new())
    };
    let ws = Workspace::open(&a.workspace).map_err(super::rehearse::map)?;
    let plan = Plan {
        practice: answers.practice,
        administrator: answers.people.administrator,
        keyholders: answers.people.keyholders,
        witnesses: answers.people.witnesses,
        values: answers.values,
        reference_time: answers.reference_time,
        acknowledgement: answers.acknowledgement,
        tokens: answers.tokens,
        pins,
        management_keys,
        piv_slot,
        piv_slots,
        module: Some(module),
        export_to: answers.export_to,
        log_origin: answers.log_origin,
        skip: answers.skip,
        withdraw: answers.withdraw,
        close_signing_when_met: answers.close_signing_when_met,
        request_set_sha256: answers.request_set_sha256,
    };
    let practice = plan.practice;

    let report = rehearse::run_real(&ws, &name, &text, Path::new("/sys"), plan, start(a.new))
        .map_err(super::rehearse::map)?;
    let head = format!(
        "{}ceremony \"{name}\" in {} (keyholders {})",
        if practice { "PRACTICE " } else { "" },
        ws.dir.display(),
        report.keyholders.join(", ")
    );
    super::rehearse::finish(head, &report)
}

/// A script that could not be used: unreadable exit 2; read but no valid script (not UTF-8,
/// not TOML, invalid) exit 1.
fn script_error(e: ScriptFileError) -> CliError {
    match e {
        ScriptFileError::Unreadable(m) => CliError::Io(m),
        ScriptFileError::NotText(_) | ScriptFileError::Invalid(_) => {
            CliError::Invalid(e.to_string())
        }
    }
}

/// The script a command names (`ceremony run`, `check`, `print`, `tui --script`): one rule
/// ([`find_script`]), one exit code per failure ([`script_error`]); when a file of a shipped
/// script's name is in the current folder, standard error says which is used and how to name
/// the file instead.
pub fn script_arg(arg: &Path) -> Result<NamedScript, CliError> {
    let script = find_script(arg).map_err(script_error)?;
    if let Some(note) = script.clash_note() {
        eprintln!("conclave: {note}");
    }
    Ok(script)
}

fn load(file: &Path) -> Result<Script, CliError> {
    Ok(script_arg(file)?.script)
}

/// Run a `ceremony` subcommand.
pub fn run(cmd: &CeremonyCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        CeremonyCommand::Check { file } => {
            let s = load(file)?;
            Ok(Outcome {
                stdout: format!(
                    "{}: {} ({}), {} steps: OK\n",
                    crate::text::show(&file.display().to_string()),
                    crate::text::show(&s.title),
                    s.kind.as_str(),
                    s.steps.len()
                ),
                success: true,
            })
        }
        CeremonyCommand::Run(a) => run_ceremony(a, config),
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
