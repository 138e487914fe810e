//! `conclave tui` (and `conclave` alone): the terminal UI on the keyholders' tokens; and the
//! practice ceremony's UI for `conclave rehearse`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::driver::module::{ModuleUse, Named, choose_module_here};
use crate::driver::{Plan, Start, Workspace, script_list, shipped_script};
use crate::tui::app::{App, Phase};

use super::{CliError, Outcome};

/// Arguments of `conclave tui`.
#[derive(Debug, Default, clap::Args)]
pub struct TuiArgs {
    /// Workspace folder on the media the administrator chose: the transcript goes here,
    /// `WORKSPACE/input/` holds the input media's files, `WORKSPACE/export/` receives the
    /// results. Opening it again continues an interrupted ceremony, or shows a finished one's
    /// summary (`--new` starts another). Default: a folder `conclave` on the removable medium
    /// chosen in the UI.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// The ceremony script (a shipped name or a script file, as for `conclave ceremony run`);
    /// without it the UI asks.
    #[arg(long, value_name = "NAME")]
    pub script: Option<String>,
    /// Start a new ceremony of the script in the workspace rather than show its finished one's
    /// summary (as `conclave ceremony run --new`; refused while one is unfinished).
    #[arg(long)]
    pub new: bool,
    /// PKCS#11 module of the keyholders' tokens (default: the configuration file, else the
    /// known modules in order).
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// A practice ceremony on the keyholders' own tokens (training): marked PRACTICE everywhere,
    /// and a failed air-gap check is a recorded warning instead of a stop.
    #[arg(long)]
    pub practice: bool,
    /// The PIV slot keys are generated in on a YubiKey (9a, 9c, 9d, 9e or 82..95; default 9c,
    /// "Digital Signature").
    #[arg(long, value_name = "SLOT")]
    pub piv_slot: Option<String>,
}

/// The terminal UI needs a terminal.
pub fn require_terminal() -> Result<(), CliError> {
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(CliError::Usage(
            "the terminal UI needs a terminal; without one use `conclave ceremony run` (or `conclave rehearse --headless`)".into(),
        ))
    }
}

/// Run `conclave tui`.
pub fn run(a: &TuiArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    // The script first: one that cannot be used is refused before the terminal is asked for
    // and before any workspace is made.
    let script = a
        .script
        .as_deref()
        .map(|s| super::ceremony::script_arg(Path::new(s)))
        .transpose()?;
    require_terminal()?;
    let ws = match &a.workspace {
        Some(dir) => Some(Workspace::open(dir).map_err(super::rehearse::map)?),
        None => None,
    };
    let plan = plan(a, config)?;
    let head = format!(
        "ceremony (PKCS#11 module {})",
        plan.module
            .as_ref()
            .map(|m| m.describe())
            .unwrap_or_default()
    );
    let sys = Path::new("/sys");
    let app = match script {
        Some(script) => {
            let (name, text) = (script.name().to_string(), script.text);
            let ws = ws.ok_or_else(|| {
                CliError::Usage("--script needs --workspace DIR (or choose both in the UI)".into())
            })?;
            // Opened on the token worker once the UI is on screen (a hung module or token
            // never leaves a blank terminal).
            App::opening(
                ws,
                name,
                text,
                sys.to_path_buf(),
                Some(plan),
                super::ceremony::start(a.new),
            )
        }
        None => App::new(Phase::Choose {
            ws,
            sys: sys.to_path_buf(),
            plan: Box::new(plan),
            start: super::ceremony::start(a.new),
            scripts: script_list(),
        }),
    };
    finish_ui(app, &head, a.new)
}

/// The plan `conclave tui` starts from: practice or not, the PIV slot, and the module
/// ([`choose_module_here`]: `--module`, else the configuration, else the built-in search; a
/// named module that is missing is an error, never a fallback).
fn plan(a: &TuiArgs, config: Option<&Path>) -> Result<Plan, CliError> {
    let piv_slot = a
        .piv_slot
        .as_deref()
        .map(|s| {
            crate::signer::pkcs11::PivSlot::parse(s).ok_or_else(|| {
                CliError::Usage(format!(
                    "--piv-slot must be 9a, 9c, 9d, 9e or 82..95, not \"{}\"",
                    crate::text::show(s)
                ))
            })
        })
        .transpose()?;
    let plan = Plan {
        practice: a.practice,
        piv_slot,
        module: Some(
            choose_module_here(
                Named::flag(a.module.as_deref()),
                config,
                ModuleUse::Ceremony {
                    practice: a.practice,
                },
            )
            .map_err(super::token::module_error)?,
        ),
        ..Plan::default()
    };
    Ok(plan)
}

/// Run the UI; afterwards print the finished ceremony's summary and checks. `again_new`: the
/// command asked for a new ceremony (`--new`), so it is continued without that flag.
pub fn finish_ui(app: App, head: &str, again_new: bool) -> Result<Outcome, CliError> {
    let mut app = app;
    let early =
        crate::tui::run_owned(&mut app).map_err(|e| CliError::Io(format!("the terminal: {e}")))?;
    if let Some(e) = app.take_open_error() {
        return Err(super::rehearse::map(e));
    }
    if let Some(m) = early {
        return Err(CliError::Io(match app.abandoned_note() {
            Some(note) => format!("{m}; {note}"),
            None => m,
        }));
    }
    match app.report() {
        Some(report) => super::rehearse::finish(head.to_string(), report),
        None => Ok(Outcome {
            stdout: match app.abandoned_note() {
                Some(note) => format!("{}\n", crate::text::show_message(&note)),
                None if again_new => {
                    "stopped before the end; the same command without --new continues the \
                     ceremony\n"
                        .into()
                }
                None => "stopped before the end; the same command continues the ceremony\n".into(),
            },
            success: true,
        }),
    }
}

/// `conclave rehearse` with a terminal: the practice ceremony in the UI (in the child process
/// that has the workspace's SoftHSM2 configuration).
pub fn rehearse(ws: &Workspace, script: &str, start: Start) -> Result<Outcome, CliError> {
    let text = shipped_script(script)
        .ok_or_else(|| CliError::Usage(format!("no shipped ceremony script named \"{script}\"")))?;
    let app = App::opening(
        ws.clone(),
        script.to_string(),
        text.to_string(),
        Path::new("/sys").to_path_buf(),
        None,
        start,
    );
    finish_ui(
        app,
        &format!(
            "PRACTICE ceremony \"{script}\" in {} (SoftHSM2 practice tokens)",
            ws.dir.display()
        ),
        start == Start::New,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `conclave tui` chooses its module as every command does: a configured module that is
    /// missing stops it (exit 2, naming the configuration's line), never a silent fallback.
    #[test]
    fn a_missing_configured_module_stops_the_ui_before_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(
            &cfg,
            "[pkcs11]\nmodule = \"/nonexistent/vendor-pkcs11.so\"\n",
        )
        .unwrap();
        for practice in [false, true] {
            let a = TuiArgs {
                practice,
                ..TuiArgs::default()
            };
            let Err(e) = plan(&a, Some(&cfg)) else {
                panic!("the UI started without its configured module");
            };
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(
                e.to_string().contains("/nonexistent/vendor-pkcs11.so")
                    && e.to_string().contains("config.toml:2 (pkcs11.module)"),
                "{e}"
            );
        }
        // --module wins, and is said.
        let module = dir.path().join("vendor.so");
        std::fs::write(&module, b"").unwrap();
        let a = TuiArgs {
            module: Some(module.clone()),
            ..TuiArgs::default()
        };
        let plan = plan(&a, Some(&cfg)).unwrap();
        let chosen = plan.module.unwrap();
        assert_eq!(chosen.path, module);
        assert!(chosen.describe().ends_with("(chosen by --module)"));
    }
}
