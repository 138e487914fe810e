//! The terminal UI's model and `update` (Elm style): messages from keys and ticks change the
//! [`App`]; every ceremony decision goes through the [`Session`] (the engine decides, the
//! transcript records). [`App::view_state`] turns the model into what [`super::view`] draws.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use zeroize::Zeroizing;

use super::poller::{
    self, Ask, Found, Look, Polled, Poller, Question, Read, Reading, Request, TokenGate,
};
use super::state::{
    DigestRow, Message, Meter, Prompt, QrOverlay, ReviewPane, Screen, SignerRow, TokenRow,
    TokenStatus, ViewState,
};
use super::view;
use super::worker::{self, Abandon, Job, JobDone, JobKind, Waited};
use crate::ceremony::engine::{
    CLOCK_TOLERANCE_SECONDS, Engine, Event, Need, ParamJson, parse_reference_time,
    show_clock_difference,
};
use crate::ceremony::script::{ParamValue, Script};
use crate::driver::TokenSigner;
use crate::driver::{
    CeremonyReport, DriverError, NotRecorded, Opened, Plan, Session, Start, Workspace, record_name,
};
use crate::signer::pkcs11::{TokenDesc, check_pin_length};
use crate::system::AirgapReport;
use crate::transcript::display::{hex_groups, pgp_words};
use crate::transport::qr::{Animation, EncodeOptions, QrMatrix};
use crate::transport::usb::{Medium, RealSystem, SystemView};
use crate::tuf::key::KeyId;
use crate::tuf::verify::ThresholdResult;

/// What happened: a key press, a clock tick, or the end of a token job.
#[derive(Debug)]
pub enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// Time passed (token polling, the clock).
    Tick,
    /// The token job on the worker thread finished: the ceremony comes back with its typed
    /// result ([`super::worker`]).
    Done(Box<JobDone>),
    /// The token poller answered ([`super::poller`]): the present tokens and the tokens holding
    /// the keys the screen waits for (dropped if the ceremony moved on since it was asked).
    Polled(Box<Polled>),
    /// The machine reader answered ([`super::poller`]): the air-gap reading or the removable
    /// media (dropped if the screen no longer shows what was asked).
    Read(Box<Read>),
}

/// Where the UI is.
pub enum Phase {
    /// Choosing the script (`conclave tui` without `--script`).
    Choose {
        /// The workspace the ceremony will use (`None`: a folder `conclave` on the removable
        /// medium the administrator chooses).
        ws: Option<Workspace>,
        /// Root of sysfs for the air-gap check.
        sys: PathBuf,
        /// How tokens are reached.
        plan: Box<Plan>,
        /// Whether a new ceremony of the chosen script is asked for (`--new`), or its
        /// unfinished one continued, or its finished one reported.
        start: Start,
        /// Shipped scripts: (name, title, purpose, text).
        scripts: Vec<(String, String, String, &'static str)>,
    },
    /// A step of the ceremony.
    Ceremony(Box<Session>),
    /// Every step is done: each keyholder present logs in to their token (or is skipped),
    /// then the seal is written listing them, its hash is shown, and each signs it in turn.
    Sealing {
        /// The ceremony.
        session: Box<Session>,
        /// Keyholders who sign the seal, in order.
        sealers: Vec<String>,
        /// Signers collected so far (logged in).
        signers: Vec<(String, TokenSigner)>,
        /// Keyholders skipped (their token is not available).
        skipped: Vec<String>,
        /// The seal hash (hex) once the seal record is written: its signer list is fixed
        /// then, and the hash is on screen before any seal signature.
        seal: Option<String>,
        /// Keyholders whose token has signed the seal (in this run or before an interruption).
        sealed: Vec<String>,
        /// Keyholders withdrawn from a written seal, with the reason (a new seal lists the
        /// others).
        withdrawn: Vec<(String, String)>,
        /// Keyholders whose signature of the seal in force was made before an interruption
        /// (restored from the transcript, also in `sealed`): never asked to sign it again;
        /// when `checkpoint`, each logs in after the seal signatures to sign the key-event
        /// log's checkpoint (or is skipped).
        earlier: Vec<String>,
        /// The sealers asked to sign the key-event log's checkpoint (empty when no log step
        /// follows): those holding a key of the root in force after the ceremony
        /// ([`Session::signs_checkpoint`]).
        checkpoint: Vec<String>,
        /// A key-event log step follows the seal ([`Session::key_log_expected`], read when the
        /// seal began: it looks at the media).
        key_log: bool,
    },
    /// Finished: the report and the checks of the output.
    Summary {
        /// The report.
        report: Box<CeremonyReport>,
        /// Result lines of the checks.
        checks: Vec<String>,
        /// The checks that failed (the ceremony is then not complete).
        failed: Vec<String>,
    },
    /// Transitional (never drawn).
    Gone,
}

/// An action waiting for its confirmation (`y`).
#[derive(Clone, Debug)]
enum Pending {
    Record {
        actor: String,
        event: Box<Event>,
    },
    Generate {
        keyholder: String,
        key_type: String,
    },
    Sign {
        who: String,
    },
    Export {
        medium: Option<PathBuf>,
    },
    SealSign {
        who: String,
    },
    /// A keyholder logged in before the seal was written signs it (its hash on screen).
    SealSignNow {
        who: String,
    },
    /// Write the seal record, listing the keyholders logged in as its signers.
    WriteSeal,
    Assign {
        keyholder: String,
        serial: String,
    },
    SkipSealer {
        who: String,
        reason: String,
    },
    /// Record the air-gap check as it was on screen (read again when it is recorded).
    Airgap {
        actor: String,
        shown: Box<Event>,
    },
    /// Withdraw a keyholder from the written seal (recorded); a new seal lists the others.
    WithdrawSealer {
        who: String,
        reason: String,
    },
    Exception {
        witness: String,
        text: String,
    },
    /// The room confirmed that the request set's SHA-256 matches the published value.
    RequestSetMatches,
    /// The token reports one PIN try left: the room confirmed before the PIN is asked.
    FinalTry {
        label: String,
        purpose: PinFor,
    },
    Quit,
}

/// A token action the room confirms once the expected token is present
/// ([`App::token_then`]): who, the question, the action.
type Later = (String, String, Pending);

/// What waits for the token poller's answer: an action that tells the room which token is
/// present, or a PIN prompt that shows the token's PIN-try flags ([`App::after_poll`]).
#[derive(Debug)]
enum AfterPoll {
    /// [`App::token_then`]: who, the question, the action.
    TokenThen(String, String, Pending),
    /// [`App::pin`]: the label and what the PIN is for.
    Pin(String, PinFor),
    /// [`App::roll_call_enter`]: the roll call, once the tokens present are known.
    RollCall,
    /// [`App::airgap_enter`]: the air-gap confirmation, once the machine's reading is on
    /// screen (answered by the machine reader, not the tokens).
    Airgap,
    /// A key of the screen that needs the tokens as they are now (`a`: whose token the
    /// chosen one is), pressed again once they answered.
    Key(KeyEvent),
}

/// What a typed PIN is for.
#[derive(Clone, Debug)]
enum PinFor {
    Generate {
        keyholder: String,
        key_type: String,
    },
    /// The PIV management key of a YubiKey, typed after its PIN (held for the generation).
    ManagementKey {
        keyholder: String,
        key_type: String,
        pin: HeldPin,
    },
    Sign {
        who: String,
    },
    SealSign {
        who: String,
    },
}

/// A PIN typed earlier and held (wiped on drop) until the operation it is for; never shown,
/// not even by `Debug`.
#[derive(Clone)]
struct HeldPin(Zeroizing<String>);

impl std::fmt::Debug for HeldPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldPin(..)")
    }
}

/// What a typed line is for.
#[derive(Clone, Debug)]
enum TextFor {
    Parameter(String),
    RollCall(usize),
    Acknowledgement,
    ReferenceTime,
    ExceptionWitness,
    ExceptionText {
        witness: String,
    },
    /// Why a keyholder does not sign the seal.
    SealSkipReason {
        who: String,
    },
    /// Why a keyholder listed in the written seal is withdrawn from it.
    SealWithdrawReason {
        who: String,
    },
    /// Why a keyholder does not sign at the signing step.
    SignSkipReason {
        who: String,
    },
    /// Text to find in a large review's full list.
    ReviewFind,
}

enum PromptState {
    None,
    Confirm {
        question: String,
        action: Pending,
    },
    Pin {
        label: String,
        buf: Zeroizing<String>,
        purpose: PinFor,
    },
    Text {
        label: String,
        buf: String,
        purpose: TextFor,
    },
}

/// The UI's model.
pub struct App {
    /// Where the UI is.
    pub phase: Phase,
    prompt: PromptState,
    message: Option<Message>,
    banner: Option<String>,
    help: bool,
    /// The welcome shown before a new ceremony's first step (Enter begins).
    welcome: Option<Vec<String>>,
    /// Set when the UI should end.
    pub quit: bool,
    /// Why the UI ended early (printed after the terminal is restored).
    pub exit_message: Option<String>,
    /// Set when keys typed ahead must be discarded (a PIN or confirmation prompt opened).
    pub drain: bool,
    selected: usize,
    scroll: usize,
    /// At the review: how many lines from the top have been on screen (approval waits for
    /// all of them).
    review_seen: usize,
    /// At a summary-first review: the full list is open (behind the summary).
    review_list: bool,
    /// At a summary-first review: the scroll of the list not on screen (summary or full list).
    other_scroll: usize,
    /// At a summary-first review: the room confirmed that the request set's SHA-256 matches
    /// the value published before the ceremony (carried by the approval).
    request_set_confirmed: bool,
    /// The last text searched for in the full list (`/`, `n` for the next match).
    review_find: String,
    /// The review as the screen shows it, built for one engine state (see [`ReviewCache`]).
    review_cache: RefCell<Option<Arc<ReviewCache>>>,
    /// How many times the review was built from the engine (one per engine state at the
    /// review, not one per key press or draw).
    review_builds: Cell<u64>,
    /// The room confirmed typing a PIN on a token's final try (used by the next PIN prompt).
    final_try_ok: bool,
    values: BTreeMap<String, String>,
    roll: [String; 3],
    ack_text: String,
    /// The reference time typed at the clock step (`YYYY-MM-DD HH:MM` UTC).
    reference_text: String,
    tokens: Result<Vec<TokenDesc>, String>,
    /// The removable media mounted, as the machine reader last found them (`None`: not
    /// answered yet).
    media: Option<Vec<Medium>>,
    /// The air-gap check's last reading, and what it answered (the step and the sysfs root).
    airgap: Option<(Look, AirgapReport)>,
    /// What the machine reader reads the media from (the running system; a test's view).
    system: Arc<dyn SystemView + Send + Sync>,
    /// At a signing step: the keyholder, the key they sign with next, and the present token
    /// that holds it (refreshed with the token list).
    signing: Option<(String, KeyId, Option<TokenDesc>)>,
    /// At the seal: the keyholder and the present token that holds one of their keys.
    sealing: Option<(String, Option<TokenDesc>)>,
    /// The removable medium chosen for the workspace (`w` cycles).
    medium: usize,
    /// At key generation: the present token proposed for assignment (`t` cycles, `a` assigns),
    /// kept by identity (serial and label) so that `a` assigns the token the room saw even if
    /// the list changed in between.
    candidate: Option<TokenDesc>,
    qr: Option<QrShow>,
    /// Terminal size (columns, rows), kept up to date by the run loop.
    pub term: (u16, u16),
    ticks: u64,
    /// The step the screen-local state belongs to (reset when the step changes).
    seen_step: String,
    /// The parameter editor is open to correct recorded values (Esc at a step before any key
    /// is generated).
    correcting: bool,
    /// The token job running on the worker thread: the ceremony is with it until it ends
    /// ([`super::worker`]).
    job: Option<Job>,
    /// The token poller thread (started at the first poll, [`super::poller`]).
    poller: Option<Poller<Request>>,
    /// The machine reader thread (started at the first read, [`super::poller`]).
    reader: Option<Poller<Reading>>,
    /// The number of the last machine read asked, and of the last answer applied.
    read_ids: (u64, u64),
    /// What the last machine read asked.
    read_asked: Option<Look>,
    /// Held by whichever thread calls the token module: the poller or the token worker.
    gate: TokenGate,
    /// The number of the last poll answer applied (answers are applied in order).
    polled: u64,
    /// The number of the last poll asked.
    poll_id: u64,
    /// The question the last poll asked.
    asked: Option<Question>,
    /// Why the ceremony given on the command line could not be opened ([`App::opening`]).
    open_error: Option<DriverError>,
    /// The question of the last poll answer applied.
    applied: Option<Question>,
    /// What runs when the tokens (or, for the air gap, the machine reader) answer, and when
    /// it was asked (keys but Esc, `?` and Ctrl-C wait meanwhile).
    waiting_for: Option<(AfterPoll, std::time::Instant)>,
    /// A record the transcript could not take (its write failed): on screen until a record
    /// is written, and said again when the UI ends.
    unrecorded: Option<NotRecorded>,
    /// Set when the room stops the UI while a job runs: its work records nothing more.
    abandon: Abandon,
    /// The sealers' token sessions being closed on a thread of their own when the UI ended
    /// ([`App::close_sealers`]): says when they are closed.
    closing: Option<std::sync::mpsc::Receiver<()>>,
}

/// How long the UI's end waits for the sealers' token sessions to close
/// ([`App::wait_for_closing`]) before it ends anyway, saying so.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What the room reads when a record was not written ([`NotRecorded`]): for a failed write,
/// that nothing more can be recorded in this run and how to continue.
fn not_recorded_message(e: &NotRecorded) -> Message {
    let hint = if e.write_failed() {
        " Nothing more can be recorded in this run: stop (Ctrl-C) and run the same command once the medium is sound; it continues from the last record on disk."
    } else {
        ""
    };
    Message {
        error: true,
        text: format!("{e}.{hint}"),
    }
}

/// Why a job that works on a token and records its result stopped.
#[derive(Debug)]
enum Stopped {
    /// The token work (or the export) failed: nothing was recorded; the error keeps its kind
    /// (a wrong PIN is asked again).
    Failed(DriverError),
    /// The token work was done but its record was not written.
    NotRecorded(NotRecorded),
}

/// Record `event` by `actor` as the current step's ([`Session::record_step`]), unless the room
/// stopped the UI meanwhile (then nothing is written: [`Abandon`]); either way a record not
/// written is a [`NotRecorded`] naming the step and the record.
fn record_unless_abandoned(
    s: &mut Session,
    abandon: &Abandon,
    actor: &str,
    event: Event,
) -> Result<Vec<String>, Stopped> {
    abandon
        .check(&record_name(&event))
        .map_err(|e| NotRecorded::new(s.step(), record_name(&event), e))
        .and_then(|()| s.record_step(actor, event))
        .map_err(Stopped::NotRecorded)
}

/// The ceremony left the phase a token job was started for before the job ran (never seen:
/// keys wait while a job runs; kept as an answer rather than a panic).
fn moved_on() -> DriverError {
    DriverError::Refused("the ceremony moved on before the token work started".into())
}

/// Sign every key of `who` that the same token holds with one PIN (a keyholder replacing
/// their own token signs with the old one and the new one in turn), recording each signature
/// (on the worker thread). The roles signed, and what stopped it.
fn sign_with_one_token(
    s: &mut Session,
    who: &str,
    pin: &Zeroizing<String>,
    abandon: &Abandon,
) -> (Vec<String>, Option<Stopped>) {
    let mut signed = Vec::new();
    let first = s
        .next_signing_token(who)
        .ok()
        .flatten()
        .and_then(|(_, t)| t);
    while let Some((_, role)) = s.engine.roles_left(who).into_iter().next() {
        let here = s
            .next_signing_token(who)
            .ok()
            .flatten()
            .and_then(|(_, t)| t);
        if !signed.is_empty()
            && here.as_ref().map(|t| &t.serial) != first.as_ref().map(|t| &t.serial)
        {
            break;
        }
        let recorded = s
            .sign_event(who, Some(pin))
            .map_err(Stopped::Failed)
            .and_then(|ev| record_unless_abandoned(s, abandon, who, ev));
        match recorded {
            Ok(_) => signed.push(role),
            Err(e) => return (signed, Some(e)),
        }
    }
    (signed, None)
}

/// A key generated and recorded (on the worker thread): what the screen says about it.
struct KeyRecorded {
    /// The key id.
    id: String,
    /// What an interrupted generation left and the driver removed first (recorded with it).
    found: Vec<String>,
    /// The token's firmware advisory, if any.
    advisory: Option<String>,
    /// Policy warnings the record raised (acknowledged in the transcript).
    warnings: Vec<String>,
}

/// Generate `keyholder`'s key in their token and record it, in one job on the worker thread.
fn generate_and_record(
    s: &mut Session,
    keyholder: &str,
    key_type: &str,
    pin: &Zeroizing<String>,
    management_key: Option<&Zeroizing<String>>,
    abandon: &Abandon,
) -> Result<KeyRecorded, Stopped> {
    let ev = s
        .generate_key_event(keyholder, key_type, Some(pin), management_key)
        .map_err(Stopped::Failed)?;
    let advisory = crate::transcript::display::advisory_warning(&ev);
    let found = s.pending_notes();
    let warnings = record_unless_abandoned(s, abandon, keyholder, ev)?;
    let id = s
        .engine
        .generated_keys()
        .last()
        .map(|(w, _, k)| crate::ceremony::engine::owned_key(k, w).key_id().0)
        .unwrap_or_default();
    Ok(KeyRecorded {
        id,
        found,
        advisory,
        warnings,
    })
}

/// How a key generation job with a PIN ended (on the worker thread).
enum Generation {
    /// Generated and recorded, or stopped.
    Done(Result<KeyRecorded, Stopped>),
    /// Nothing done: the keyholder's token is a YubiKey (PIV), whose management key is asked
    /// too; the PIN typed comes back for the generation submitted with both.
    NeedsManagementKey(HeldPin),
}

/// How recording the air-gap check ended (on the worker thread).
enum AirgapRecord {
    /// Recorded: the warnings it raised, and the errors met going on to the seal.
    Recorded(Vec<String>, Vec<DriverError>),
    /// Not recorded: sysfs reads differently from what the screen showed (the new reading).
    Changed(AirgapReport),
}

/// The review as the screen shows it, built from one engine state ([`Engine::revision`]).
struct ReviewCache {
    /// The engine state it was built from.
    revision: u64,
    /// Every change, for the screen: the whole review, or the full list behind a summary.
    lines: Vec<String>,
    /// The summary's lines, when the review opens with one.
    summary: Option<Vec<String>>,
}

/// The answer of `poller`'s thread, waiting up to `wait` (`None`: until the unanswered request
/// is answered); `None` when no answer is due.
fn answer_from<R: Ask>(
    poller: &mut Option<Poller<R>>,
    wait: Option<std::time::Duration>,
) -> Option<Box<R::Answer>> {
    let p = poller.as_mut()?;
    if wait.is_none() && p.waiting.is_none() {
        return None;
    }
    match p.answer(wait) {
        poller::Answer::Got(answer) => Some(answer),
        poller::Answer::None => None,
        // The thread ended (it never does while the UI runs): a new one is started at the
        // next request.
        poller::Answer::Gone => {
            *poller = None;
            None
        }
    }
}

/// Send `request` to `poller`'s thread (started first if none runs); without a thread it is
/// answered here and the answer returned.
fn ask_on<R: Ask>(poller: &mut Option<Poller<R>>, name: &str, request: R) -> Option<R::Answer> {
    if poller.is_none() {
        *poller = Poller::start(name);
    }
    let request = match poller {
        Some(p) => match p.ask(request) {
            Ok(()) => return None,
            Err(back) => {
                *poller = None;
                *back
            }
        },
        None => request,
    };
    Some(request.answer())
}

fn err(e: DriverError) -> Message {
    Message {
        error: true,
        text: e.to_string(),
    }
}

fn ok(text: impl Into<String>) -> Message {
    Message {
        error: false,
        text: text.into(),
    }
}

impl App {
    /// The UI on an open ceremony (or a finished one), or on the script choice.
    pub fn new(phase: Phase) -> App {
        let mut app = App {
            phase,
            prompt: PromptState::None,
            message: None,
            banner: None,
            help: false,
            welcome: None,
            quit: false,
            exit_message: None,
            drain: false,
            selected: 0,
            scroll: 0,
            review_seen: 0,
            review_list: false,
            other_scroll: 0,
            request_set_confirmed: false,
            review_find: String::new(),
            review_cache: RefCell::new(None),
            review_builds: Cell::new(0),
            final_try_ok: false,
            values: BTreeMap::new(),
            roll: Default::default(),
            ack_text: String::new(),
            reference_text: String::new(),
            tokens: Ok(Vec::new()),
            media: None,
            airgap: None,
            system: Arc::new(RealSystem),
            signing: None,
            sealing: None,
            candidate: None,
            medium: 0,
            qr: None,
            term: (80, 24),
            ticks: 0,
            seen_step: String::new(),
            correcting: false,
            job: None,
            poller: None,
            reader: None,
            read_ids: (0, 0),
            read_asked: None,
            gate: TokenGate::default(),
            polled: 0,
            poll_id: 0,
            asked: None,
            open_error: None,
            applied: None,
            waiting_for: None,
            unrecorded: None,
            abandon: Abandon::default(),
            closing: None,
        };
        app.after_change();
        app
    }

    /// Open a ceremony (practice tokens when `plan` is `None`) and make the UI for it (on
    /// this thread: [`App::opening`] opens it once the UI is on screen).
    pub fn open(
        ws: &Workspace,
        script_name: &str,
        text: &str,
        sys: &std::path::Path,
        plan: Option<Plan>,
        start: Start,
    ) -> Result<App, DriverError> {
        let opened = Session::open(ws, script_name, text, sys, plan, start)?;
        let mut app = App::new(Phase::Gone);
        app.show_opened(opened_phase(opened), true);
        Ok(app)
    }

    /// The UI for the ceremony `script_name` given on the command line, opened on the token
    /// worker once the UI is on screen: loading the PKCS#11 module and reading the tokens can
    /// hang (a stuck device), and the screen then says what it waits for instead of staying
    /// blank (Ctrl-C stops, confirmed). If the ceremony cannot be opened the UI ends and
    /// [`App::take_open_error`] says why.
    pub fn opening(
        ws: Workspace,
        script_name: String,
        text: String,
        sys: PathBuf,
        plan: Option<Plan>,
        start: Start,
    ) -> App {
        let mut app = App::new(Phase::Gone);
        app.banner = Some(format!(
            "Opening the ceremony {script_name} in {}: loading the PKCS#11 module and reading the tokens.",
            crate::text::show(&ws.dir.display().to_string())
        ));
        app.submit(
            format!("opening the ceremony {script_name}"),
            "the tokens' PKCS#11 module".into(),
            move |_| Session::open(&ws, &script_name, &text, &sys, plan, start).map(opened_phase),
            |app, opened| match opened {
                Ok(opened) => app.show_opened(opened, true),
                Err(e) => {
                    app.open_error = Some(e);
                    app.quit = true;
                }
            },
        );
        app
    }

    /// The UI reading the removable media from `system` (the running system by default; a
    /// test's view of one): asked again from it at once.
    pub fn with_system(mut self, system: Arc<dyn SystemView + Send + Sync>) -> App {
        self.system = system;
        // An answer from the view replaced is dropped.
        self.read_ids.1 = self.read_ids.0;
        self.read_asked = None;
        self.media = None;
        self.after_change();
        self
    }

    /// Why the ceremony given on the command line could not be opened ([`App::opening`]).
    pub fn take_open_error(&mut self) -> Option<DriverError> {
        self.open_error.take()
    }

    /// Show a ceremony just opened ([`opened_phase`]: its step, or the seal when every step is
    /// recorded, or its summary when it was finished, with the errors met reading what stands);
    /// a banner for a continued or finished one, and the welcome before a new ceremony's first
    /// step if `welcome`.
    fn show_opened(&mut self, (phase, errors): (Phase, Vec<DriverError>), welcome: bool) {
        self.phase = phase;
        if let Some(e) = errors.into_iter().last() {
            self.message = Some(err(e));
        }
        self.seen_step.clear();
        self.after_change();
        self.banner = match &self.phase {
            Phase::Summary { failed, .. } if !failed.is_empty() => Some(format!(
                "This ceremony was sealed earlier and nothing was changed, but it is NOT complete: {} FAILED.",
                failed.join("; ")
            )),
            Phase::Summary { report, .. } => Some(match &report.another {
                Some(another) => format!(
                    "This ceremony was already complete and sealed; nothing was changed ({another})."
                ),
                None => {
                    "This ceremony was already complete and sealed; nothing was changed.".into()
                }
            }),
            Phase::Ceremony(s) | Phase::Sealing { session: s, .. } if s.resumed => Some(format!(
                "Continued an interrupted ceremony: {} events replayed from the transcript.",
                s.resumed_events
            )),
            _ => None,
        };
        if welcome {
            self.welcome = match &self.phase {
                Phase::Ceremony(s) if !s.resumed => Some(welcome_lines(s)),
                _ => None,
            };
        }
    }

    /// The review of `engine`'s state as the screen shows it: built once per engine state
    /// (a review of 10,000 claimed projects takes a noticeable time to build), so a key press
    /// or a redraw at the review costs only the drawing.
    fn review(&self, engine: &Engine) -> Arc<ReviewCache> {
        let mut cache = self.review_cache.borrow_mut();
        if let Some(built) = cache.as_ref().filter(|c| c.revision == engine.revision()) {
            return Arc::clone(built);
        }
        self.review_builds.set(self.review_builds.get() + 1);
        let engine_lines = engine.review_lines();
        let summary = engine
            .review_summary_of(&engine_lines)
            .map(|sum| view::review::summary_lines(&sum, &review_display(&sum.line_by_line)));
        let built = Arc::new(ReviewCache {
            revision: engine.revision(),
            lines: review_display(&engine_lines),
            summary,
        });
        *cache = Some(Arc::clone(&built));
        built
    }

    fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Ceremony(s) | Phase::Sealing { session: s, .. } => Some(s),
            _ => None,
        }
    }

    /// Handle one message.
    pub fn update(&mut self, msg: Msg) {
        match msg {
            Msg::Tick => self.tick(),
            Msg::Key(k) if self.job.is_some() => self.busy_key(k),
            Msg::Key(k) if self.waiting_for.is_some() => self.waiting_key(k),
            Msg::Key(k) => self.key(k),
            Msg::Done(done) => self.job_done(*done),
            Msg::Polled(polled) => self.polled(*polled),
            Msg::Read(read) => self.read(*read),
        }
    }

    /// Run `work` on the ceremony on the worker thread ([`super::worker`]); `then` applies its
    /// typed result on the UI thread when it ends ([`Msg::Done`]). Meanwhile the screen as it
    /// was is drawn with "working: `what` on `on`", and only keys that start nothing are taken
    /// ([`App::busy_key`]).
    fn submit<R: Send + 'static>(
        &mut self,
        what: String,
        on: String,
        work: impl FnOnce(&mut Phase) -> R + Send + 'static,
        then: impl FnOnce(&mut App, R) + Send + 'static,
    ) {
        self.submit_kind((JobKind::Token, what, on), work, then);
    }

    /// [`App::submit`] for a job of `kind`.
    fn submit_kind<R: Send + 'static>(
        &mut self,
        job: (JobKind, String, String),
        work: impl FnOnce(&mut Phase) -> R + Send + 'static,
        then: impl FnOnce(&mut App, R) + Send + 'static,
    ) {
        let view = self.view_state();
        let phase = std::mem::replace(&mut self.phase, Phase::Gone);
        let work: worker::Work = Box::new(move |phase| {
            let result = work(phase);
            Box::new(move |app: &mut App| then(app, result))
        });
        match worker::start(job, view, phase, work, self.gate.clone()) {
            Ok(job) => self.job = Some(job),
            Err(done) => self.job_done(*done),
        }
    }

    /// Record on the worker thread ([`JobKind::Record`]: the append and its fsync never block
    /// the screen): `work` records through the session; then a ceremony whose every step is
    /// recorded goes on to the seal, and `then` applies the result on the UI thread. A failure
    /// is shown as [`NotRecorded`] naming the step and `what`. One job at a time (keys that
    /// would start another are ignored while it runs), so records are written in the order
    /// they were confirmed, each once.
    fn record_job<R: Send + 'static>(
        &mut self,
        what: String,
        work: impl FnOnce(&mut Phase) -> Result<R, DriverError> + Send + 'static,
        then: impl FnOnce(&mut App, R) + Send + 'static,
    ) {
        let step = self.session().map(Session::step).unwrap_or_default();
        let named = what.clone();
        self.submit_kind(
            (JobKind::Record, what, "the transcript".into()),
            move |phase| {
                let result = work(phase);
                let sealing = if result.is_ok() {
                    phase.seal_if_done()
                } else {
                    Vec::new()
                };
                (result, sealing)
            },
            move |app, (result, sealing)| {
                match result {
                    Ok(r) => {
                        app.unrecorded = None;
                        then(app, r);
                    }
                    Err(source) => app.not_recorded(NotRecorded::naming(step, named, source)),
                }
                if let Some(e) = sealing.into_iter().last() {
                    app.message = Some(err(e));
                }
            },
        );
    }

    /// A record that was not written: said on screen (a failed write stays there until a
    /// record is written).
    fn not_recorded(&mut self, e: NotRecorded) {
        self.message = Some(not_recorded_message(&e));
        if e.write_failed() {
            self.unrecorded = Some(e);
        }
    }

    /// A token job stopped: said on screen; the token's error is returned (the caller decides
    /// whether to ask the PIN again).
    fn stopped(&mut self, stopped: Stopped) -> Option<DriverError> {
        match stopped {
            Stopped::Failed(e) => {
                self.message = Some(Message {
                    error: true,
                    text: e.to_string(),
                });
                Some(e)
            }
            Stopped::NotRecorded(e) => {
                self.not_recorded(e);
                None
            }
        }
    }

    /// The UI ends at the room's request: a record that was not written is said again after
    /// the terminal is restored (the command then fails: the ceremony did not record it).
    fn stop(&mut self) {
        if self.exit_message.is_none()
            && let Some(e) = &self.unrecorded
        {
            self.exit_message = Some(e.report());
        }
        self.abandon.set();
        self.quit = true;
        self.close_sealers();
    }

    /// The seal's logged-in signers ([`Phase::Sealing`]) are let go on a thread of their own:
    /// closing a PKCS#11 session is a token call, which can hang (a YubiHSM 2 over USB), and
    /// the UI thread makes none, so the room's Ctrl-C always ends the UI. The UI's end waits
    /// for it at most [`CLOSE_WAIT`] ([`App::wait_for_closing`]). Nothing to do while a job
    /// runs (the signers are on the worker thread) or once they are let go.
    pub fn close_sealers(&mut self) {
        let Phase::Sealing { signers, .. } = &mut self.phase else {
            return;
        };
        if signers.is_empty() {
            return;
        }
        let signers = std::mem::take(signers);
        let gate = self.gate.clone();
        let (closed, closing) = std::sync::mpsc::channel();
        // Without a thread (none can be started) the signers are dropped here: the one case
        // the UI thread still closes them, as before.
        let started = std::thread::Builder::new()
            .name("closing the sealers' tokens".into())
            .spawn(move || {
                // One thread at a time reaches the module (the poller may be asking it).
                let _held = gate.hold();
                drop(signers);
                let _ = closed.send(());
            });
        if started.is_ok() {
            self.closing = Some(closing);
        }
    }

    /// Wait up to `within` for the sealers' token sessions to close ([`App::close_sealers`]);
    /// if they are still closing then, what the room reads (the UI ends anyway).
    pub fn wait_for_closing(&mut self, within: std::time::Duration) -> Option<String> {
        let closing = self.closing.take()?;
        match closing.recv_timeout(within) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Some(format!(
                "the sealers' token sessions were still closing after {:.1} s (a token that does not answer); the UI ended without waiting for them: the transcript holds every record, and the tokens' sessions end with this process",
                within.as_secs_f32()
            )),
            // Closed (or the closing thread ended).
            _ => None,
        }
    }

    /// The ceremony is back from the worker: apply the job's result.
    fn job_done(&mut self, done: JobDone) {
        self.job = None;
        self.phase = done.phase;
        // The job worked on the tokens (PIN tries, keys, a token taken out): what the last
        // poll said is asked again before anything relies on it.
        self.applied = None;
        self.asked = None;
        // What the machine showed is read again, and an answer asked before the job (older
        // than what the job found) is dropped.
        self.read_asked = None;
        self.read_ids.1 = self.read_ids.0;
        (done.apply)(self);
        self.after_change();
    }

    /// The token work ended without a result (it panicked or its thread went away): the UI
    /// ends; the transcript holds every recorded step.
    pub(super) fn job_lost(&mut self) {
        self.job = None;
        self.prompt = PromptState::None;
        self.exit_message = Some(
            "an internal error stopped the token work; everything recorded so far is in the transcript and the same command continues the ceremony"
                .into(),
        );
        self.quit = true;
    }

    /// Whether a token job is running (the ceremony is on the worker thread).
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// The running job's result as a message, waiting up to `wait` for it; `None` while it
    /// runs or when no job runs. For the terminal loop, which polls the terminal and this.
    pub fn job_result(&mut self, wait: std::time::Duration) -> Option<Msg> {
        match self.job.as_ref()?.poll(Some(wait)) {
            Waited::Done(done) => Some(Msg::Done(done)),
            Waited::Running => None,
            Waited::Lost => {
                self.job_lost();
                None
            }
        }
    }

    /// Block until no token job runs and no token poll or machine read is unanswered: each
    /// result is applied (and any job it starts waited for in turn). The synchronous way for
    /// tests and for callers without a terminal.
    pub fn wait_idle(&mut self) {
        loop {
            if let Some(job) = &self.job {
                match job.poll(None) {
                    Waited::Done(done) => self.update(Msg::Done(done)),
                    Waited::Running => {}
                    Waited::Lost => self.job_lost(),
                }
            } else if let Some(msg) = self.poll_answer(None) {
                self.update(msg);
            } else if let Some(msg) = self.read_answer(None) {
                self.update(msg);
            } else {
                return;
            }
        }
    }

    /// Ask the tokens now (at a step that shows them) and apply the answer when it comes
    /// (blocking): the synchronous way for tests, as the screen shows the tokens about once a
    /// second in the terminal.
    pub fn refresh_tokens(&mut self) {
        self.wait_idle();
        self.ask_tokens();
        self.wait_idle();
    }

    /// The token poller's answer as a message, waiting up to `wait` for it (`None`: until the
    /// unanswered poll is answered); `None` when no answer is due. For the terminal loop,
    /// which polls the terminal, the job and this.
    pub fn poll_answer(&mut self, wait: Option<std::time::Duration>) -> Option<Msg> {
        answer_from(&mut self.poller, wait).map(Msg::Polled)
    }

    /// The machine reader's answer as a message (the air-gap reading, the removable media),
    /// as [`App::poll_answer`] for the tokens.
    pub fn read_answer(&mut self, wait: Option<std::time::Duration>) -> Option<Msg> {
        answer_from(&mut self.reader, wait).map(Msg::Read)
    }

    /// Keys while a token job runs: `?` (help), Esc (closes it) and Ctrl-C (stop, confirmed
    /// with `y`); every other key is ignored, so nothing starts another token operation or
    /// changes the ceremony until the job's result is applied.
    fn busy_key(&mut self, k: KeyEvent) {
        if let PromptState::Confirm { .. } = self.prompt {
            if let PromptState::Confirm {
                action: Pending::Quit,
                ..
            } = std::mem::replace(&mut self.prompt, PromptState::None)
                && k.code == KeyCode::Char('y')
            {
                self.stop();
            }
            return;
        }
        match k.code {
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                let question = match self.job.as_ref() {
                    Some(j) if j.kind == JobKind::Read => format!(
                        "Stop now, while {} is read? Nothing is recorded by it; the ceremony is sealed.",
                        j.what
                    ),
                    Some(j) if j.kind == JobKind::Record => format!(
                        "Stop now, while {} is written to the transcript? If it is not on disk yet it is not recorded; everything recorded before it is kept and the same command continues the ceremony.",
                        j.what
                    ),
                    j => format!(
                        "Stop now, while the token is still {}? That operation is abandoned; everything recorded so far is kept and the same command continues the ceremony.",
                        j.map(|j| j.what.as_str()).unwrap_or_default()
                    ),
                };
                self.confirm(question, Pending::Quit);
            }
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Esc => self.help = false,
            _ => {}
        }
    }

    fn tick(&mut self) {
        self.ticks += 1;
        if let Some(q) = &mut self.qr {
            q.advance();
        }
        // Tokens are polled about once a second on the screens that wait for one (not while
        // the last poll is unanswered: a token that hangs is asked again once it answers).
        let waiting = self.poller.as_ref().is_some_and(|p| p.waiting.is_some());
        if self.ticks.is_multiple_of(4) && self.wants_tokens() && !waiting {
            self.ask_tokens();
        }
        // What the screen shows of the machine (the air gap, the media) is read again about
        // once a second, not under an open prompt (a confirmation is about what it shows).
        let reading = self.reader.as_ref().is_some_and(|p| p.waiting.is_some());
        if self.ticks.is_multiple_of(4) && matches!(self.prompt, PromptState::None) && !reading {
            self.ask_machine();
        }
    }

    fn wants_tokens(&self) -> bool {
        match &self.phase {
            Phase::Sealing { .. } => true,
            // The roll call checks the key type against the advisories of the tokens present.
            Phase::Ceremony(s) => matches!(
                s.need(),
                Need::RollCall { .. } | Need::GenerateKey { .. } | Need::Sign { .. }
            ),
            _ => false,
        }
    }

    /// What the screen shows of the machine, read by the machine reader (`None`: nothing, or
    /// the ceremony is with a job).
    fn look(&self) -> Option<Look> {
        if self.job.is_some() {
            return None;
        }
        match &self.phase {
            Phase::Ceremony(s) => match s.need() {
                Need::AirgapCheck => Some(Look::Airgap {
                    step: s.step(),
                    sys: s.sysfs().to_path_buf(),
                }),
                Need::Export { .. } => Some(Look::Media),
                _ => None,
            },
            Phase::Choose { ws: None, .. } => Some(Look::Media),
            _ => None,
        }
    }

    /// Ask the machine reader what the screen shows of the machine (never waits: the answer
    /// comes as [`Msg::Read`]). Without a reader thread it is read here.
    fn ask_machine(&mut self) {
        let Some(look) = self.look() else {
            return;
        };
        self.read_asked = Some(look.clone());
        self.read_ids.0 += 1;
        let request = Reading {
            id: self.read_ids.0,
            look,
            system: Arc::clone(&self.system),
        };
        if let Some(read) = ask_on(&mut self.reader, "conclave-read", request) {
            self.read(read);
        }
    }

    /// The machine reader's answer: applied if the screen shows what it answers, else dropped
    /// (the step changed, or a newer answer was applied). An Enter at the air-gap check that
    /// waited for the first reading goes on once it is on screen.
    fn read(&mut self, read: Read) {
        if read.id <= self.read_ids.1 || self.look().as_ref() != Some(&read.look) {
            return;
        }
        self.read_ids.1 = read.id;
        match read.found {
            Found::Airgap(report) => self.airgap = Some((read.look, report)),
            Found::Media(media) => {
                let media: Vec<Medium> = media.into_iter().filter(|m| !m.read_only).collect();
                // At the export the destinations are the workspace and the media.
                if matches!(&self.phase, Phase::Ceremony(_)) {
                    self.selected = self.selected.min(media.len());
                }
                self.medium = self.medium.min(media.len().saturating_sub(1));
                self.media = Some(media);
            }
        }
        if matches!(self.waiting_for, Some((AfterPoll::Airgap, _))) {
            self.waiting_for = None;
            self.airgap_enter();
        }
    }

    /// The removable media as last found (none before the first answer).
    fn media(&self) -> &[Medium] {
        self.media.as_deref().unwrap_or_default()
    }

    /// The air-gap check as the screen shows it, as the event that records it (`None`: its
    /// first reading has not come).
    fn airgap_shown(&self) -> Option<Event> {
        let Phase::Ceremony(s) = &self.phase else {
            return None;
        };
        let look = self.look()?;
        let (_, report) = self.airgap.as_ref().filter(|(at, _)| *at == look)?;
        Some(s.airgap_event_of(report.clone()))
    }

    /// Enter at the air-gap check: the reading on screen is confirmed, then recorded if it
    /// still holds ([`App::record_airgap`]); before the first reading the Enter waits for it.
    fn airgap_enter(&mut self) {
        let Phase::Ceremony(s) = &self.phase else {
            return;
        };
        if s.need() != Need::AirgapCheck {
            return;
        }
        let actor = s.step_actor();
        match self.airgap_shown() {
            Some(shown) => self.confirm(
                "Record this air-gap check in the transcript?".into(),
                Pending::Airgap {
                    actor,
                    shown: Box::new(shown),
                },
            ),
            None => {
                self.waiting_for = Some((AfterPoll::Airgap, std::time::Instant::now()));
                if self.reader.as_ref().is_none_or(|r| r.waiting.is_none()) {
                    self.ask_machine();
                }
            }
        }
    }

    /// What a token poll asked now would answer (`None`: the screen shows no tokens, or the
    /// ceremony is with the token worker).
    fn poll_question(&self) -> Option<Question> {
        if self.job.is_some() || !self.wants_tokens() {
            return None;
        }
        let s = self.session()?;
        let signing = match (&self.phase, s.need()) {
            (Phase::Ceremony(_), Need::Sign { pending, .. }) => pending.first().and_then(|who| {
                s.engine
                    .roles_left(who)
                    .into_iter()
                    .next()
                    .map(|(keyid, _)| (who.clone(), keyid))
            }),
            _ => None,
        };
        let sealing = match &self.phase {
            Phase::Sealing { .. } => self.phase.next_sealer().cloned(),
            _ => None,
        };
        Some(Question {
            revision: s.engine.revision(),
            signing,
            sealing,
            named: s.plan.tokens.clone(),
        })
    }

    /// Ask the token poller for the tokens as they are now (never waits for the answer: it
    /// comes as [`Msg::Polled`]). Without a poller thread the tokens are asked here.
    fn ask_tokens(&mut self) {
        let Some(question) = self.poll_question() else {
            return;
        };
        let Some(lookup) = self.session().map(Session::token_lookup) else {
            return;
        };
        self.asked = Some(question.clone());
        self.poll_id += 1;
        let request = Request {
            id: self.poll_id,
            question,
            lookup,
            gate: self.gate.clone(),
        };
        if let Some(polled) = ask_on(&mut self.poller, "conclave-poll", request) {
            self.polled(polled);
        }
    }

    /// A poll's answer: applied if it answers the question the screen would ask now, else
    /// dropped (the ceremony moved on, or a newer answer was applied).
    fn polled(&mut self, polled: Polled) {
        if polled.id <= self.polled {
            return;
        }
        if self.poll_question().as_ref() != Some(&polled.question) {
            return;
        }
        self.polled = polled.id;
        self.tokens = polled.tokens;
        self.signing = polled.signing;
        self.sealing = polled.sealing;
        self.applied = Some(polled.question);
        if matches!(self.waiting_for, Some((AfterPoll::Airgap, _))) {
            // Waits for the machine reader, not the tokens.
            return;
        }
        if let Some((next, _)) = self.waiting_for.take() {
            match next {
                AfterPoll::TokenThen(who, question, action) => {
                    self.token_then(Some((who, question, action)));
                }
                AfterPoll::Pin(label, purpose) => self.pin(label, purpose),
                AfterPoll::RollCall => self.roll_call_enter(),
                AfterPoll::Airgap => self.airgap_enter(),
                AfterPoll::Key(k) => self.screen_key(k),
            }
        }
    }

    /// Whether the screen looks tokens up and no answer for the ceremony as it is now has come
    /// yet (a step or a signature since the last answer, or a token job ended).
    fn tokens_unknown(&self) -> bool {
        match self.poll_question() {
            Some(q) => self.applied.as_ref() != Some(&q),
            None => false,
        }
    }

    /// Run `next` once the tokens answer (asked now); the screen says it waits for them.
    fn after_poll(&mut self, next: AfterPoll) {
        self.waiting_for = Some((next, std::time::Instant::now()));
        if self.poll_question() != self.asked
            || self.poller.as_ref().is_none_or(|p| p.waiting.is_none())
        {
            self.ask_tokens();
        }
    }

    /// Enter at the roll call: before the names (as headless), a key type a present token's
    /// advisory concerns is refused, or a safe one proposed (to confirm) when the key type is
    /// the script's default; then the names, to confirm. The tokens are the poller's last
    /// answer for this step.
    fn roll_call_enter(&mut self) {
        let Phase::Ceremony(s) = &self.phase else {
            return;
        };
        if !matches!(s.need(), Need::RollCall { .. }) {
            return;
        }
        let actor = s.step_actor();
        let step = s.step();
        let present = self.tokens.clone().unwrap_or_default();
        let named = s.plan.values.contains_key("key_type");
        match s.key_type_at_roll_call(named, &present) {
            Err(e) => {
                self.message = Some(err(e));
                return;
            }
            Ok(Some(correction)) => {
                self.confirm(
                    format!(
                        "Record the correction ({})? Then confirm the roll call again.",
                        crate::transcript::display::describe(&correction)
                    ),
                    Pending::Record {
                        actor: "administrator".into(),
                        event: Box::new(correction),
                    },
                );
                return;
            }
            Ok(None) => {}
        }
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        let event = Event::RollCall {
            step,
            administrator: self.roll[0].trim().to_string(),
            keyholders: list(&self.roll[1]),
            witnesses: list(&self.roll[2]),
        };
        self.confirm(
            "Record these people as present?".into(),
            Pending::Record {
                actor,
                event: Box::new(event),
            },
        );
    }

    /// Keys while an action waits for the tokens' answer: Esc gives up waiting, `?` shows the
    /// help, Ctrl-C stops (confirmed); other keys are ignored (nothing starts twice, and PIN
    /// digits typed ahead of their prompt are not taken for anything else).
    fn waiting_key(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Esc if !self.help => {
                let machine = matches!(self.waiting_for, Some((AfterPoll::Airgap, _)));
                self.waiting_for = None;
                self.message = Some(ok(if machine {
                    "Stopped waiting for the air-gap check."
                } else {
                    "Stopped waiting for the tokens."
                }));
            }
            KeyCode::Esc => self.help = false,
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.waiting_for = None;
                self.key(k);
            }
            _ => {}
        }
    }

    /// While an action waits for the tokens, or a token poll has been unanswered for a few
    /// seconds: what the screen says.
    fn poll_note(&self) -> Option<String> {
        if let Some((next, since)) = &self.waiting_for {
            let what = match next {
                AfterPoll::Airgap => "Reading the network interfaces and radios",
                _ => "Asking the tokens",
            };
            return Some(format!(
                "{what} before going on ({} s; Esc stops waiting).",
                since.elapsed().as_secs()
            ));
        }
        let (_, since) = self.poller.as_ref()?.waiting?;
        let secs = since.elapsed().as_secs();
        (secs >= 3).then(|| {
            format!(
                "The tokens have not answered for {secs} s (a token or its reader may be stuck); the screen shows what they said last. Keys work as usual."
            )
        })
    }

    /// The token `who` signs with next: its name for the screen and whether it is present.
    fn signing_token(&self, who: &str) -> (String, Option<TokenDesc>) {
        // The polled answer holds for the key `who` signs with next.
        let next = self
            .session()
            .and_then(|s| s.engine.roles_left(who).into_iter().next())
            .map(|(k, _)| k);
        match &self.signing {
            Some((w, k, Some(t))) if w == who && next.as_ref() == Some(k) => {
                (t.label.clone(), Some(t.clone()))
            }
            Some((w, k, None)) if w == who && next.as_ref() == Some(k) => {
                (format!("holding key {}", k.short()), None)
            }
            _ => (
                self.session()
                    .map(|s| s.expected_token(who))
                    .unwrap_or_default(),
                None,
            ),
        }
    }

    /// Reset the screen-local state when the step changed, and prefill what the plan knows.
    fn after_change(&mut self) {
        // The ceremony is on the worker: its step is looked at when it is back.
        if self.job.is_some() {
            return;
        }
        // The tokens are asked again when what the screen looks up changed (a step, a
        // signature, the next sealer, a token assigned).
        if self.wants_tokens() && self.poll_question() != self.asked {
            self.ask_tokens();
        }
        // The machine is read again when what the screen shows of it changed (the air-gap
        // step, the media at the export or the workspace chooser).
        if self.look().is_some() && self.look() != self.read_asked {
            self.ask_machine();
        }
        let step = match &self.phase {
            Phase::Ceremony(s) => format!("{}:{:?}", s.step(), std::mem::discriminant(&s.need())),
            Phase::Sealing {
                signers,
                skipped,
                seal,
                sealed,
                withdrawn,
                ..
            } => {
                format!(
                    "seal:{}:{}:{}:{}:{}",
                    signers.len(),
                    skipped.len(),
                    seal.as_deref().unwrap_or_default(),
                    sealed.len(),
                    withdrawn.len()
                )
            }
            Phase::Summary { .. } => "summary".into(),
            Phase::Choose { .. } => "choose".into(),
            Phase::Gone => String::new(),
        };
        if step == self.seen_step {
            return;
        }
        self.seen_step = step;
        self.selected = 0;
        self.candidate = None;
        self.scroll = 0;
        self.review_seen = 0;
        self.review_list = false;
        self.other_scroll = 0;
        self.request_set_confirmed = false;
        self.review_find.clear();
        self.review_cache.get_mut().take();
        if let Phase::Ceremony(s) = &self.phase {
            let plan = &s.plan;
            self.values = s
                .script
                .parameters
                .iter()
                .map(|p| {
                    let v = match plan.values.get(&p.name) {
                        Some(ParamJson::Integer(i)) => i.to_string(),
                        Some(ParamJson::Text(t)) => t.clone(),
                        None => p.default.to_string(),
                    };
                    (p.name.clone(), v)
                })
                .collect();
            self.roll = [
                plan.administrator.clone(),
                plan.keyholders.join(", "),
                plan.witnesses.join(", "),
            ];
            self.ack_text = plan.acknowledgement.clone();
        }
    }

    fn key(&mut self, k: KeyEvent) {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            if matches!(self.phase, Phase::Summary { .. } | Phase::Choose { .. }) {
                self.quit = true;
            } else {
                self.confirm(
                    "Stop now? Everything recorded so far is kept; the same command continues the ceremony.".into(),
                    Pending::Quit,
                );
            }
            return;
        }
        // The welcome: Enter begins; other keys wait (Ctrl-C above still stops).
        if self.welcome.is_some() {
            if k.code == KeyCode::Enter {
                self.welcome = None;
            }
            return;
        }
        // The QR animation: Esc closes it, r shows the next file.
        if self.qr.is_some() {
            match k.code {
                KeyCode::Char('r') => self.next_qr(),
                _ => self.qr = None,
            }
            return;
        }
        // A prompt takes every key.
        match std::mem::replace(&mut self.prompt, PromptState::None) {
            PromptState::None => {}
            PromptState::Confirm { action, .. } => {
                if k.code == KeyCode::Char('y') {
                    self.run(action);
                } else {
                    self.message = Some(ok("Not confirmed: nothing was done."));
                }
                self.after_change();
                return;
            }
            PromptState::Pin {
                label,
                mut buf,
                purpose,
            } => {
                match k.code {
                    KeyCode::Esc => self.message = Some(ok("PIN entry cancelled.")),
                    KeyCode::Enter => {
                        // A PIN of a length the token cannot take is not sent (no try used).
                        let refused = self
                            .pin_token(&purpose)
                            .and_then(|t| check_pin_length(&t, buf.len()).err());
                        if let Some(e) = refused {
                            zeroize::Zeroize::zeroize(&mut *buf);
                            self.message = Some(Message {
                                error: true,
                                text: e.to_string(),
                            });
                            self.prompt = PromptState::Pin {
                                label,
                                buf,
                                purpose,
                            };
                            return;
                        }
                        self.with_pin(purpose, buf);
                        self.after_change();
                    }
                    KeyCode::Backspace => {
                        buf.pop();
                        self.prompt = PromptState::Pin {
                            label,
                            buf,
                            purpose,
                        };
                    }
                    KeyCode::F(2) => {
                        let (who, mgm) = match &purpose {
                            PinFor::Generate { keyholder, .. } => (keyholder.clone(), false),
                            PinFor::ManagementKey { keyholder, .. } => (keyholder.clone(), true),
                            PinFor::Sign { who } | PinFor::SealSign { who } => (who.clone(), false),
                        };
                        if let Some(p) =
                            self.session().filter(|s| s.practice_tokens).and_then(|s| {
                                if mgm {
                                    s.plan.management_keys.get(&who)
                                } else {
                                    s.plan.pins.get(&who)
                                }
                            })
                        {
                            buf.clear();
                            buf.push_str(p);
                        }
                        self.prompt = PromptState::Pin {
                            label,
                            buf,
                            purpose,
                        };
                    }
                    KeyCode::Char(c) if !c.is_control() && buf.len() < 64 => {
                        crate::pin::push_pin_char(&mut buf, c);
                        self.prompt = PromptState::Pin {
                            label,
                            buf,
                            purpose,
                        };
                    }
                    _ => {
                        self.prompt = PromptState::Pin {
                            label,
                            buf,
                            purpose,
                        }
                    }
                }
                return;
            }
            PromptState::Text {
                label,
                mut buf,
                purpose,
            } => {
                match k.code {
                    KeyCode::Esc => {}
                    KeyCode::Enter => self.with_text(purpose, buf),
                    KeyCode::Backspace => {
                        buf.pop();
                        self.prompt = PromptState::Text {
                            label,
                            buf,
                            purpose,
                        };
                    }
                    KeyCode::Char(c) if !c.is_control() && buf.chars().count() < 200 => {
                        buf.push(c);
                        self.prompt = PromptState::Text {
                            label,
                            buf,
                            purpose,
                        };
                    }
                    _ => {
                        self.prompt = PromptState::Text {
                            label,
                            buf,
                            purpose,
                        }
                    }
                }
                return;
            }
        }
        match k.code {
            KeyCode::Char('?') => {
                self.help = !self.help;
                return;
            }
            KeyCode::Esc if self.help => {
                self.help = false;
                return;
            }
            KeyCode::Char('!') if self.session().is_some() => {
                self.text(
                    "Exception: name of the witness recording it".into(),
                    String::new(),
                    TextFor::ExceptionWitness,
                );
                return;
            }
            _ => {}
        }
        self.help = false;
        self.screen_key(k);
        self.after_change();
    }

    fn confirm(&mut self, question: String, action: Pending) {
        self.prompt = PromptState::Confirm { question, action };
        self.drain = true;
    }

    /// Open the PIN prompt. What the token's flags say about PIN tries is shown with it, and
    /// a token that reports its final try asks for a confirmation first.
    fn pin(&mut self, label: String, purpose: PinFor) {
        if !matches!(purpose, PinFor::ManagementKey { .. }) && self.tokens_unknown() {
            // The PIN-try flags shown with the prompt are the token's as they are now.
            self.after_poll(AfterPoll::Pin(label, purpose));
            return;
        }
        let token = self.pin_token(&purpose);
        // Tokens labelled alike (every YubiHSM 2 is "YubiHSM"): the keyholder is told which.
        let label = match token.as_ref().filter(|t| {
            self.tokens.as_ref().is_ok_and(|ts| {
                ts.iter()
                    .any(|o| o.label == t.label && o.serial != t.serial)
            })
        }) {
            Some(t) => format!(
                "{label}\nthe token with serial {} (more than one present token is labelled {})",
                t.serial, t.label
            ),
            None => label,
        };
        let confirmed = std::mem::take(&mut self.final_try_ok);
        let label = match pin_step(token.as_ref(), &label, confirmed) {
            PinStep::Confirm(question) => {
                self.confirm(question, Pending::FinalTry { label, purpose });
                return;
            }
            PinStep::Prompt(label) => label,
        };
        self.prompt = PromptState::Pin {
            label,
            buf: crate::pin::pin_buffer(),
            purpose,
        };
        self.drain = true;
    }

    /// The present token a PIN is typed for.
    fn pin_token(&self, purpose: &PinFor) -> Option<TokenDesc> {
        match purpose {
            // The driver's lookup, the one key generation uses, among the tokens the poller
            // listed (the prompt opens once they answered for the ceremony as it is now).
            PinFor::Generate { keyholder, .. } => self
                .session()?
                .keyholder_token_among(keyholder, self.tokens.as_ref().ok()?)
                .ok(),
            // Not a PIN: no PIN length or PIN-try warning applies.
            PinFor::ManagementKey { .. } => None,
            PinFor::Sign { who } => self.signing_token(who).1,
            PinFor::SealSign { who } => match &self.sealing {
                Some((w, Some(t))) if w == who => Some(t.clone()),
                _ => None,
            },
        }
    }

    fn text(&mut self, label: String, value: String, purpose: TextFor) {
        self.prompt = PromptState::Text {
            label,
            buf: value,
            purpose,
        };
    }

    /// Keys of the screen itself (no prompt open).
    fn screen_key(&mut self, k: KeyEvent) {
        // A note ("Recorded.", "Key of alice generated") tells the outcome of the last action:
        // the next key on the screen is another action, so the note does not stay under a step
        // it no longer describes. Errors stay until what they describe changes. On the review
        // the note goes after the key: what has been on screen is the screen as drawn, with
        // the note (clearing it first would count lines the larger body shows as read).
        let note = self.message.clone().filter(|m| !m.error);
        if note.is_some() {
            if view::review_layout(&self.view_state(), self.term.0, self.term.1).is_some() {
                self.screen_key_inner(k);
                if self.message == note {
                    self.message = None;
                }
                return;
            }
            self.message = None;
        }
        self.screen_key_inner(k);
    }

    /// [`Self::screen_key`] once the last note is dealt with.
    fn screen_key_inner(&mut self, k: KeyEvent) {
        if self.correcting {
            self.correction_key(k);
            return;
        }
        // Esc before any key is generated: back to the parameters, to correct a value.
        if k.code == KeyCode::Esc
            && let Phase::Ceremony(s) = &self.phase
            && !matches!(s.need(), Need::Parameters | Need::Done)
        {
            match s.engine.correction_closed() {
                None => {
                    self.values = s
                        .engine
                        .parameters()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect();
                    self.correcting = true;
                    self.selected = 0;
                }
                Some(why) => {
                    self.message = Some(Message {
                        error: true,
                        text: format!("No going back: {why}."),
                    });
                }
            }
            return;
        }
        // A signing or seal screen whose meters and signers (or an export whose files) do not fit pages them with the
        // review's keys, one screen less one row at a time.
        if matches!(
            k.code,
            KeyCode::PageDown | KeyCode::PageUp | KeyCode::Home | KeyCode::End
        ) && let Some(p) = view::token_rows(&self.view_state(), self.term.0, self.term.1)
        {
            let last = p.total.saturating_sub(p.shown);
            let page = p.shown.saturating_sub(1).max(1);
            self.scroll = match k.code {
                KeyCode::PageDown => (p.first + page).min(last),
                KeyCode::PageUp => p.first.saturating_sub(page),
                KeyCode::Home => 0,
                _ => last,
            };
            return;
        }
        let up = matches!(k.code, KeyCode::Up | KeyCode::Char('k'));
        let down = matches!(k.code, KeyCode::Down | KeyCode::Char('j'));
        let enter = k.code == KeyCode::Enter;
        // A token action: asked to confirm only once the expected token is present.
        let later = match &self.phase {
            Phase::Gone => None,
            Phase::Choose { scripts, ws, .. } => {
                let n = scripts.len();
                let media = self.media().len();
                if k.code == KeyCode::Char('w') && ws.is_none() && media > 0 {
                    self.medium = (self.medium + 1) % media;
                } else if up {
                    self.selected = self.selected.saturating_sub(1);
                } else if down {
                    self.selected = (self.selected + 1).min(n.saturating_sub(1));
                } else if enter {
                    self.choose();
                }
                None
            }
            Phase::Summary { .. } => {
                match k.code {
                    KeyCode::Char('q') | KeyCode::Enter => self.quit = true,
                    KeyCode::Char('r') => self.next_qr(),
                    _ => {}
                }
                None
            }
            Phase::Sealing { .. } => self.sealing_key(k),
            Phase::Ceremony(_) => self.ceremony_key(k),
        };
        self.token_then(later);
    }

    /// Keys at the seal: log in, skip, write the seal, sign it, withdraw a keyholder, finish.
    /// The token action to confirm once the token is present.
    fn sealing_key(&mut self, k: KeyEvent) -> Option<Later> {
        let Phase::Sealing { signers, seal, .. } = &self.phase else {
            return None;
        };
        let mut later = None;
        let next = self.phase.next_sealer().cloned();
        let logged_in = |who: &str| signers.iter().any(|(s, _)| s == who);
        let login_only = next
            .as_deref()
            .is_some_and(|w| self.phase.checkpoint_only(w));
        match (next, k.code, seal) {
            // Signed the seal before an interruption: logs in only for the key-event
            // log's checkpoint (or is skipped: the closed seal records nothing more).
            (Some(who), KeyCode::Enter, Some(_)) if login_only => {
                later = Some((
                    who.clone(),
                    format!(
                        "{who} signed the seal before the interruption: {who} logs in to their token to sign the key-event log's checkpoint? The seal is not signed again."
                    ),
                    Pending::SealSign { who },
                ));
            }
            (Some(who), KeyCode::Char('s'), Some(_)) if login_only => {
                self.message = Some(ok(format!(
                    "{who} does not sign the key-event log's checkpoint ({who}'s seal signature stands)."
                )));
                if let Phase::Sealing { skipped, .. } = &mut self.phase {
                    skipped.push(who);
                }
            }
            (Some(who), KeyCode::Char('w'), Some(_)) if login_only => {
                self.message = Some(Message {
                    error: true,
                    text: format!(
                        "{who} has signed the seal: a signer who signed is not withdrawn. Press s if {who} does not sign the key-event log's checkpoint."
                    ),
                });
            }
            // Before the seal is written: each keyholder logs in (nothing is signed).
            (Some(who), KeyCode::Enter, None) => {
                later = Some((
                    who.clone(),
                    format!(
                        "{who} logs in to their token for the seal? Nothing is signed yet: the seal hash is shown before anyone signs it."
                    ),
                    Pending::SealSign { who },
                ));
            }
            (Some(_), KeyCode::Enter, Some(_))
                if !view::digests_fit(&self.view_state(), self.term.0, self.term.1) =>
            {
                self.message = Some(Message {
                    error: true,
                    text: "The terminal is too small to show the seal hash whole: enlarge it before signing.".into(),
                });
            }
            (Some(who), KeyCode::Enter, Some(_)) => {
                // The seal hash stays on the screen beside the confirmation.
                let question = format!(
                    "{who} signs the seal of this transcript (the hash on screen) with their token?"
                );
                if logged_in(&who) {
                    self.confirm(question, Pending::SealSignNow { who });
                } else {
                    later = Some((who.clone(), question, Pending::SealSign { who }));
                }
            }
            (Some(who), KeyCode::Char('s'), None) => self.text(
                format!("Why does {who} not sign the seal? (recorded in the transcript)"),
                String::new(),
                TextFor::SealSkipReason { who },
            ),
            (Some(who), KeyCode::Char('s'), Some(_)) => {
                self.message = Some(Message {
                    error: true,
                    text: format!(
                        "The seal is written and lists {who} as a signer: {who} signs it, or press w to withdraw {who} from it (recorded with the reason; a new seal lists the others, who all sign it)."
                    ),
                })
            }
            (Some(who), KeyCode::Char('w'), Some(_)) => self.text(
                format!(
                    "Why is {who} withdrawn from the seal? (recorded in the transcript; a new seal lists the others, who all sign it)"
                ),
                String::new(),
                TextFor::SealWithdrawReason { who },
            ),
            (None, KeyCode::Enter, None) => {
                let names: Vec<&str> = signers.iter().map(|(w, _)| w.as_str()).collect();
                if names.is_empty() {
                    self.message = Some(Message {
                        error: true,
                        text: "At least one keyholder's token must sign the seal.".into(),
                    });
                } else {
                    self.confirm(
                        format!(
                            "Write the seal? It lists {} as its signers; nothing can be added to the ceremony after this, and a keyholder whose token then fails can only be withdrawn (recorded with the reason; a new seal lists the others).",
                            names.join(", ")
                        ),
                        Pending::WriteSeal,
                    );
                }
            }
            (None, KeyCode::Enter, Some(_)) => self.finish_seal(),
            _ => {}
        }
        later
    }

    /// Keys at a step of the ceremony. The token action to confirm once the token is present.
    fn ceremony_key(&mut self, k: KeyEvent) -> Option<Later> {
        let Phase::Ceremony(s) = &self.phase else {
            return None;
        };
        let need = s.need();
        let actor = s.step_actor();
        let step = s.step();
        let enter = k.code == KeyCode::Enter;
        let up = matches!(k.code, KeyCode::Up | KeyCode::Char('k'));
        let down = matches!(k.code, KeyCode::Down | KeyCode::Char('j'));
        match need {
            Need::Done => {}
            Need::Parameters => self.parameters_key(k),
            Need::Acknowledge { .. }
            | Need::AirgapCheck
            | Need::ClockConfirm
            | Need::RollCall { .. } => self.room_key(k, need),
            Need::ImportKeys { .. }
            | Need::LoadMetadata
            | Need::ImportRequests
            | Need::ImportTargets
            | Need::ImportEvent { .. }
            | Need::ImportPending { .. }
            | Need::ImportLayout { .. } => self.input_key(k, need),
            Need::GenerateKey { .. } => return self.generation_key(k, need),
            Need::Sign { .. } => return self.sign_key(k, need),
            Need::Propose => {
                if enter {
                    self.make_and_record(
                        "the proposal".into(),
                        &actor,
                        |s| s.propose_event(),
                        ("Proposal built: review it.", |_| {}),
                    );
                }
            }
            Need::Review { digests } => {
                self.review_key(
                    k.code,
                    actor,
                    Event::Approved {
                        step,
                        digests,
                        request_set_sha256: None,
                    },
                );
            }
            Need::Verify => {
                if enter {
                    self.record(
                        &actor,
                        Event::Verified { step },
                        "The signed metadata verifies.",
                    );
                }
            }
            Need::Export { .. } => {
                let n = self.media().len() + 1;
                if up {
                    self.selected = self.selected.saturating_sub(1);
                } else if down {
                    self.selected = (self.selected + 1).min(n - 1);
                } else if enter {
                    let medium = self
                        .selected
                        .checked_sub(1)
                        .and_then(|i| self.media().get(i))
                        .map(|m| m.mount_point.join("conclave-export"));
                    let question = match &medium {
                        Some(m) => format!(
                            "Write the signed files to {} and to the workspace copy {}?",
                            m.display(),
                            s.ws.export().display()
                        ),
                        None => format!("Write the signed files to {}?", s.ws.export().display()),
                    };
                    self.confirm(question, Pending::Export { medium });
                }
            }
            Need::Seal => {
                if enter {
                    self.confirm(
                        "Seal the transcript? Nothing can be added to this ceremony after the seal.".into(),
                        Pending::Record {
                            actor,
                            event: Box::new(Event::Sealed { step }),
                        },
                    );
                }
            }
        }
        None
    }

    /// Keys at the parameters: select, edit, record (checked whole first).
    fn parameters_key(&mut self, k: KeyEvent) {
        let Phase::Ceremony(s) = &self.phase else {
            return;
        };
        let up = matches!(k.code, KeyCode::Up | KeyCode::Char('k'));
        let down = matches!(k.code, KeyCode::Down | KeyCode::Char('j'));
        let enter = k.code == KeyCode::Enter;
        let n = s.script.parameters.len();
        if up {
            self.selected = self.selected.saturating_sub(1);
        } else if down {
            self.selected = (self.selected + 1).min(n.saturating_sub(1));
        } else if k.code == KeyCode::Char('e') {
            if let Some(p) = s.script.parameters.get(self.selected) {
                let name = p.name.clone();
                let label = format!("Value of {name} ({})", p.allowed());
                let v = self.values.get(&name).cloned().unwrap_or_default();
                self.text(label, v, TextFor::Parameter(name));
            }
        } else if enter {
            // Checked whole before the confirmation, against the keyholders
            // named already when the roll call is filled in.
            let named = self.named_keyholders();
            let checked = param_values(&s.script, &self.values).and_then(|v| {
                s.engine
                    .check_parameters(&v, named)
                    .map(|()| v)
                    .map_err(|e| e.to_string())
            });
            match checked {
                Ok(values) => {
                    let practice = s.plan.practice;
                    self.confirm(
                        "Record these parameter values for this ceremony?".into(),
                        Pending::Record {
                            actor: "administrator".into(),
                            event: Box::new(Event::Parameters { values, practice }),
                        },
                    );
                }
                Err(m) => {
                    self.message = Some(Message {
                        error: true,
                        text: m,
                    })
                }
            }
        }
    }

    /// Keys at the room's steps: acknowledgements, air-gap check, clock, roll call.
    fn room_key(&mut self, k: KeyEvent, need: Need) {
        let Phase::Ceremony(s) = &self.phase else {
            return;
        };
        let up = matches!(k.code, KeyCode::Up | KeyCode::Char('k'));
        let down = matches!(k.code, KeyCode::Down | KeyCode::Char('j'));
        let enter = k.code == KeyCode::Enter;
        let actor = s.step_actor();
        let step = s.step();
        match need {
            Need::Acknowledge {
                prompt,
                record_text,
            } => {
                if record_text && k.code == KeyCode::Char('e') {
                    self.text(prompt, self.ack_text.clone(), TextFor::Acknowledgement);
                } else if enter {
                    let value = if record_text {
                        if self.ack_text.trim().is_empty() {
                            self.message = Some(Message {
                                error: true,
                                text: "Type the text to record first (e).".into(),
                            });
                            return;
                        }
                        Some(self.ack_text.trim().to_string())
                    } else {
                        None
                    };
                    // The value typed is on the confirmation, so the room checks what is
                    // recorded (escaped: it is typed text).
                    let question = match &value {
                        Some(v) => format!(
                            "Confirm: {prompt}\nRecorded as typed: {}",
                            crate::text::show(v)
                        ),
                        None => format!("Confirm: {prompt}"),
                    };
                    self.confirm(
                        question,
                        Pending::Record {
                            actor,
                            event: Box::new(Event::Acknowledged { step, value }),
                        },
                    );
                }
            }
            // What the screen shows is confirmed (once its first reading came).
            Need::AirgapCheck if enter => self.airgap_enter(),
            Need::ClockConfirm => {
                if k.code == KeyCode::Char('e') {
                    self.text(
                        "Reference time (UTC, YYYY-MM-DD HH:MM)".into(),
                        self.reference_text.clone(),
                        TextFor::ReferenceTime,
                    );
                } else if enter {
                    let machine = s.machine_time();
                    let checked = clock_reference(&self.reference_text, &machine, s.plan.practice)
                        .and_then(|r| s.clock_event(r.as_deref()).map_err(|e| e.to_string()));
                    match checked {
                        Ok(event) => self.confirm(
                            format!("The clock reads {machine}. Record it as confirmed?"),
                            Pending::Record {
                                actor,
                                event: Box::new(event),
                            },
                        ),
                        Err(text) => {
                            self.message = Some(Message { error: true, text });
                        }
                    }
                }
            }
            Need::RollCall { .. } => {
                if up {
                    self.selected = self.selected.saturating_sub(1);
                } else if down {
                    self.selected = (self.selected + 1).min(2);
                } else if k.code == KeyCode::Char('e') {
                    let label = [
                        "Ceremony administrator",
                        "Keyholders (comma separated)",
                        "Witnesses (comma separated)",
                    ][self.selected.min(2)];
                    self.text(
                        label.into(),
                        self.roll[self.selected.min(2)].clone(),
                        TextFor::RollCall(self.selected.min(2)),
                    );
                } else if enter {
                    // The key type is checked against the tokens present as the
                    // poller lists them for this step: asked first if not known yet.
                    if self.tokens_unknown() {
                        self.after_poll(AfterPoll::RollCall);
                    } else {
                        self.roll_call_enter();
                    }
                }
            }
            _ => {}
        }
    }

    /// Keys at an input step: read it from the medium and record it (the online keys: once
    /// the room confirms their ids).
    fn input_key(&mut self, k: KeyEvent, need: Need) {
        let Phase::Ceremony(s) = &self.phase else {
            return;
        };
        if k.code != KeyCode::Enter {
            return;
        }
        let actor = s.step_actor();
        let step = s.step();
        match need {
            Need::ImportKeys { .. } => {
                // The online keys were on screen: the room confirms the key ids read
                // aloud before they are recorded.
                self.confirm(
                    "The key ids on screen were read aloud and match the registry's online keys? They are recorded and go into the metadata to sign.".into(),
                    Pending::Record {
                        actor,
                        event: Box::new(s.import_keys_event()),
                    },
                );
            }
            Need::LoadMetadata
            | Need::ImportRequests
            | Need::ImportTargets
            | Need::ImportEvent { .. }
            | Need::ImportPending { .. }
            | Need::ImportLayout { .. } => {
                // Read from the medium and recorded on the worker thread.
                self.make_and_record(
                    format!("the input of step {step}"),
                    &actor,
                    move |s| match need {
                        Need::LoadMetadata => s.load_metadata_event(),
                        Need::ImportEvent { event, known_good } => {
                            s.import_event_event(&event, &known_good)
                        }
                        Need::ImportRequests => s.import_requests_event(),
                        Need::ImportTargets => s.import_targets_event(),
                        Need::ImportLayout { file } => s.import_layout_event(&file),
                        Need::ImportPending { file, trusted_root } => {
                            s.import_pending_event(&file, &trusted_root)
                        }
                        _ => Err(moved_on()),
                    },
                    // Then the message says what was loaded.
                    ("Loaded and recorded.", App::show_loaded),
                );
            }
            _ => {}
        }
    }

    /// Keys at key generation: choose and assign a present token, generate. The token action
    /// to confirm once the token is present.
    fn generation_key(&mut self, k: KeyEvent, need: Need) -> Option<Later> {
        let Phase::Ceremony(s) = &self.phase else {
            return None;
        };
        let enter = k.code == KeyCode::Enter;
        let mut later = None;
        let Need::GenerateKey {
            keyholder,
            key_type,
        } = need
        else {
            return None;
        };
        let present: Vec<TokenDesc> = self
            .tokens
            .as_ref()
            .map(|ts| ts.iter().filter(|t| t.initialized).cloned().collect())
            .unwrap_or_default();
        if k.code == KeyCode::Char('t') && !present.is_empty() {
            // Propose another present token as this keyholder's: the one after the token
            // proposed before, found again in the list as it is now.
            let next = self
                .candidate
                .as_ref()
                .and_then(|c| present.iter().position(|t| same_token(t, c)))
                .map_or(0, |i| (i + 1) % present.len());
            let t = &present[next];
            self.message = Some(ok(format!(
                "{t} selected: press a to make it {keyholder}'s token for this ceremony"
            )));
            self.candidate = Some(t.clone());
        } else if k.code == KeyCode::Char('a') {
            if self.tokens_unknown() {
                // Whose token it is is told from the tokens as they are now.
                self.after_poll(AfterPoll::Key(k));
                return None;
            }
            // The token the room chose, found again among the tokens the poller listed last:
            // never another token that took its place in the list.
            let chosen = self
                .candidate
                .as_ref()
                .map(|c| (c, present.iter().find(|t| same_token(t, c))));
            // The driver's answer (recorded key, plan, the room's choice), from the tokens
            // the poller listed.
            let listed = self.tokens.as_deref().unwrap_or_default();
            match chosen {
                None => {
                    self.message = Some(Message {
                        error: true,
                        text: "Choose the token first (t).".into(),
                    });
                }
                Some((c, None)) => {
                    self.message = Some(Message {
                        error: true,
                        text: format!(
                            "the token you chose, {}, is no longer present: insert it again or choose a present token (t)",
                            c.serial
                        ),
                    });
                }
                Some((_, Some(t))) => {
                    if let Some(owner) = s.token_owner_among(t, listed).filter(|o| *o != keyholder)
                    {
                        self.message = Some(Message {
                            error: true,
                            text: format!(
                                "token {} (serial {}) is {owner}'s token; {keyholder}'s own token is expected ({})",
                                t.label,
                                t.serial,
                                s.expected_token(&keyholder)
                            ),
                        });
                    } else {
                        self.confirm(
                            format!("{t} is the token {keyholder} brought for this ceremony?"),
                            Pending::Assign {
                                keyholder: keyholder.clone(),
                                serial: t.serial.clone(),
                            },
                        );
                    }
                }
            }
        } else if enter {
            let expected = label_of(&self.tokens, &s.expected_token(&keyholder));
            later = Some((
                keyholder.clone(),
                format!(
                    "Generate a new {key_type} key inside token {expected} of {keyholder}? The private key never leaves the token."
                ),
                Pending::Generate {
                    keyholder,
                    key_type,
                },
            ));
        }
        later
    }

    /// Keys at the signing step: sign, skip a keyholder, close signing. The token action to
    /// confirm once the token is present.
    fn sign_key(&mut self, k: KeyEvent, need: Need) -> Option<Later> {
        let Phase::Ceremony(s) = &self.phase else {
            return None;
        };
        let actor = s.step_actor();
        let step = s.step();
        let mut later = None;
        let Need::Sign { pending, meters } = need else {
            return None;
        };
        let met = !meters.is_empty() && meters.values().all(|m| m.verified());
        match (k.code, pending.first()) {
            (KeyCode::Char('c'), _) if met => {
                let waiting = if pending.is_empty() {
                    String::new()
                } else {
                    format!(" {} will not sign.", pending.join(", "))
                };
                self.confirm(
                    format!(
                        "Close signing: every threshold is met ({}).{waiting}",
                        meter_summary(&meters)
                    ),
                    Pending::Record {
                        actor,
                        event: Box::new(Event::SigningClosed { step }),
                    },
                );
                return None;
            }
            (KeyCode::Char('c'), _) => {
                self.message = Some(Message {
                    error: true,
                    text: format!(
                        "Signing cannot close yet: {}. Skip a keyholder whose token is dead (s) and go on with the next one.",
                        meter_summary(&meters)
                    ),
                });
                return None;
            }
            (KeyCode::Char('s'), Some(who)) => {
                self.text(
                    format!("Why does {who} not sign? (recorded in the transcript)"),
                    String::new(),
                    TextFor::SignSkipReason { who: who.clone() },
                );
                return None;
            }
            (KeyCode::Enter, _) => {}
            _ => return None,
        }
        match pending.first() {
            None => self.confirm(
                "Close signing: every threshold is met?".into(),
                Pending::Record {
                    actor,
                    event: Box::new(Event::SigningClosed { step }),
                },
            ),
            Some(who) => {
                let who = who.clone();
                let roles: Vec<String> = s
                    .engine
                    .roles_left(&who)
                    .into_iter()
                    .map(|(_, r)| r.to_string())
                    .collect();
                later = Some((
                    who.clone(),
                    format!(
                        "{who} signs {} (the digests approved in the review) with their token?",
                        roles.join(" and ")
                    ),
                    Pending::Sign { who },
                ));
            }
        }
        later
    }

    /// A key at the review. Paging moves one screen less one line (the screen as drawn on
    /// this terminal); approval waits until every line has been on screen and is refused while
    /// the digests do not fit. A summary-first review (a large claimed-project review) pages
    /// through its summary the same way, opens its full list with `l` (find with `/` and `n`),
    /// and is approved from the summary once the room confirmed the request set's SHA-256 (`d`):
    /// the approval carries it.
    fn review_key(&mut self, code: KeyCode, actor: String, mut approve: Event) {
        let v = self.view_state();
        let (Some(layout), Screen::Review { lines, pane, .. }) =
            (view::review_layout(&v, self.term.0, self.term.1), &v.screen)
        else {
            return;
        };
        let pane = *pane;
        let n = lines.len();
        let shown = layout.shown(lines, self.scroll);
        // The screen at this position has been drawn: its lines have been on screen (the
        // summary's or every change's; the full list behind a summary is not what is approved).
        if layout.fits && pane != ReviewPane::FullList {
            self.review_seen = self.review_seen.max(self.scroll + shown);
        }
        let last = layout.last_start(lines);
        let page = shown.saturating_sub(1).max(1);
        // A refusal ("Not approved: lines 7-22 of 22 have not been on screen") describes the
        // review as it was at Enter: moving through it changes that, so the refusal goes (Enter
        // says again what is still missing).
        if code != KeyCode::Enter && self.message.as_ref().is_some_and(|m| m.error) {
            self.message = None;
        }
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll = (self.scroll + 1).min(last),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => self.scroll = (self.scroll + page).min(last),
            KeyCode::Home | KeyCode::Char('g') => self.scroll = 0,
            KeyCode::End | KeyCode::Char('G') => self.scroll = last,
            KeyCode::Char('l') if pane != ReviewPane::Changes => {
                self.review_list = !self.review_list;
                std::mem::swap(&mut self.scroll, &mut self.other_scroll);
            }
            KeyCode::Char('/') if pane == ReviewPane::FullList => self.text(
                "Find in the full list (project, key id, file name)".into(),
                self.review_find.clone(),
                TextFor::ReviewFind,
            ),
            KeyCode::Char('n') if pane == ReviewPane::FullList => {
                self.find_in_review(lines, self.scroll + 1);
            }
            KeyCode::Char('d') if matches!(pane, ReviewPane::Summary { .. }) => {
                let Some(digest) = self.session().and_then(|s| s.engine.request_set_sha256())
                else {
                    return;
                };
                let bytes = hex::decode(&digest).unwrap_or_default();
                self.confirm(
                    format!(
                        "Does the request set's SHA-256 on screen match the value the registry published before the ceremony, every group? {} / {}",
                        pgp_words(bytes.get(..8).unwrap_or(&bytes)).join(" "),
                        hex_groups(&bytes)
                    ),
                    Pending::RequestSetMatches,
                );
            }
            KeyCode::Enter => {
                let refusal = approval_refusal(
                    pane,
                    layout.fits,
                    self.review_seen,
                    n,
                    self.request_set_confirmed,
                );
                if let Some(text) = refusal {
                    let text = if layout.fits {
                        text
                    } else {
                        format!(
                            "The terminal is too small to show every digest whole (needs {}x{} for the review): enlarge it before approving.",
                            layout.terminal_needs(self.term).0,
                            layout.terminal_needs(self.term).1,
                        )
                    };
                    self.message = Some(Message { error: true, text });
                    return;
                }
                if matches!(pane, ReviewPane::Summary { .. })
                    && let Event::Approved {
                        request_set_sha256, ..
                    } = &mut approve
                {
                    *request_set_sha256 =
                        self.session().and_then(|s| s.engine.request_set_sha256());
                }
                let question = if matches!(pane, ReviewPane::Summary { .. }) {
                    "Approve: the room has read the summary and every top-level change, confirmed the request set's SHA-256, and read the digests aloud?"
                } else {
                    "Approve: the room has reviewed every change and read the digests aloud?"
                };
                self.confirm(
                    question.into(),
                    Pending::Record {
                        actor,
                        event: Box::new(approve),
                    },
                );
            }
            _ => {}
        }
    }

    /// Move the full list to the next line from `from` (wrapping) that contains the text last
    /// searched for (case-insensitive).
    fn find_in_review(&mut self, lines: &[String], from: usize) {
        let needle = self.review_find.to_lowercase();
        if needle.is_empty() {
            return;
        }
        let n = lines.len();
        let hit = (0..n)
            .map(|i| (from + i) % n.max(1))
            .find(|&i| lines[i].to_lowercase().contains(&needle));
        self.message = Some(match hit {
            Some(i) => {
                self.scroll = i;
                ok(format!(
                    "\"{}\" found at line {} of {n}.",
                    crate::text::show(&self.review_find),
                    i + 1
                ))
            }
            None => Message {
                error: true,
                text: format!(
                    "\"{}\" is not in the full list.",
                    crate::text::show(&self.review_find)
                ),
            },
        });
    }

    fn token_then(&mut self, later: Option<(String, String, Pending)>) {
        let Some((who, question, action)) = later else {
            return;
        };
        if self.tokens_unknown() {
            // Which token is present is told as the tokens say it now.
            self.after_poll(AfterPoll::TokenThen(who, question, action));
            return;
        }
        if let Pending::SealSign { .. } = action
            && let Some((w, Some(t))) = &self.sealing
            && *w == who
        {
            if t.pin.locked {
                self.message = Some(Message {
                    error: true,
                    text: format!(
                        "{t}: the PIN is locked; the token's security officer must unlock it"
                    ),
                });
            } else {
                let q = format!("{question} (token {}, serial {})", t.label, t.serial);
                self.confirm(q, action);
            }
            return;
        }
        if let Pending::Sign { .. } = action {
            // The token that holds the key to sign with (a keyholder replacing their own token
            // signs with the old one and the new one in turn).
            match self.signing_token(&who) {
                (name, Some(t)) if !t.pin.locked => {
                    if !view::digests_fit(&self.view_state(), self.term.0, self.term.1) {
                        self.message = Some(Message {
                            error: true,
                            text: "The terminal is too small to show the digests to sign whole: enlarge it before signing.".into(),
                        });
                        return;
                    }
                    // The digests stay on the screen beside the confirmation (and the PIN
                    // prompt after it): the question does not repeat them.
                    self.confirm(
                        format!("{question} (token {name}, serial {})", t.serial),
                        action,
                    )
                }
                (_, Some(t)) => {
                    self.message = Some(Message {
                        error: true,
                        text: format!(
                            "{t}: the PIN is locked; the token's security officer must unlock it"
                        ),
                    })
                }
                (name, None) => {
                    let present: Vec<String> = self
                        .tokens
                        .as_ref()
                        .map(|ts| ts.iter().map(|t| t.label.clone()).collect())
                        .unwrap_or_default();
                    self.message = Some(Message {
                        error: true,
                        text: if present.is_empty() {
                            format!("Insert the token {name} of {who} first.")
                        } else {
                            format!(
                                "token {} inserted, expected {who}'s token {name}",
                                present.join(", ")
                            )
                        },
                    });
                }
            }
            return;
        }
        if self.token_ready(&who) {
            self.confirm(question, action);
        }
    }

    /// Whether the expected token of `who` is present; says which token is there otherwise
    /// (before any PIN is asked).
    fn token_ready(&mut self, who: &str) -> bool {
        let Some(s) = self.session() else {
            return false;
        };
        let (status, _) = token_status(&self.tokens, &s.expected_token(who), who);
        match status {
            TokenStatus::Present => {
                let locked = self.tokens.as_ref().ok().and_then(|ts| {
                    let expected = s.expected_token(who);
                    ts.iter()
                        .find(|t| t.label == expected || t.serial == expected)
                        .filter(|t| t.pin.locked)
                        .map(|t| t.to_string())
                });
                if let Some(t) = locked {
                    self.message = Some(Message {
                        error: true,
                        text: format!(
                            "{t}: the PIN is locked; the token's security officer must unlock it"
                        ),
                    });
                    return false;
                }
                true
            }
            TokenStatus::Wrong(m) => {
                self.message = Some(Message {
                    error: true,
                    text: m,
                });
                false
            }
            TokenStatus::Missing => {
                self.message = Some(Message {
                    error: true,
                    text: format!("Insert the token {} of {who} first.", s.expected_token(who)),
                });
                false
            }
            TokenStatus::Error(e) => {
                self.message = Some(Message {
                    error: true,
                    text: e,
                });
                false
            }
        }
    }

    /// Record `event` by `actor` on the worker thread ([`App::make_and_record`]); `done` is
    /// said once it is on disk.
    fn record(&mut self, actor: &str, event: Event, done: &str) {
        self.make_and_record(
            record_name(&event),
            actor,
            move |_| Ok(event),
            (done, |_| {}),
        );
    }

    /// After the current metadata is loaded and recorded without a warning, the message says
    /// what was loaded: versions, thresholds with their keyholders, expiry dates.
    fn show_loaded(&mut self) {
        let Phase::Ceremony(s) = &self.phase else {
            return;
        };
        if self.message.as_ref().is_some_and(|m| m.error) {
            return;
        }
        if let Some(summary) = s.engine.loaded_summary() {
            self.message = Some(ok(format!("Loaded and recorded: {summary}.")));
        }
    }

    /// Make the step's event (reading an input from the medium, building the proposal, or
    /// one made already) and record it by `actor`, in one job on the worker thread
    /// ([`JobKind::Record`]): a slow medium or disk never freezes the screen, and a ceremony
    /// whose every step is recorded goes on to the seal there. An event that cannot be made is
    /// shown as its error (nothing recorded; the room may try again); a record not written as
    /// [`NotRecorded`], naming the step. `done` is said once it is on disk.
    fn make_and_record(
        &mut self,
        what: String,
        actor: &str,
        make: impl FnOnce(&mut Session) -> Result<Event, DriverError> + Send + 'static,
        (done, then): (&str, fn(&mut App)),
    ) {
        if !matches!(self.phase, Phase::Ceremony(_)) {
            return;
        }
        let (actor, done) = (actor.to_string(), done.to_string());
        let abandon = self.abandon.clone();
        self.submit_kind(
            (JobKind::Record, what, "the transcript".into()),
            move |phase| {
                let Phase::Ceremony(s) = phase else {
                    return Err(Stopped::Failed(moved_on()));
                };
                let event = make(s).map_err(Stopped::Failed)?;
                let warnings = record_unless_abandoned(s, &abandon, &actor, event)?;
                Ok((warnings, phase.seal_if_done()))
            },
            move |app, result| match result {
                Ok((warnings, errors)) => {
                    app.after_record(&done, &warnings, errors);
                    then(app);
                }
                Err(stopped) => {
                    app.stopped(stopped);
                }
            },
        );
    }

    /// Record the air-gap check the room confirmed as it was on screen (`shown`): sysfs is read
    /// again in the record job, and the check is recorded only if the machine still reads the
    /// same. Otherwise nothing is recorded, the new reading is shown and the room confirms
    /// again: the transcript never holds a reading the room did not see.
    fn record_airgap(&mut self, actor: String, shown: Event) {
        let Phase::Ceremony(_) = &self.phase else {
            return;
        };
        let look = self.look();
        let abandon = self.abandon.clone();
        self.submit_kind(
            (JobKind::Record, record_name(&shown), "the transcript".into()),
            move |phase| {
                let Phase::Ceremony(s) = phase else {
                    return Err(Stopped::Failed(moved_on()));
                };
                let now = crate::system::airgap_check(s.sysfs());
                if s.airgap_event_of(now.clone()) != shown {
                    return Ok(AirgapRecord::Changed(now));
                }
                let warnings = record_unless_abandoned(s, &abandon, &actor, shown)?;
                Ok(AirgapRecord::Recorded(warnings, phase.seal_if_done()))
            },
            move |app, result| match result {
                Ok(AirgapRecord::Recorded(warnings, errors)) => {
                    app.after_record("Recorded.", &warnings, errors);
                }
                Ok(AirgapRecord::Changed(now)) => {
                    if let Some(look) = look {
                        app.airgap = Some((look, now));
                    }
                    app.message = Some(Message {
                        error: true,
                        text: "The air-gap check changed since it was on screen: nothing was recorded. The screen shows this machine as it reads now; press Enter to record that.".into(),
                    });
                }
                Err(stopped) => {
                    app.stopped(stopped);
                }
            },
        );
    }

    /// A record is on disk (and the ceremony at the seal if that was its last step): `done`
    /// or the warnings it raised, then any error met going on to the seal.
    fn after_record(&mut self, done: &str, warnings: &[String], errors: Vec<DriverError>) {
        self.unrecorded = None;
        self.recorded(done, warnings);
        if let Some(e) = errors.into_iter().last() {
            self.message = Some(err(e));
        }
    }

    /// A record is on disk: `done`, or the policy warnings it raised (acknowledged in the
    /// transcript).
    fn recorded(&mut self, done: &str, warnings: &[String]) {
        self.message = Some(if warnings.is_empty() {
            ok(done)
        } else {
            Message {
                error: true,
                text: format!(
                    "Warning (acknowledged in the transcript): {}",
                    warnings.join("; ")
                ),
            }
        });
    }
}

impl Phase {
    /// A ceremony whose every step is recorded becomes the seal (a rerun after an interrupted
    /// or failed seal: the skips, the seal, its signatures and withdrawals recorded stand).
    /// Reads the transcript: runs where the ceremony is (the worker, after a record). The
    /// errors met reading what stands.
    fn seal_if_done(&mut self) -> Vec<DriverError> {
        let mut errors = Vec::new();
        let done = matches!(self, Phase::Ceremony(s) if s.need() == Need::Done);
        if !done {
            return errors;
        }
        if let Phase::Ceremony(s) = std::mem::replace(self, Phase::Gone) {
            let sealers = s.sealers();
            // Skips recorded before an interruption stand.
            let skipped = s
                .engine
                .seal_skipped()
                .iter()
                .map(|(k, _)| k.clone())
                .collect();
            // A seal written before an interruption stands: its signers sign it, except those
            // whose signature of it the transcript holds already.
            let (seal, signed) = match s.seal_state() {
                Ok(Some((hash, signed))) => (Some(hash), signed),
                Ok(None) => (None, Vec::new()),
                Err(e) => {
                    errors.push(e);
                    (None, Vec::new())
                }
            };
            let earlier: Vec<String> = sealers
                .iter()
                .filter(|w| s.seal_signed(w, &signed))
                .cloned()
                .collect();
            // Withdrawals recorded before an interruption stand: the seal in force lists the
            // others.
            let withdrawn = match s.seal_withdrawn() {
                Ok(w) => w,
                Err(e) => {
                    errors.push(e);
                    Vec::new()
                }
            };
            let checkpoint = sealers
                .iter()
                .filter(|w| s.signs_checkpoint(w))
                .cloned()
                .collect();
            let key_log = s.key_log_expected();
            *self = Phase::Sealing {
                session: s,
                sealers,
                signers: Vec::new(),
                skipped,
                seal,
                sealed: earlier.clone(),
                withdrawn,
                earlier,
                checkpoint,
                key_log,
            };
        }
        errors
    }
}

impl App {
    fn run(&mut self, action: Pending) {
        match action {
            Pending::Quit => self.stop(),
            Pending::Record { actor, event } => {
                if matches!(*event, Event::ParametersCorrected { .. }) {
                    self.correcting = false;
                    self.selected = 0;
                }
                let done = match &*event {
                    Event::ParametersCorrected { .. } => "Correction recorded.",
                    Event::Sealed { .. } => {
                        "Recorded: the ceremony takes no more steps. Next, each keyholder logs in to their token; then the seal is written and its hash shown before anyone signs it."
                    }
                    Event::Approved { .. } => "Approved: the keyholders sign next.",
                    _ => "Recorded.",
                };
                self.record(&actor, *event, done);
            }
            Pending::Generate {
                keyholder,
                key_type,
            } => {
                let expected = self
                    .session()
                    .map(|s| label_of(&self.tokens, &s.expected_token(&keyholder)))
                    .unwrap_or_default();
                self.pin(
                    format!("{keyholder}: PIN of token {expected} to generate the {key_type} key"),
                    PinFor::Generate {
                        keyholder,
                        key_type,
                    },
                );
            }
            Pending::Sign { who } => {
                let (expected, _) = self.signing_token(&who);
                self.pin(
                    format!("{who}: PIN of token {expected} to sign"),
                    PinFor::Sign { who },
                );
            }
            Pending::Assign { keyholder, serial } => {
                self.candidate = None;
                if let Phase::Ceremony(s) = &mut self.phase {
                    s.assign_token(&keyholder, &serial);
                    self.message = Some(ok(format!(
                        "The token with serial {serial} is {keyholder}'s for this ceremony; Enter generates the key."
                    )));
                }
            }
            Pending::SealSign { who } => {
                let expected = match &self.sealing {
                    Some((w, Some(t))) if *w == who => t.label.clone(),
                    _ => self
                        .session()
                        .map(|s| s.expected_token(&who))
                        .unwrap_or_default(),
                };
                // The words say what the PIN does now: before the seal is written it only
                // logs in (nothing is signed); after, it signs the seal shown (or, for one who
                // signed it before an interruption, only the key-event log's checkpoint).
                let does = match &self.phase {
                    Phase::Sealing { seal: None, .. } => {
                        "to log in for the seal (nothing is signed yet)"
                    }
                    _ if self.phase.checkpoint_only(&who) => {
                        "to sign the key-event log's checkpoint"
                    }
                    _ => "to sign the seal",
                };
                self.pin(
                    format!("{who}: PIN of token {expected} {does}"),
                    PinFor::SealSign { who },
                );
            }
            Pending::RequestSetMatches => {
                self.request_set_confirmed = true;
                self.message = Some(ok(
                    "The room confirmed the request set's SHA-256 matches the published value (recorded with the approval).",
                ));
            }
            Pending::FinalTry { label, purpose } => {
                self.final_try_ok = true;
                self.pin(label, purpose);
            }
            Pending::WriteSeal => {
                if !matches!(self.phase, Phase::Sealing { .. }) {
                    return;
                }
                self.record_job(
                    "the seal record".into(),
                    |phase| match phase {
                        Phase::Sealing {
                            session,
                            signers,
                            seal,
                            ..
                        } => session.write_seal(signers).map(|hash| *seal = Some(hash)),
                        _ => Err(moved_on()),
                    },
                    |app, ()| {
                        app.message = Some(ok(
                            "The seal is written: each keyholder checks its hash on screen and signs it in turn.",
                        ));
                    },
                );
            }
            Pending::SealSignNow { who } => self.sign_seal(&who),
            Pending::WithdrawSealer { who, reason } => self.withdraw_sealer(&who, &reason),
            Pending::Airgap { actor, shown } => self.record_airgap(actor, *shown),
            Pending::SkipSealer { who, reason } => {
                if !matches!(self.phase, Phase::Sealing { .. }) {
                    return;
                }
                self.record_job(
                    "the seal-skipped record".into(),
                    move |phase| match phase {
                        Phase::Sealing {
                            session, skipped, ..
                        } => session.skip_sealer(&who, &reason).map(|()| {
                            skipped.push(who.clone());
                            who
                        }),
                        _ => Err(moved_on()),
                    },
                    |app, who| {
                        app.message = Some(ok(format!(
                            "{who} does not sign the seal: recorded in the transcript."
                        )));
                    },
                );
            }
            Pending::Export { medium } => {
                let Phase::Ceremony(s) = &self.phase else {
                    return;
                };
                let Need::Export { files } = s.need() else {
                    return;
                };
                let count = files.len();
                let plural = if count == 1 { "" } else { "s" };
                let on = match &medium {
                    Some(m) => format!("the medium {}", m.display()),
                    None => "the workspace's export folder".into(),
                };
                // The files are written, read back, and the export recorded, in one job.
                let abandon = self.abandon.clone();
                self.submit(
                    format!("writing {count} file{plural} and SHA256SUMS, reading them back"),
                    on,
                    move |phase| {
                        let Phase::Ceremony(s) = phase else {
                            return Err(Stopped::Failed(moved_on()));
                        };
                        let (ev, reports) = s
                            .export_event(&files, medium.as_deref())
                            .map_err(Stopped::Failed)?;
                        let warnings =
                            record_unless_abandoned(s, &abandon, "administrator", ev)?;
                        let errors = phase.seal_if_done();
                        Ok((reports, warnings, errors))
                    },
                    move |app, result| match result {
                        Ok((reports, warnings, errors)) => {
                            let safe = reports.iter().all(|r| r.safe_to_remove);
                            let dirs: Vec<&Path> =
                                reports.iter().map(|r| r.dir.as_path()).collect();
                            app.after_record(
                                &format!(
                                    "{count} file{plural} and SHA256SUMS written to {}, read back and compared{}",
                                    export_places(&dirs),
                                    if safe {
                                        "; synced: safe to remove the media."
                                    } else {
                                        "."
                                    }
                                ),
                                &warnings,
                                errors,
                            );
                        }
                        Err(stopped) => {
                            app.stopped(stopped);
                        }
                    },
                );
            }
            Pending::Exception { witness, text } => {
                let Phase::Ceremony(s) = &self.phase else {
                    self.message = Some(Message {
                        error: true,
                        text: "The ceremony is sealed; exceptions go on the paper form.".into(),
                    });
                    return;
                };
                let ev = Event::Exception {
                    step: s.step(),
                    witness: witness.clone(),
                    text,
                };
                let done = format!("Exception by {witness} recorded.");
                self.record(&witness, ev, &done);
            }
        }
    }

    /// Use a typed PIN: the token work runs on the worker thread ([`App::submit`]) and its
    /// typed result is applied when it is back. The PIN moves into the work in its zeroizing
    /// buffer and is wiped when the work ends. A wrong PIN asks again (decided on the error's
    /// kind, not its text).
    fn with_pin(&mut self, purpose: PinFor, pin: Zeroizing<String>) {
        match purpose {
            PinFor::Generate {
                keyholder,
                key_type,
            } => {
                let Phase::Ceremony(s) = &self.phase else {
                    return;
                };
                let expected = label_of(&self.tokens, &s.expected_token(&keyholder));
                let slot = s.plan.piv_slot_for(&keyholder);
                let retry_label = format!("{keyholder}: PIN of token {expected} (try again)");
                let (kh, kt) = (keyholder.clone(), key_type.clone());
                let abandon = self.abandon.clone();
                self.submit(
                    format!("generating the {key_type} key of {keyholder}"),
                    format!("token {expected}"),
                    move |phase| match phase {
                        // A YubiKey (PIV): the job finds its management key is needed too
                        // (asking the token, off the UI thread) and hands the PIN back.
                        Phase::Ceremony(s) if s.generation_needs_management_key(&kh) => {
                            Generation::NeedsManagementKey(HeldPin(pin))
                        }
                        Phase::Ceremony(s) => Generation::Done(generate_and_record(
                            s, &kh, &kt, &pin, None, &abandon,
                        )),
                        _ => Generation::Done(Err(Stopped::Failed(moved_on()))),
                    },
                    move |app, generation| match generation {
                        // Asked next, like a PIN; the generation is submitted again with it.
                        Generation::NeedsManagementKey(held) => app.pin(
                            format!(
                                "{keyholder}: PIV management key of token {expected} to generate the {key_type} key in PIV slot {slot} (never stored or shown)"
                            ),
                            PinFor::ManagementKey {
                                keyholder,
                                key_type,
                                pin: held,
                            },
                        ),
                        Generation::Done(result) => {
                            if let Some(DriverError::WrongPin(_)) =
                                app.generated(&keyholder, result, None)
                            {
                                let again = PinFor::Generate {
                                    keyholder,
                                    key_type,
                                };
                                app.pin(retry_label, again);
                            }
                        }
                    },
                );
            }
            PinFor::ManagementKey {
                keyholder,
                key_type,
                pin: held,
            } => {
                let Phase::Ceremony(s) = &self.phase else {
                    return;
                };
                let expected = label_of(&self.tokens, &s.expected_token(&keyholder));
                let slot = s.plan.piv_slot_for(&keyholder);
                let abandon = self.abandon.clone();
                self.submit(
                    format!("generating the {key_type} key of {keyholder} in PIV slot {slot}"),
                    format!("token {expected}"),
                    move |phase| {
                        let result = match phase {
                            Phase::Ceremony(s) => generate_and_record(
                                s,
                                &keyholder,
                                &key_type,
                                &held.0,
                                Some(&pin),
                                &abandon,
                            ),
                            _ => Err(Stopped::Failed(moved_on())),
                        };
                        drop(pin);
                        // The PIN comes back (still in its buffer) for a management key
                        // asked again.
                        (result, keyholder, key_type, held)
                    },
                    move |app, (result, keyholder, key_type, held)| {
                        match app.generated(&keyholder, result, Some(slot)) {
                            Some(DriverError::WrongManagementKey(_)) => {
                                // The PIN was right: only the management key is asked again.
                                let label = format!(
                                    "{keyholder}: PIV management key of token {expected} (try again; never stored or shown)"
                                );
                                let again = PinFor::ManagementKey {
                                    keyholder,
                                    key_type,
                                    pin: held,
                                };
                                app.pin(label, again);
                            }
                            Some(DriverError::WrongPin(_)) => {
                                // Asked again from the PIN.
                                drop(held);
                                let label =
                                    format!("{keyholder}: PIN of token {expected} (try again)");
                                let again = PinFor::Generate {
                                    keyholder,
                                    key_type,
                                };
                                app.pin(label, again);
                            }
                            _ => {}
                        }
                    },
                );
            }
            PinFor::Sign { who } => {
                let (name, _) = self.signing_token(&who);
                if !matches!(self.phase, Phase::Ceremony(_)) {
                    return;
                }
                let retry_label = format!("{who}: PIN of token {name} (try again)");
                let signer = who.clone();
                let abandon = self.abandon.clone();
                self.submit(
                    format!("signing as {who}"),
                    format!("token {name}"),
                    move |phase| match phase {
                        Phase::Ceremony(s) => sign_with_one_token(s, &signer, &pin, &abandon),
                        _ => (Vec::new(), Some(Stopped::Failed(moved_on()))),
                    },
                    move |app, (signed, failure)| {
                        let left = app
                            .session()
                            .map(|s| s.engine.roles_left(&who))
                            .unwrap_or_default();
                        match (failure, left.first()) {
                            (None, None) => {
                                app.message = Some(ok(format!(
                                    "{who} signed {}; each signature verified.",
                                    signed.join(" and ")
                                )));
                            }
                            (None, Some((next_key, _))) => {
                                app.message = Some(ok(format!(
                                    "{who} signed {} with this token; {who} signs {} next with the token that holds key {}.",
                                    signed.join(" and "),
                                    left.iter()
                                        .map(|(_, r)| r.as_str())
                                        .collect::<Vec<_>>()
                                        .join(" and "),
                                    next_key.short()
                                )));
                            }
                            (Some(stopped), _) => {
                                let wrong_pin =
                                    matches!(app.stopped(stopped), Some(DriverError::WrongPin(_)));
                                if wrong_pin && signed.is_empty() {
                                    app.pin(retry_label, PinFor::Sign { who });
                                }
                            }
                        }
                    },
                );
            }
            PinFor::SealSign { who } => {
                let sealing_label = match &self.sealing {
                    Some((w, Some(t))) if *w == who => Some(t.label.clone()),
                    _ => None,
                };
                let Phase::Sealing { session, .. } = &self.phase else {
                    return;
                };
                let token = sealing_label.unwrap_or_else(|| session.expected_token(&who));
                let retry_label = format!("{who}: PIN of token {token} (try again)");
                let sealer = who.clone();
                self.submit(
                    format!("logging {who} in to their token for the seal"),
                    format!("token {token}"),
                    move |phase| {
                        let Phase::Sealing {
                            session, signers, ..
                        } = phase
                        else {
                            return Err(moved_on());
                        };
                        let (signer, id) = session.seal_signer(&sealer, Some(&pin))?;
                        signers.push((sealer, signer));
                        Ok(id)
                    },
                    move |app, result: Result<KeyId, DriverError>| match result {
                        Ok(id) => {
                            app.message = Some(ok(format!(
                                "{who}'s token will sign the seal with key {}",
                                id.short()
                            )));
                            // The seal is written and its hash was on screen: sign it now
                            // (unless this key signed it before an interruption).
                            if app.phase.checkpoint_only(&who) {
                                app.message = Some(ok(format!(
                                    "{who} is logged in: their token signs the key-event log's checkpoint (their seal signature stands)."
                                )));
                            } else if matches!(&app.phase, Phase::Sealing { seal: Some(_), .. }) {
                                app.sign_seal(&who);
                            }
                        }
                        Err(e) => {
                            let wrong_pin = matches!(e, DriverError::WrongPin(_));
                            app.message = Some(err(e));
                            if wrong_pin {
                                app.pin(retry_label, PinFor::SealSign { who });
                            }
                        }
                    },
                );
            }
        }
    }

    /// Show a generated key recorded (`None`: the message says so, naming the PIV slot `slot`
    /// it went into on a YubiKey) or why not (the token's error is returned for the caller to
    /// decide whether to ask again).
    fn generated(
        &mut self,
        keyholder: &str,
        result: Result<KeyRecorded, Stopped>,
        slot: Option<crate::signer::pkcs11::PivSlot>,
    ) -> Option<DriverError> {
        let key = match result {
            Ok(key) => key,
            Err(stopped) => return self.stopped(stopped),
        };
        self.unrecorded = None;
        if !key.warnings.is_empty() {
            self.recorded("", &key.warnings);
            return None;
        }
        let place = slot.map_or_else(
            || "in the token".to_string(),
            |s| format!("in PIV slot {s} of the token"),
        );
        let before = key
            .found
            .iter()
            .map(|f| format!(". First {f} (recorded)"))
            .collect::<String>();
        let advisory = key.advisory.map(|w| format!(". {w}")).unwrap_or_default();
        self.message = Some(ok(format!(
            "Key of {keyholder} generated {place}, self-test passed: key id {}{before}{advisory}",
            key.id
        )));
        None
    }

    fn with_text(&mut self, purpose: TextFor, value: String) {
        match purpose {
            TextFor::Parameter(name) => {
                self.values.insert(name, value.trim().to_string());
            }
            TextFor::RollCall(i) => {
                if let Some(f) = self.roll.get_mut(i) {
                    *f = value;
                }
            }
            TextFor::Acknowledgement => self.ack_text = value,
            TextFor::ReferenceTime => self.reference_text = value,
            TextFor::ExceptionWitness => {
                let w = value.trim().to_string();
                if w.is_empty() {
                    self.message = Some(Message {
                        error: true,
                        text: "An exception needs the witness's name.".into(),
                    });
                    return;
                }
                self.text(
                    format!("Exception by {w}: what happened"),
                    String::new(),
                    TextFor::ExceptionText { witness: w },
                );
            }
            TextFor::ReviewFind => {
                self.review_find = value;
                let v = self.view_state();
                if let Screen::Review { lines, .. } = &v.screen {
                    self.find_in_review(lines, self.scroll);
                }
            }
            TextFor::SignSkipReason { who } => {
                let reason = value.trim().to_string();
                let Phase::Ceremony(s) = &self.phase else {
                    return;
                };
                if reason.is_empty() {
                    self.message = Some(Message {
                        error: true,
                        text: format!("{who} is not skipped: a skip needs its reason."),
                    });
                    return;
                }
                self.confirm(
                    format!("Go on without {who}'s signature ({reason})? The skip is recorded in the transcript."),
                    Pending::Record {
                        actor: "administrator".into(),
                        event: Box::new(Event::SignerSkipped {
                            step: s.step(),
                            keyholder: who,
                            reason,
                        }),
                    },
                );
            }
            TextFor::SealSkipReason { who } => {
                let reason = value.trim().to_string();
                let Phase::Sealing {
                    session,
                    sealers,
                    skipped,
                    checkpoint,
                    ..
                } = &self.phase
                else {
                    return;
                };
                if reason.is_empty() {
                    self.message = Some(Message {
                        error: true,
                        text: format!("{who} is not skipped: a skip needs its reason."),
                    });
                    return;
                }
                // Those left who sign the checkpoint, as counted when the seal began.
                let left = sealers
                    .iter()
                    .filter(|w| **w != who && !skipped.contains(w) && checkpoint.contains(w))
                    .count();
                let warning = skip_warning(session.checkpoint_shortfall(left))
                    .map(|w| format!("{w}\n"))
                    .unwrap_or_default();
                self.confirm(
                    format!("{warning}Seal without {who}'s signature ({reason})? The skip is recorded in the transcript and the seal lists who signs it."),
                    Pending::SkipSealer { who, reason },
                );
            }
            TextFor::SealWithdrawReason { who } => {
                let reason = value.trim().to_string();
                let Phase::Sealing {
                    session,
                    sealers,
                    skipped,
                    withdrawn,
                    checkpoint,
                    ..
                } = &self.phase
                else {
                    return;
                };
                if reason.is_empty() {
                    self.message = Some(Message {
                        error: true,
                        text: format!("{who} is not withdrawn: a withdrawal needs its reason."),
                    });
                    return;
                }
                let left = sealers
                    .iter()
                    .filter(|w| {
                        **w != who
                            && !skipped.contains(w)
                            && !withdrawn.iter().any(|(k, _)| k == *w)
                            && checkpoint.contains(w)
                    })
                    .count();
                let warning = skip_warning(session.checkpoint_shortfall(left))
                    .map(|w| format!("{w}\n"))
                    .unwrap_or_default();
                self.confirm(
                    format!(
                        "{warning}Withdraw {who} from the written seal ({reason})? The withdrawal is recorded in the transcript, a new seal over the same files lists the other keyholders, and each of them signs the new seal (again, if they had signed)."
                    ),
                    Pending::WithdrawSealer { who, reason },
                );
            }
            TextFor::ExceptionText { witness } => {
                let t = value.trim().to_string();
                if t.is_empty() {
                    return;
                }
                self.confirm(
                    format!("Record this exception by {witness} in the transcript: \"{t}\"?"),
                    Pending::Exception { witness, text: t },
                );
            }
        }
    }

    fn choose(&mut self) {
        let Phase::Choose {
            ws,
            sys,
            plan,
            start,
            scripts,
        } = std::mem::replace(&mut self.phase, Phase::Gone)
        else {
            return;
        };
        let Some((name, _, _, text)) = scripts.get(self.selected).cloned() else {
            self.phase = Phase::Choose {
                ws,
                sys,
                plan,
                start,
                scripts,
            };
            return;
        };
        // The workspace: as given, else a folder on the chosen removable medium (made on the
        // worker thread with the opening: a slow medium never freezes the screen).
        let chosen = match &ws {
            Some(w) => Ok((w.dir.clone(), false)),
            None => match self.media.as_deref().map(|m| m.get(self.medium)) {
                None => Err("Looking for the removable media: press Enter again once the medium for the workspace is listed.".to_string()),
                Some(None) => Err("Insert the removable medium that will hold the workspace (transcript and export); it is listed here once mounted.".to_string()),
                Some(Some(m)) => Ok((m.mount_point.join("conclave"), true)),
            },
        };
        let (workspace, make) = match chosen {
            Ok(w) => w,
            Err(text) => {
                self.message = Some(Message { error: true, text });
                self.phase = Phase::Choose {
                    ws,
                    sys,
                    plan,
                    start,
                    scripts,
                };
                return;
            }
        };
        let plan_copy = Plan {
            practice: plan.practice,
            administrator: plan.administrator.clone(),
            keyholders: plan.keyholders.clone(),
            witnesses: plan.witnesses.clone(),
            values: plan.values.clone(),
            reference_time: plan.reference_time.clone(),
            acknowledgement: plan.acknowledgement.clone(),
            tokens: plan.tokens.clone(),
            pins: BTreeMap::new(),
            management_keys: BTreeMap::new(),
            piv_slot: plan.piv_slot,
            piv_slots: plan.piv_slots.clone(),
            module: plan.module.clone(),
            export_to: None,
            log_origin: plan.log_origin.clone(),
            skip: plan.skip.clone(),
            withdraw: plan.withdraw.clone(),
            close_signing_when_met: plan.close_signing_when_met,
            request_set_sha256: plan.request_set_sha256.clone(),
        };
        // Opening loads the PKCS#11 module and reads the tokens: on the worker thread, the
        // script choice staying on screen (and coming back if it fails).
        let opened_from = sys.clone();
        self.phase = Phase::Choose {
            ws,
            sys,
            plan,
            start,
            scripts,
        };
        self.submit(
            format!("opening the ceremony {name}"),
            "the tokens' PKCS#11 module".into(),
            move |_| {
                let workspace = if make {
                    std::fs::create_dir_all(&workspace)
                        .and_then(|()| workspace.canonicalize())
                        .map(|dir| Workspace { dir })
                        .map_err(|e| DriverError::Io(format!("{}: {e}", workspace.display())))?
                } else {
                    Workspace { dir: workspace }
                };
                Session::open(
                    &workspace,
                    &name,
                    text,
                    &opened_from,
                    Some(plan_copy),
                    start,
                )
                .map(opened_phase)
            },
            |app, opened| match opened {
                Ok(opened) => app.show_opened(opened, false),
                Err(e) => app.message = Some(err(e)),
            },
        );
    }

    /// Withdraw `who` from the written seal: recorded, a new seal written; those who signed the
    /// superseded seal sign the new one.
    fn withdraw_sealer(&mut self, who: &str, reason: &str) {
        if !matches!(self.phase, Phase::Sealing { .. }) {
            return;
        }
        let (who, reason) = (who.to_string(), reason.to_string());
        self.record_job(
            "the seal-withdrawal record and the new seal".into(),
            move |phase| {
                let Phase::Sealing {
                    session,
                    signers,
                    seal,
                    sealed,
                    withdrawn,
                    earlier,
                    ..
                } = phase
                else {
                    return Err(moved_on());
                };
                let key = signers
                    .iter()
                    .find(|(w, _)| *w == who)
                    .map(|(_, s)| s.key_id());
                let hash = session.withdraw_sealer(&who, key, &reason)?;
                *seal = Some(hash);
                sealed.clear();
                earlier.clear();
                signers.retain(|(w, _)| *w != who);
                withdrawn.push((who.clone(), reason));
                Ok(who)
            },
            |app, who| {
                app.message = Some(ok(format!(
                    "{who} is withdrawn from the seal (recorded). A new seal lists the others: each checks its hash and signs it."
                )));
            },
        );
    }

    /// `who` (logged in) signs the written seal (on the worker thread).
    fn sign_seal(&mut self, who: &str) {
        let Phase::Sealing {
            session, signers, ..
        } = &self.phase
        else {
            return;
        };
        if !signers.iter().any(|(w, _)| w == who) {
            return;
        }
        let on = format!("token {}", session.expected_token(who));
        let sealer = who.to_string();
        let who = who.to_string();
        self.submit(
            format!("signing the seal as {who}"),
            on,
            move |phase| {
                let Phase::Sealing {
                    session,
                    signers,
                    sealed,
                    ..
                } = phase
                else {
                    return Err(moved_on());
                };
                let Some((_, signer)) = signers.iter_mut().find(|(w, _)| *w == sealer) else {
                    return Err(moved_on());
                };
                let signed = session.sign_seal(&sealer, signer)?;
                sealed.push(sealer);
                Ok(signed)
            },
            move |app, result| {
                app.message = Some(match result {
                    Ok(true) => ok(format!("{who} signed the seal.")),
                    Ok(false) => ok(format!("{who}'s key had signed the seal already.")),
                    Err(e) => err(e),
                });
            },
        );
    }

    /// After the seal signatures (on the worker thread): the key-event log signed by the
    /// sealers' tokens, the transcript exported, the checks; then the summary.
    fn finish_seal(&mut self) {
        if !matches!(&self.phase, Phase::Sealing { seal: Some(_), .. }) {
            return;
        }
        self.submit(
            "signing the key-event log, exporting the transcript and checking the output".into(),
            "the sealers' tokens".into(),
            |phase| {
                let Phase::Sealing {
                    session,
                    signers,
                    seal: Some(seal),
                    ..
                } = std::mem::replace(phase, Phase::Gone)
                else {
                    return Err(moved_on());
                };
                *phase = summary_phase(session.finish_seal(&seal, signers)?);
                Ok(())
            },
            |app, result| match result {
                Ok(()) => {
                    app.message = Some(match &app.phase {
                        Phase::Summary { failed, .. } if !failed.is_empty() => Message {
                            error: true,
                            text: format!(
                                "Sealed, but the ceremony is NOT complete: {} FAILED.",
                                failed.join("; ")
                            ),
                        },
                        _ => ok("The ceremony is complete and sealed."),
                    });
                }
                Err(e) => {
                    // The transcript is on disk; the same command continues from it.
                    app.exit_message =
                        Some(format!("{e}; run the same command to continue the seal"));
                    app.quit = true;
                }
            },
        );
    }

    /// Show the next exported file as animated QR codes sized for this terminal.
    fn next_qr(&mut self) {
        let Phase::Summary { report, .. } = &self.phase else {
            return;
        };
        let names = &report.exported;
        if names.is_empty() {
            return;
        }
        let next = match &self.qr {
            Some(q) => names
                .iter()
                .position(|n| *n == q.name)
                .map_or(0, |i| (i + 1) % names.len()),
            None => 0,
        };
        let name = names[next].clone();
        let on = report.export_dir.display().to_string();
        let path = report.export_dir.join(&name);
        let (w, h) = self.term;
        // Read on the worker thread: the export folder may be on a slow or failing medium.
        self.submit_kind(
            (JobKind::Read, format!("the exported file {name}"), on),
            move |_| {
                std::fs::read(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))
                    .and_then(|bytes| QrShow::new(&name, &bytes, w, h))
            },
            |app, shown| match shown {
                Ok(q) => app.qr = Some(q),
                Err(e) => {
                    app.qr = None;
                    app.message = Some(Message {
                        error: true,
                        text: e,
                    });
                }
            },
        );
    }

    /// The report of a finished ceremony.
    pub fn report(&self) -> Option<&CeremonyReport> {
        match &self.phase {
            Phase::Summary { report, .. } => Some(report),
            _ => None,
        }
    }

    /// What to draw.
    pub fn view_state(&self) -> ViewState {
        if let Some(job) = &self.job {
            // The ceremony is on the worker: the screen as it was, with the job's status.
            let mut v = job.view.clone();
            v.message = Some(ok(job.status()));
            v.help = self.help;
            v.welcome = None;
            v.qr = None;
            v.prompt = match &self.prompt {
                PromptState::Confirm { question, .. } => Prompt::Confirm {
                    question: question.clone(),
                },
                _ => Prompt::None,
            };
            v.keys = vec![
                ("?".to_string(), "help".to_string()),
                ("Ctrl-C".to_string(), "stop".to_string()),
            ];
            return v;
        }
        let mut v = ViewState {
            message: self.message.clone(),
            banner: self.banner.clone(),
            help: self.help,
            rows_scroll: self.scroll,
            ..ViewState::default()
        };
        v.prompt = match &self.prompt {
            PromptState::None => Prompt::None,
            PromptState::Confirm { question, .. } => Prompt::Confirm {
                question: question.clone(),
            },
            PromptState::Pin {
                label,
                buf,
                purpose,
            } => Prompt::Pin {
                label: label.clone(),
                field: match purpose {
                    PinFor::ManagementKey { .. } => "management key".into(),
                    _ => "PIN".into(),
                },
                typed: buf.chars().count(),
                practice_hint: self.session().is_some_and(|s| s.practice_tokens),
            },
            PromptState::Text { label, buf, .. } => Prompt::Text {
                label: label.clone(),
                value: buf.clone(),
            },
        };
        if let Some(q) = &self.qr {
            v.qr = Some(QrOverlay {
                lines: q.lines.clone(),
                status: format!(
                    "{}  frame {}  ({} fragments; read at least that many)  sha256 {}…  r next file  Esc close",
                    q.name,
                    q.frame,
                    q.fragments,
                    hex::encode(&q.sha256[..4])
                ),
            });
        }
        match &self.phase {
            Phase::Gone => {}
            Phase::Choose { scripts, ws, .. } => self.choose_view(&mut v, scripts, ws),
            Phase::Summary {
                report,
                checks,
                failed,
            } => summary_view(&mut v, report, checks, failed),
            Phase::Sealing { .. } => self.sealing_view(&mut v),
            Phase::Ceremony(s) => self.ceremony_view(&mut v, s),
        }
        if let Some(w) = &self.welcome {
            v.welcome = Some(w.clone());
            v.keys = vec![key("Enter", "begin"), key("Ctrl-C", "stop")];
        }
        // A record the transcript could not take stays on screen over any other result.
        if let Some(e) = &self.unrecorded
            && !v.message.as_ref().is_some_and(|m| m.error)
        {
            v.message = Some(not_recorded_message(e));
        }
        // What the tokens are waited for: over the message once the wait is noticeable.
        let waited = self
            .waiting_for
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed().as_secs() >= 1);
        if (v.message.is_none() || waited)
            && let Some(note) = self.poll_note()
        {
            v.message = Some(ok(note));
        }
        if v.message.is_none()
            && let Some(note) = self.read_note()
        {
            v.message = Some(ok(note));
        }
        v
    }

    /// While the export's first list of media is pending, or the machine reader has not
    /// answered for a few seconds: what the screen says.
    fn read_note(&self) -> Option<String> {
        let look = self.look()?;
        if look == Look::Media && self.media.is_none() && matches!(self.phase, Phase::Ceremony(_)) {
            return Some("Looking for removable media ...".into());
        }
        let (_, since) = self.reader.as_ref()?.waiting?;
        let secs = since.elapsed().as_secs();
        (secs >= 3).then(|| {
            format!(
                "Reading this machine has not answered for {secs} s (a medium may be stuck); the screen shows what it found last."
            )
        })
    }

    /// The script choice (`conclave tui` without `--script`).
    fn choose_view(
        &self,
        v: &mut ViewState,
        scripts: &[(String, String, String, &'static str)],
        ws: &Option<Workspace>,
    ) {
        let workspace = match ws {
            Some(w) => w.dir.display().to_string(),
            None => match self.media.as_deref().map(|m| m.get(self.medium)) {
                None => "looking for removable media ...".to_string(),
                Some(Some(m)) => format!(
                    "{}/conclave on {} (w: another medium)",
                    m.mount_point.display(),
                    describe_medium(m).split(" at ").next().unwrap_or_default()
                ),
                Some(None) => "insert the removable medium for the workspace".to_string(),
            },
        };
        v.ceremony = "choose a ceremony".into();
        v.progress = "start".into();
        v.actor = "administrator".into();
        v.title = "Ceremony".into();
        v.screen = Screen::Choose {
            scripts: scripts
                .iter()
                .map(|(n, t, p, _)| (n.clone(), t.clone(), p.clone()))
                .collect(),
            selected: self.selected,
            workspace,
        };
        v.keys = vec![
            key("↑↓", "choose"),
            key("Enter", "open"),
            key("Ctrl-C", "quit"),
        ];
    }

    /// The seal: each keyholder logs in (or is skipped), the seal is written, each signs it.
    fn sealing_view(&self, v: &mut ViewState) {
        let Phase::Sealing {
            session,
            sealers,
            signers,
            skipped,
            seal,
            sealed,
            withdrawn,
            earlier,
            checkpoint,
            key_log,
        } = &self.phase
        else {
            return;
        };
        v.title = "Seal signatures".into();
        let hash: Vec<DigestRow> = seal.iter().map(|h| seal_row(h)).collect();
        v.instructions = if seal.is_none() {
            "Each keyholder logs in to their token (or is skipped); then the seal is written and its hash shown before anyone signs.".into()
        } else {
            "The seal is written: each keyholder checks its hash and signs it with their token, in turn.".into()
        };
        let next = self.phase.next_sealer();
        let rows: Vec<SignerRow> = sealers
            .iter()
            .map(|w| {
                let logged_in = signers.iter().any(|(s, _)| s == w);
                let signed = sealed.contains(w);
                let status = if earlier.contains(w) {
                    let then = "signed the seal before the interruption";
                    if logged_in {
                        format!("{then}; logged in for the key-event log")
                    } else if skipped.contains(w) {
                        format!("{then}; does not sign the key-event log")
                    } else if checkpoint.contains(w) {
                        format!("{then}; logs in for the key-event log")
                    } else if *key_log {
                        format!(
                            "{then}; holds no current root key: not asked for the key-event log"
                        )
                    } else {
                        then.into()
                    }
                } else if signed {
                    "signed the seal".into()
                } else if let Some((_, why)) = withdrawn.iter().find(|(k, _)| k == w) {
                    format!("withdrawn from the seal (recorded): {why}")
                } else if skipped.contains(w) {
                    match session.engine.seal_skipped().iter().find(|(k, _)| k == w) {
                        Some((_, why)) => format!("skipped (recorded): {why}"),
                        None => "skipped: does not sign the seal".into(),
                    }
                } else if seal.is_some() {
                    "to sign the seal".into()
                } else if logged_in {
                    "logged in: signs once the seal is written".into()
                } else {
                    "to log in for the seal".into()
                };
                SignerRow {
                    keyholder: w.clone(),
                    status,
                    done: signed || (seal.is_none() && logged_in),
                }
            })
            .collect();
        match next {
            Some(who) => {
                let expected = match &self.sealing {
                    Some((w, Some(t))) if w == who => t.serial.clone(),
                    _ => session.expected_token(who),
                };
                let (status, present) = token_status(&self.tokens, &expected, who);
                let expected = present
                    .iter()
                    .find(|r| r.expected)
                    .map_or(expected, |r| r.label.clone());
                let written = seal.is_some();
                let login_only = earlier.contains(who);
                v.screen = Screen::Token {
                    keyholder: who.clone(),
                    purpose: if login_only {
                        "log in to sign the key-event log (the seal is signed)".into()
                    } else if written {
                        "check the seal hash, then sign the seal".into()
                    } else {
                        "log in for the seal (nothing is signed yet)".into()
                    },
                    expected,
                    present,
                    status,
                    meters: Vec::new(),
                    signers: rows,
                    digests: hash,
                };
                v.keys = if login_only {
                    vec![
                        key("Enter", "log in"),
                        key("s", "skip this keyholder"),
                        key("?", "help"),
                    ]
                } else if written {
                    vec![
                        key("Enter", "sign the seal"),
                        key("w", "withdraw this keyholder"),
                        key("?", "help"),
                    ]
                } else {
                    vec![
                        key("Enter", "log in"),
                        key("s", "skip this keyholder"),
                        key("?", "help"),
                    ]
                };
            }
            None => {
                v.screen = Screen::Seal {
                    artifacts: session
                        .engine
                        .export_files()
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect(),
                    hash,
                };
                if seal.is_none() {
                    v.instructions = "Every keyholder has answered: write the seal, listing those logged in as its signers.".into();
                    v.keys = vec![key("Enter", "write the seal"), key("?", "help")];
                } else {
                    v.instructions = "Every listed keyholder has signed the seal: finish (key-event log, transcript export, checks).".into();
                    v.keys = vec![key("Enter", "finish"), key("?", "help")];
                }
            }
        }
    }

    /// A step of the ceremony: its screen and keys, or the parameter editor opened to correct.
    fn ceremony_view(&self, v: &mut ViewState, s: &Session) {
        header(v, s);
        let common = [key("?", "help"), key("!", "exception")];
        v.screen = self.need_screen(v, s, s.need());
        v.keys.extend(common);
        if self.correcting {
            v.title = "Correct the parameters".into();
            v.instructions = format!(
                "No key is generated yet: a recorded value can be corrected (the correction is recorded in the transcript). Esc goes back to step {}.",
                s.step()
            );
            v.keys = vec![
                key("↑↓", "select"),
                key("e", "edit"),
                key("Enter", "record the correction"),
                key("Esc", "back"),
            ];
            v.screen = self.parameter_screen(s);
        } else if s.engine.correction_closed().is_none()
            && !matches!(s.need(), Need::Parameters | Need::Done)
        {
            // Before the two keys of every screen (help, exception), so an 80-column
            // line keeps it.
            let at = v.keys.len().saturating_sub(2);
            v.keys.insert(at, key("Esc", "parameters"));
        }
    }

    /// The screen of the step waiting for `need`, and its keys.
    fn need_screen(&self, v: &mut ViewState, s: &Session, need: Need) -> Screen {
        let enter = |what: &str| key("Enter", what);
        match need {
            Need::Done => Screen::Blank,
            Need::Parameters
            | Need::Acknowledge { .. }
            | Need::AirgapCheck
            | Need::ClockConfirm
            | Need::RollCall { .. } => self.room_screen(v, s, need),
            Need::LoadMetadata
            | Need::ImportRequests
            | Need::ImportTargets
            | Need::ImportLayout { .. }
            | Need::ImportEvent { .. }
            | Need::ImportPending { .. }
            | Need::ImportKeys { .. } => input_screen(v, s, need),
            Need::GenerateKey {
                keyholder,
                key_type,
            } => {
                let expected = s.expected_token(&keyholder);
                let (status, present) = token_status(&self.tokens, &expected, &keyholder);
                // Shown by its label once the expected token (label or serial) is there.
                let expected = present
                    .iter()
                    .find(|r| r.expected)
                    .map_or(expected, |r| r.label.clone());
                v.keys = vec![
                    enter("generate the key"),
                    key("t", "choose another token"),
                    key("a", "assign it"),
                ];
                Screen::Token {
                    keyholder,
                    purpose: format!("generate a key of type {key_type} inside the token"),
                    expected,
                    present,
                    status,
                    meters: Vec::new(),
                    signers: Vec::new(),
                    digests: Vec::new(),
                }
            }
            Need::Propose => {
                v.keys = vec![enter("build the proposal")];
                Screen::Propose
            }
            Need::Review { digests } => self.review_screen(v, s, &digests),
            Need::Sign { pending, meters } => self.sign_screen(v, s, &pending, &meters),
            Need::Verify => {
                v.keys = vec![enter("verify")];
                Screen::Verify {
                    meters: meter_rows(s, &s.engine.meters()),
                }
            }
            Need::Export { files } => {
                v.keys = vec![key("↑↓", "destination"), enter("export")];
                let mut destinations = vec![format!(
                    "workspace export folder {}",
                    s.ws.export().display()
                )];
                destinations.extend(self.media().iter().map(describe_medium));
                Screen::Export {
                    files: files
                        .iter()
                        .map(|(n, b)| {
                            use sha2::Digest;
                            (n.clone(), b.len(), hex::encode(sha2::Sha256::digest(b)))
                        })
                        .collect(),
                    destinations,
                    selected: self.selected,
                }
            }
            Need::Seal => {
                v.keys = vec![enter("seal")];
                Screen::Seal {
                    artifacts: s
                        .engine
                        .export_files()
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect(),
                    hash: Vec::new(),
                }
            }
        }
    }

    /// The room's steps: parameters, acknowledgements, air-gap check, clock, roll call.
    fn room_screen(&self, v: &mut ViewState, s: &Session, need: Need) -> Screen {
        let enter = |what: &str| key("Enter", what);
        match need {
            Need::Parameters => {
                v.title = "Parameters".into();
                v.instructions = "The administrator reads each parameter aloud; the room agrees before they are recorded.".into();
                v.progress = "before step 1".into();
                v.keys = vec![key("↑↓", "select"), key("e", "edit"), enter("record")];
                self.parameter_screen(s)
            }
            Need::Acknowledge {
                prompt,
                record_text,
            } => {
                v.keys = if record_text {
                    vec![key("e", "type"), enter("confirm")]
                } else {
                    vec![enter("confirm")]
                };
                // The first step asks to read the purpose aloud: it is on screen
                // (the welcome that showed it is gone, or never shown on a resume).
                let prompt = match s.script.steps.first() {
                    Some(first) if first.id == s.step() => format!(
                        "Purpose, read aloud: {}\n\n{prompt}",
                        s.script
                            .purpose
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    _ => prompt,
                };
                Screen::Acknowledge {
                    prompt,
                    record_text,
                    text: self.ack_text.clone(),
                }
            }
            Need::AirgapCheck => {
                v.keys = vec![enter("record the check")];
                // The machine reader's last reading for this step: sysfs is never read here.
                match self.airgap_shown() {
                    Some(Event::AirgapChecked {
                        interfaces, radios, ..
                    }) => Screen::Airgap { interfaces, radios },
                    _ => Screen::Checking {
                        what: "Checking this machine's network interfaces and radios ...".into(),
                    },
                }
            }
            Need::ClockConfirm => {
                v.keys = vec![key("e", "type the reference time"), enter("confirm")];
                Screen::Clock {
                    now: s.machine_time(),
                    reference: self.reference_text.clone(),
                }
            }
            Need::RollCall {
                keyholders,
                witnesses,
            } => {
                v.keys = vec![key("↑↓", "select"), key("e", "edit"), enter("record")];
                Screen::RollCall {
                    fields: self.roll.clone(),
                    selected: self.selected,
                    min_keyholders: keyholders,
                    min_witnesses: witnesses,
                }
            }
            _ => Screen::Blank,
        }
    }

    /// The review of the proposal (or its summary and full list), and its keys.
    fn review_screen(
        &self,
        v: &mut ViewState,
        s: &Session,
        digests: &BTreeMap<String, String>,
    ) -> Screen {
        let enter = |what: &str| key("Enter", what);
        let review = self.review(&s.engine);
        let (lines, pane) = match &review.summary {
            None => (review.lines.clone(), ReviewPane::Changes),
            Some(_) if self.review_list => (review.lines.clone(), ReviewPane::FullList),
            Some(summary) => (
                summary.clone(),
                ReviewPane::Summary {
                    confirmed: self.request_set_confirmed,
                },
            ),
        };
        v.keys = match pane {
            ReviewPane::Changes => {
                vec![key("↑↓ PgUp PgDn", "scroll"), enter("approve")]
            }
            ReviewPane::Summary { .. } => vec![
                key("↑↓ PgDn", "scroll"),
                key("l", "full list"),
                key("d", "digest matches"),
                enter("approve"),
            ],
            ReviewPane::FullList => vec![
                key("↑↓ PgDn Home End", "scroll"),
                key("/ n", "find"),
                key("l", "summary"),
            ],
        };
        Screen::Review {
            lines,
            digests: digest_rows(s, digests),
            scroll: self.scroll,
            pane,
        }
    }

    /// The signing step: the next keyholder's token, the meters and the signers.
    fn sign_screen(
        &self,
        v: &mut ViewState,
        s: &Session,
        pending: &[String],
        meters: &BTreeMap<String, ThresholdResult>,
    ) -> Screen {
        let enter = |what: &str| key("Enter", what);
        let met = !meters.is_empty() && meters.values().all(|m| m.verified());
        let meters = meter_rows(s, meters);
        let signers = signer_rows(s);
        match pending.first() {
            None => {
                v.keys = vec![enter("close signing")];
                Screen::SigningDone { meters, signers }
            }
            Some(who) if met => {
                v.keys = vec![
                    enter("sign"),
                    key("c", "close signing (thresholds met)"),
                    key("s", "skip"),
                ];
                self.token_screen(s, who, meters, signers)
            }
            Some(who) => {
                v.keys = vec![enter("sign"), key("s", "skip (dead token)")];
                self.token_screen(s, who, meters, signers)
            }
        }
    }
}

/// A key and what it does, for the key line.
fn key(k: &str, w: &str) -> (String, String) {
    (k.to_string(), w.to_string())
}

/// The summary of a finished ceremony: the seal read aloud, the checks, where it went.
fn summary_view(v: &mut ViewState, report: &CeremonyReport, checks: &[String], failed: &[String]) {
    v.ceremony = report
        .transcript
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(".transcript.jsonl")
                .to_string()
        })
        .unwrap_or_default();
    v.actor = "everyone".into();
    if failed.is_empty() {
        v.progress = "complete".into();
        v.title = "Sealed: the ceremony is complete".into();
    } else {
        v.progress = "check FAILED".into();
        v.title = "Sealed, but a check FAILED: the ceremony is NOT complete".into();
    }
    let seal = hex::decode(&report.seal).unwrap_or_default();
    let qr = QrMatrix::encode(&report.seal, 0)
        .map(|m| m.to_terminal(1).lines().map(str::to_string).collect())
        .unwrap_or_default();
    let mut lines = checks.to_vec();
    lines.push(String::new());
    lines.push(format!("Exported to {}:", report.export_dir.display()));
    lines.push(format!("  {}", report.exported.join(", ")));
    lines.push(format!("Transcript: {}", report.transcript.display()));
    // A finished ceremony reported again: how another one starts.
    if let Some(another) = &report.another {
        lines.push(format!("Already complete: {another}."));
    }
    v.screen = Screen::Summary {
        seal_hex: hex_groups(&seal),
        seal_words: pgp_words(&seal).join(" "),
        seal_qr: qr,
        lines,
    };
    v.keys = vec![key("r", "exported files as QR codes"), key("q", "quit")];
}

/// The inputs read from the medium: what is read, from where (and the online keys' ids).
fn input_screen(v: &mut ViewState, s: &Session, need: Need) -> Screen {
    let enter = |what: &str| key("Enter", what);
    match need {
        Need::LoadMetadata => {
            v.keys = vec![enter("load")];
            Screen::Load { what: "The current root and targets metadata (root chain verified from the first root).".into(), source: s.ws.export().display().to_string(), keys: Vec::new() }
        }
        Need::ImportRequests => {
            v.keys = vec![enter("import")];
            Screen::Load {
                what: "Developers' key requests (one JSON file per project).".into(),
                source: s.ws.input().join("requests").display().to_string(),
                keys: Vec::new(),
            }
        }
        Need::ImportTargets => {
            v.keys = vec![enter("import")];
            Screen::Load {
                what: "Target files to publish: the manifest (path, action, custom) and the files it names.".into(),
                source: s.ws.input().join(crate::ceremony::publish::MANIFEST_FILE).display().to_string(),
                keys: Vec::new(),
            }
        }
        Need::ImportLayout { file } => {
            v.keys = vec![enter("import")];
            Screen::Load {
                what: "The in-toto layout to sign (unsigned; a metablock or a DSSE envelope)."
                    .into(),
                source: s.ws.input().join(file).display().to_string(),
                keys: Vec::new(),
            }
        }
        Need::ImportEvent { event, known_good } => {
            v.keys = vec![enter("import and review")];
            Screen::Load {
                what: format!(
                    "A tuf-on-ci signing event ({event}/) and the known-good metadata ({known_good}/): the known-good root chain is verified and tuf-on-ci's CI rules are checked before any PIN."
                ),
                source: s.ws.input().display().to_string(),
                keys: Vec::new(),
            }
        }
        Need::ImportPending { file, trusted_root } => {
            v.keys = vec![enter("import and review")];
            Screen::Load {
                what: format!(
                    "RSTUF's pending file (GET /api/v1/metadata/sign/) and the root this appliance trusts ({trusted_root}, confirmed by parameter {}): the pending file's trusted_root must be that root or its next version signed by it; the pending root is reviewed against it, and refused before any PIN when it cannot become a valid update.",
                    crate::ceremony::engine::TRUSTED_ROOT_SHA256
                ),
                source: s.ws.input().join(file).display().to_string(),
                keys: Vec::new(),
            }
        }
        Need::ImportKeys { roles } => {
            v.keys = vec![enter("confirm and record")];
            Screen::Load {
                what: format!("Public keys of the online roles: {}.", roles.join(", ")),
                source: s.ws.input().display().to_string(),
                keys: s.online_key_ids().to_vec(),
            }
        }
        _ => Screen::Blank,
    }
}

/// The welcome of a new ceremony: what it is for (read aloud), whether it is practice, who sits
/// at the keyboard and who comes to it, and the keys that work everywhere.
fn welcome_lines(s: &Session) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{}. Purpose, read aloud: {}",
            crate::text::show(&s.script.title),
            crate::text::show_max(
                &s.script
                    .purpose
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                1000
            )
        ),
        String::new(),
    ];
    if s.practice_tokens {
        lines.push(
            "This is PRACTICE: the tokens are SoftHSM2 files in the workspace, not the keyholders' devices; no key made here is ever used for a registry."
                .into(),
        );
    } else {
        lines.push(
            "This is a REAL ceremony: keys are generated and used inside the keyholders' own tokens, and every step is recorded in the transcript the tokens seal."
                .into(),
        );
    }
    lines.push(
        "The administrator sits at the keyboard and reads each step aloud. Each keyholder comes to the keyboard when their token is asked for, checks the digest on screen, types their PIN and confirms. Witnesses watch; ! records an exception."
            .into(),
    );
    if s.practice_tokens {
        lines.push("F2 fills in a practice token's PIN at the PIN prompt.".into());
    }
    lines.push(
        "? shows the keys of each screen. Ctrl-C stops; the same command continues later.".into(),
    );
    lines
}

impl App {
    /// The parameter editor: each parameter with the value typed and its description with
    /// what values it takes.
    fn parameter_screen(&self, s: &Session) -> Screen {
        Screen::Parameters {
            rows: s
                .script
                .parameters
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        self.values.get(&p.name).cloned().unwrap_or_default(),
                        format!("{} (allowed: {})", p.description, p.allowed()),
                    )
                })
                .collect(),
            selected: self.selected,
        }
    }

    /// How many keyholders the roll call names already (filled in from the plan), if any:
    /// parameters are checked against them before they are recorded.
    fn named_keyholders(&self) -> Option<usize> {
        let n = self.roll[1]
            .split(',')
            .filter(|x| !x.trim().is_empty())
            .count();
        (n > 0).then_some(n)
    }

    /// A key in the parameter editor opened to correct recorded values.
    fn correction_key(&mut self, k: KeyEvent) {
        let Phase::Ceremony(s) = &self.phase else {
            self.correcting = false;
            return;
        };
        let n = s.script.parameters.len();
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
            }
            KeyCode::Char('e') => {
                if let Some(p) = s.script.parameters.get(self.selected) {
                    let name = p.name.clone();
                    let label = format!("Value of {name} ({})", p.allowed());
                    let v = self.values.get(&name).cloned().unwrap_or_default();
                    self.text(label, v, TextFor::Parameter(name));
                }
            }
            KeyCode::Esc => {
                self.correcting = false;
                self.selected = 0;
                self.message = Some(ok(format!(
                    "Back to step {}: nothing was corrected.",
                    s.step()
                )));
            }
            KeyCode::Enter => {
                let recorded = s.engine.parameters();
                let changed: Vec<String> = s
                    .script
                    .parameters
                    .iter()
                    .filter(|p| {
                        self.values.get(&p.name).map(|v| v.trim().to_string())
                            != recorded.get(&p.name).map(ToString::to_string)
                    })
                    .map(|p| p.name.clone())
                    .collect();
                let values = param_values(&s.script, &self.values).map(|v| {
                    v.into_iter()
                        .filter(|(k, _)| changed.contains(k))
                        .collect::<BTreeMap<_, _>>()
                });
                let named = self.named_keyholders();
                let checked = values.and_then(|v| {
                    if v.is_empty() {
                        return Err("Nothing was changed: edit a value first (e).".to_string());
                    }
                    s.engine
                        .check_parameters(&v, named)
                        .map(|()| v)
                        .map_err(|e| e.to_string())
                });
                match checked {
                    Ok(values) => {
                        let event = Event::ParametersCorrected {
                            step: s.step(),
                            values,
                            reason: None,
                        };
                        self.confirm(
                            format!(
                                "Record the correction ({})?",
                                crate::transcript::display::describe(&event)
                            ),
                            Pending::Record {
                                actor: "administrator".into(),
                                event: Box::new(event),
                            },
                        );
                    }
                    Err(text) => self.message = Some(Message { error: true, text }),
                }
            }
            _ => {}
        }
    }

    /// What an unfinished ceremony leaves in the tokens, for the room when the UI stops
    /// before the end (`None`: no key was generated, or the ceremony is finished).
    pub fn abandoned_note(&self) -> Option<String> {
        match &self.phase {
            Phase::Ceremony(s) | Phase::Sealing { session: s, .. } => s.abandoned_note(),
            _ => None,
        }
    }

    /// The token screen of the signing step for `who`, the next keyholder to sign.
    fn token_screen(
        &self,
        s: &Session,
        who: &str,
        meters: Vec<Meter>,
        signers: Vec<SignerRow>,
    ) -> Screen {
        let (expected, found) = self.signing_token(who);
        let wanted = found
            .as_ref()
            .map_or(expected.clone(), |t| t.serial.clone());
        let (mut status, present) = token_status(&self.tokens, &wanted, who);
        if let TokenStatus::Wrong(_) = status {
            status = TokenStatus::Wrong(format!(
                "token {} inserted, expected {who}'s token {expected}",
                present
                    .iter()
                    .map(|r| r.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let roles: Vec<String> = s
            .engine
            .roles_left(who)
            .into_iter()
            .map(|(_, r)| r.to_string())
            .collect();
        Screen::Token {
            keyholder: who.to_string(),
            purpose: format!("sign {}", roles.join(" and ")),
            expected,
            present,
            status,
            meters,
            signers,
            digests: signing_digests(s, who),
        }
    }
}

/// The threshold meters in a line: `root 2 of 2, targets 1 of 2`.
/// Where an export wrote, for the message under the screen: each folder written that is not
/// inside another one written (a publish-targets export also writes `targets/...` folders under
/// the export folder; listing them all pushed "safe to remove the media" off the screen).
fn export_places(dirs: &[&Path]) -> String {
    let tops: Vec<String> = dirs
        .iter()
        .filter(|d| !dirs.iter().any(|o| o != *d && d.starts_with(o)))
        .map(|d| d.display().to_string())
        .collect();
    tops.join(" and ")
}

fn meter_summary(meters: &BTreeMap<String, ThresholdResult>) -> String {
    meters
        .iter()
        .map(|(role, m)| format!("{role} {} of {}", m.signed.len(), m.threshold))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An exported file shown as animated QR codes (UR fountain frames), one frame per tick.
pub struct QrShow {
    name: String,
    anim: Animation,
    lines: Vec<String>,
    frame: usize,
    fragments: usize,
    sha256: [u8; 32],
}

impl QrShow {
    /// The largest fragment size whose frames fit a `w`×`h` terminal (one status line kept).
    pub fn new(name: &str, bytes: &[u8], w: u16, h: u16) -> Result<QrShow, String> {
        for fragment_size in [250, 200, 150, 120, 100, 80, 60, 50, 40, 30, 20] {
            let options = EncodeOptions {
                fragment_size,
                ..EncodeOptions::default()
            };
            let mut anim = Animation::new(bytes, &options).map_err(|e| e.to_string())?;
            let text = anim.next_frame().map_err(|e| e.to_string())?;
            let m = QrMatrix::encode(&text, 0).map_err(|e| e.to_string())?;
            let (cw, ch) = m.terminal_size(QR_QUIET);
            if cw <= usize::from(w) && ch < usize::from(h) {
                return Ok(QrShow {
                    name: name.to_string(),
                    lines: m
                        .to_terminal(QR_QUIET)
                        .lines()
                        .map(str::to_string)
                        .collect(),
                    frame: 1,
                    fragments: anim.fragment_count(),
                    sha256: anim.sha256,
                    anim,
                });
            }
        }
        Err(format!(
            "{name}: the terminal ({w}x{h}) is too small for QR frames; make it larger"
        ))
    }

    /// The next frame.
    pub fn advance(&mut self) {
        if let Ok(text) = self.anim.next_frame()
            && let Ok(m) = QrMatrix::encode(&text, self.frame)
        {
            self.lines = m
                .to_terminal(QR_QUIET)
                .lines()
                .map(str::to_string)
                .collect();
            self.frame += 1;
        }
    }
}

/// Light modules around each QR frame.
const QR_QUIET: usize = 2;

/// A removable medium as the administrator recognises it.
fn describe_medium(m: &Medium) -> String {
    let free = m
        .space
        .as_ref()
        .map(|sp| format!(", {} MB free", sp.free / 1_000_000))
        .unwrap_or_default();
    format!(
        "{} {} ({}{}{}) at {}/conclave-export",
        if m.usb {
            "USB medium"
        } else {
            "removable medium"
        },
        m.label.as_deref().unwrap_or("(no label)"),
        m.device,
        free,
        if m.read_only { ", READ-ONLY" } else { "" },
        m.mount_point.display()
    )
}

fn header(v: &mut ViewState, s: &Session) {
    v.ceremony = s.script_name.clone();
    v.practice = s.plan.practice;
    let step = s.step();
    let total = s.script.steps.len();
    match s.script.steps.iter().position(|st| st.id == step) {
        Some(i) => {
            let st = &s.script.steps[i];
            v.progress = format!("step {} of {total}", st.id);
            v.title = format!("{}. {}", st.id, st.title);
            v.instructions = st
                .instructions
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            v.actor = s.step_actor();
        }
        None => {
            v.progress = format!("{total} of {total} steps done");
            v.actor = "keyholders".into();
        }
    }
}

/// A token named by label or serial, shown by its label when it is present.
/// Whether two listings describe the same token: serial and label, as the signer matches a
/// token again (the slot changes between listings, and serials can repeat across vendors).
fn same_token(a: &TokenDesc, b: &TokenDesc) -> bool {
    a.serial == b.serial && a.label == b.label
}

fn label_of(tokens: &Result<Vec<TokenDesc>, String>, wanted: &str) -> String {
    tokens
        .as_ref()
        .ok()
        .and_then(|ts| ts.iter().find(|t| t.serial == wanted || t.label == wanted))
        .map_or_else(|| wanted.to_string(), |t| t.label.clone())
}

/// Where the expected token stands among those present, and the rows to show.
pub fn token_status(
    tokens: &Result<Vec<TokenDesc>, String>,
    expected: &str,
    who: &str,
) -> (TokenStatus, Vec<TokenRow>) {
    let list = match tokens {
        Ok(l) => l,
        Err(e) => return (TokenStatus::Error(e.clone()), Vec::new()),
    };
    let rows: Vec<TokenRow> = list
        .iter()
        .filter(|t| t.initialized)
        .map(|t| {
            let mut flags = Vec::new();
            if t.pin.locked {
                flags.push("PIN LOCKED");
            } else if t.pin.final_try {
                flags.push("PIN: final try");
            } else if t.pin.count_low {
                flags.push("PIN: tries low");
            }
            if t.pin.shared_last_try() {
                flags.push("TPM: ONE shared PIN try left");
            } else if t.pin.shared_lockout.is_some_and(|n| n > 0) {
                flags.push("TPM: wrong PINs so far");
            }
            TokenRow {
                label: t.label.clone(),
                serial: t.serial.clone(),
                model: format!("{} {}", t.manufacturer, t.model),
                flags: flags.join(", "),
                expected: t.label == expected || t.serial == expected,
            }
        })
        .collect();
    let status = if rows.iter().any(|r| r.expected) {
        TokenStatus::Present
    } else if rows.is_empty() {
        TokenStatus::Missing
    } else {
        TokenStatus::Wrong(format!(
            "token {} inserted, expected {who}'s token {expected}",
            rows.iter()
                .map(|r| r.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    (status, rows)
}

fn meter_rows(s: &Session, meters: &BTreeMap<String, ThresholdResult>) -> Vec<Meter> {
    let versions = s.engine.proposal().ok().map(|p| {
        (
            p.root.as_ref().map(|r| r.signed().common.version),
            p.targets.as_ref().map(|t| t.signed().common.version),
        )
    });
    meters
        .iter()
        .map(|(name, r)| {
            let (rv, tv) = versions.unwrap_or((None, None));
            let label = match name.as_str() {
                "root" => format!("root v{} (new root's keys)", rv.unwrap_or(0)),
                "root (by the current root)" => {
                    format!("root v{} (current root's keys)", rv.unwrap_or(0))
                }
                "targets" => format!("targets v{}", tv.unwrap_or(0)),
                "layout" => "in-toto layout (targets keys)".to_string(),
                other => other.to_string(),
            };
            Meter {
                label,
                have: r.signed.len(),
                need: usize::try_from(r.threshold).unwrap_or(usize::MAX),
            }
        })
        .collect()
}

fn signer_rows(s: &Session) -> Vec<SignerRow> {
    s.engine
        .keyholders()
        .iter()
        .map(|k| {
            let left: Vec<String> = s.engine.roles_left(k).into_iter().map(|(_, r)| r).collect();
            let ids = s.engine.keyholder_key_ids(k);
            let skipped = s.engine.signing_skipped().iter().find(|(w, _)| w == k);
            let (status, done) = if ids.is_empty() {
                ("nothing to sign in this ceremony".to_string(), false)
            } else if let Some((_, why)) = skipped {
                (format!("skipped (recorded): {why}"), false)
            } else if left.is_empty() {
                ("signed".to_string(), true)
            } else {
                (format!("to sign: {}", left.join(", ")), false)
            };
            SignerRow {
                keyholder: k.clone(),
                status,
                done,
            }
        })
        .collect()
}

fn digest_rows(s: &Session, digests: &BTreeMap<String, String>) -> Vec<DigestRow> {
    let p = s.engine.proposal().ok();
    digests
        .iter()
        .map(|(role, hexd)| {
            let bytes = hex::decode(hexd).unwrap_or_default();
            let version = p.as_ref().and_then(|p| match role.as_str() {
                "root" => p.root.as_ref().map(|r| r.signed().common.version),
                "targets" => p.targets.as_ref().map(|t| t.signed().common.version),
                _ => None,
            });
            DigestRow {
                role: match version {
                    Some(v) => format!("{role} v{v}"),
                    None => role.clone(),
                },
                hex_groups: hex_groups(&bytes),
                words: pgp_words(bytes.get(..8).unwrap_or(&bytes)).join(" "),
            }
        })
        .collect()
}

/// Before a PIN prompt: a confirmation first when the token reports its final try, else the
/// prompt's label with what the token's flags say about PIN tries.
#[derive(Debug, PartialEq, Eq)]
enum PinStep {
    Confirm(String),
    Prompt(String),
}

fn pin_step(token: Option<&TokenDesc>, label: &str, confirmed: bool) -> PinStep {
    match token {
        Some(t) if t.pin.final_try && !confirmed => PinStep::Confirm(format!(
            "{t}: the token reports ONE PIN try left (CKF_USER_PIN_FINAL_TRY); another wrong PIN locks it and only its security officer can unlock it. Type the PIN only if you are sure of it. Continue?"
        )),
        // On a TPM, one more wrong PIN would lock every keyholder's token on it.
        Some(t) if t.pin.shared_last_try() && !confirmed => PinStep::Confirm(format!(
            "{t}: {}. Type the PIN only if you are sure of it. Continue?",
            t.pin.describe()
        )),
        Some(t) if t.pin.final_try || t.pin.count_low || t.pin.shared_lockout.is_some() => {
            PinStep::Prompt(format!("{label}\nWarning: {}", t.pin.describe()))
        }
        // A reader with a PIN pad: Enter with nothing typed, then the PIN on the reader.
        Some(t) if t.protected_path => PinStep::Prompt(format!(
            "{label}\n{}: press Enter with nothing typed here",
            t.pin_pad_note()
        )),
        _ => PinStep::Prompt(label.to_string()),
    }
}

/// A warning before skipping or withdrawing a sealer when the keyholders left who hold a
/// root key (`shortfall`: how many, and the root threshold, from
/// [`Session::checkpoint_shortfall`]) are fewer than the root threshold: the key-event log
/// checkpoint could then not be signed.
fn skip_warning(shortfall: Option<(usize, u64)>) -> Option<String> {
    let (left, need) = shortfall?;
    Some(format!(
        "WARNING: only {left} keyholder(s) holding a root key would be left to sign, fewer than the root threshold {need}: the key-event log checkpoint cannot be signed and the ceremony will not be complete."
    ))
}

/// Why the review cannot be approved yet (`None`: it can): the digests do not fit, lines of
/// the pane the room approves from (every change, or a large review's summary) have not all
/// been on screen, the full list is open (approval is from the summary), or the room has not
/// confirmed the request set's SHA-256.
fn approval_refusal(
    pane: ReviewPane,
    fits: bool,
    seen: usize,
    total: usize,
    request_set_confirmed: bool,
) -> Option<String> {
    if !fits {
        return Some("The terminal is too small to show every digest whole.".into());
    }
    if pane == ReviewPane::FullList {
        return Some(
            "Not approved: the review is approved from its summary (press l to go back to it)."
                .into(),
        );
    }
    if seen < total {
        return Some(format!(
            "Not approved: {} of the {} have not been on screen yet; page through every line (PgDn) first.",
            view::review_position(seen, total - seen, total),
            if pane == ReviewPane::Changes {
                "review"
            } else {
                "summary"
            }
        ));
    }
    if matches!(pane, ReviewPane::Summary { .. }) && !request_set_confirmed {
        return Some(
            "Not approved: compare the request set's SHA-256 with the value published before the ceremony and press d when the room confirms it matches."
                .into(),
        );
    }
    None
}

/// The digests of the roles `who` signs next (those approved in the review).
fn signing_digests(s: &Session, who: &str) -> Vec<DigestRow> {
    let roles: Vec<String> = s
        .engine
        .roles_left(who)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let all = s
        .engine
        .proposal()
        .map(|p| p.digests())
        .unwrap_or_default()
        .into_iter()
        .filter(|(role, _)| roles.contains(role))
        .collect();
    digest_rows(s, &all)
}

/// Digests as text for a confirmation: per role its label and words, then the hex in two rows.
impl Phase {
    /// At the seal, the keyholder whose turn it is: before the seal is written, the next one
    /// to log in (or be skipped); after, the next listed signer who has not signed.
    fn next_sealer(&self) -> Option<&String> {
        let Phase::Sealing {
            sealers,
            signers,
            skipped,
            seal,
            sealed,
            withdrawn,
            earlier,
            checkpoint,
            ..
        } = self
        else {
            return None;
        };
        let logged_in = |w: &String| signers.iter().any(|(s, _)| s == w);
        let open = |w: &&String| !skipped.contains(*w) && !withdrawn.iter().any(|(k, _)| k == *w);
        let next = sealers.iter().filter(open).find(|w| match seal {
            None => !logged_in(w),
            Some(_) => !sealed.contains(*w),
        });
        // After the seal signatures: those who signed the seal before an interruption log in
        // for the key-event log's checkpoint (they are never asked to sign the seal again).
        next.or_else(|| {
            sealers.iter().filter(open).find(|w| {
                seal.is_some() && earlier.contains(*w) && checkpoint.contains(*w) && !logged_in(w)
            })
        })
    }

    /// Whether `who`, next at the seal, signed it before an interruption and only logs in for
    /// the key-event log's checkpoint (they hold a current root key).
    fn checkpoint_only(&self, who: &str) -> bool {
        matches!(self, Phase::Sealing { earlier, checkpoint, seal: Some(_), .. }
            if earlier.iter().any(|w| w == who) && checkpoint.iter().any(|w| w == who))
    }
}

/// The seal hash as a digest row: what each keyholder checks before signing the seal.
fn seal_row(hash: &str) -> DigestRow {
    let bytes = hex::decode(hash).unwrap_or_default();
    DigestRow {
        role: "seal".into(),
        hex_groups: hex_groups(&bytes),
        words: pgp_words(bytes.get(..8).unwrap_or(&bytes)).join(" "),
    }
}

/// The engine's review lines for an 80-column screen: a key line "+ ID (SCHEME, owner O)"
/// becomes "+ added   owner O, SCHEME" and "key id ID" below it, so owner and full key id
/// never break across lines.
fn review_display(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines {
        let trimmed = l.trim_start();
        let indent = &l[..l.len() - trimmed.len()];
        let (sign, word) = if let Some(rest) = trimmed.strip_prefix("+ ") {
            (("+", "added"), rest)
        } else if let Some(rest) = trimmed.strip_prefix("- ") {
            (("-", "removed"), rest)
        } else {
            out.push(l.clone());
            continue;
        };
        let Some((id, inner)) = word.split_once(" (") else {
            out.push(l.clone());
            continue;
        };
        let inner = inner.strip_suffix(')').unwrap_or(inner);
        let mut scheme = "";
        let mut owner = None;
        let mut rest = Vec::new();
        for part in inner.split(", ") {
            if let Some(o) = part.strip_prefix("owner ") {
                owner = Some(format!("owner {o}"));
            } else if part.starts_with("online key of ") {
                // What the room knows of a key without an owner: the roles it serves.
                owner = Some(part.to_string());
            } else if scheme.is_empty() {
                scheme = part;
            } else {
                rest.push(part);
            }
        }
        let whose = owner.unwrap_or_else(|| "owner unknown".to_string());
        let rest: String = rest.iter().map(|r| format!(", {r}")).collect();
        out.push(format!(
            "{indent}{} {:<7} {whose}, {scheme}{rest}",
            sign.0, sign.1
        ));
        out.push(format!("{indent}  key id {id}"));
    }
    out
}

fn param_values(
    script: &Script,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, ParamJson>, String> {
    let mut out = BTreeMap::new();
    for p in &script.parameters {
        let Some(v) = values.get(&p.name) else {
            continue;
        };
        let j = match &p.default {
            ParamValue::Integer(_) => ParamJson::Integer(
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("parameter {}: \"{v}\" is not a whole number", p.name))?,
            ),
            ParamValue::Choice(_) | ParamValue::Text(_) => ParamJson::Text(v.clone()),
        };
        out.insert(p.name.clone(), j);
    }
    Ok(out)
}

/// The phase of a ceremony just opened, made where it was opened (the worker: the transcript
/// and the output are read): its step; the seal when every step is recorded (a rerun after an
/// interrupted or failed seal: the skips, the seal and its signatures recorded stand); its
/// summary with the output's checks when it was finished. The errors met reading what stands.
fn opened_phase(opened: Opened) -> (Phase, Vec<DriverError>) {
    let mut phase = match opened {
        Opened::Finished(report) => summary_phase(*report),
        Opened::Running(s) => Phase::Ceremony(s),
    };
    let errors = phase.seal_if_done();
    (phase, errors)
}

fn summary_phase(report: CeremonyReport) -> Phase {
    let mut failed = Vec::new();
    let checks = match crate::driver::check(&report, &crate::driver::SystemClock) {
        Ok(checks) => checks
            .iter()
            .map(|c| {
                if c.passed {
                    format!("{}: VALID", c.kind.title())
                } else {
                    failed.push(c.kind.title().to_string());
                    match &c.reason {
                        Some(r) => format!("{}: FAILED: {r}", c.kind.title()),
                        None => format!("{}: FAILED", c.kind.title()),
                    }
                }
            })
            .collect(),
        Err(e) => {
            failed.push("the checks".to_string());
            vec![format!("Checks FAILED: {e}")]
        }
    };
    Phase::Summary {
        report: Box::new(report),
        checks,
        failed,
    }
}

/// The reference time to confirm the machine clock (`machine`, RFC 3339 UTC) against, from
/// what the administrator typed (`typed`), or what they read on screen: nothing typed is a
/// practice run's own clock (recorded as such) and a real ceremony's prompt to type it; a
/// machine clock further than [`CLOCK_TOLERANCE_SECONDS`] from the reference is refused with
/// the difference, for the administrator to set the machine clock first.
fn clock_reference(typed: &str, machine: &str, practice: bool) -> Result<Option<String>, String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return if practice {
            Ok(None)
        } else {
            Err("Type the time a reference clock (a phone, a radio clock) shows first (e): YYYY-MM-DD HH:MM, UTC.".into())
        };
    }
    let reference = parse_reference_time(typed).map_err(|e| format!("Reference time: {e}."))?;
    let machine_time = crate::transcript::record::Timestamp::parse(machine)
        .map_err(|e| format!("The machine time {machine}: {e}"))?
        .to_datetime();
    let diff = (machine_time - reference).whole_seconds();
    if diff.abs() > CLOCK_TOLERANCE_SECONDS {
        return Err(format!(
            "The machine clock is off: {} the reference time (more than {} minutes). Set the machine clock, then confirm it again.",
            show_clock_difference(diff),
            CLOCK_TOLERANCE_SECONDS / 60
        ));
    }
    Ok(Some(typed.to_string()))
}

#[cfg(test)]
#[path = "app_fake_tokens_tests.rs"]
mod fake_tokens_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// The script choice without a workspace (on a removable medium) offering `names`.
    fn chooser(names: &[&str]) -> App {
        App::new(Phase::Choose {
            ws: None,
            sys: std::env::temp_dir().join("conclave-no-such-sys"),
            plan: Box::default(),
            start: Start::Continue,
            scripts: names
                .iter()
                .map(|n| (n.to_string(), n.to_uppercase(), format!("{n} purpose"), ""))
                .collect(),
        })
    }

    /// The export message names the folders written, not every sub-folder of them.
    #[test]
    fn the_export_message_names_the_top_folders() {
        let dirs = [
            Path::new("/ws/export/"),
            Path::new("/ws/export/targets/practice"),
            Path::new("/ws/export/targets/b23b0281ee3686754b7193c715c82a2db4e1b07864665e5a3"),
            Path::new("/media/STICK/export"),
        ];
        assert_eq!(export_places(&dirs), "/ws/export/ and /media/STICK/export");
    }

    #[test]
    fn a_wrong_token_is_named_before_any_pin_is_asked() {
        let present = Ok(vec![TokenDesc::example("yk-bob", "1583002")]);
        let (status, rows) = token_status(&present, "yk-carol", "alice");
        assert_eq!(
            status,
            TokenStatus::Wrong("token yk-bob inserted, expected alice's token yk-carol".into())
        );
        assert!(!rows[0].expected);
        // By serial number too.
        let (status, rows) = token_status(&present, "1583002", "bob");
        assert_eq!(status, TokenStatus::Present);
        assert!(rows[0].expected);
        let (status, _) = token_status(&Ok(Vec::new()), "yk-bob", "bob");
        assert_eq!(status, TokenStatus::Missing);
        let mut locked = TokenDesc::example("yk-bob", "1");
        locked.pin.locked = true;
        let (_, rows) = token_status(&Ok(vec![locked]), "yk-bob", "bob");
        assert_eq!(rows[0].flags, "PIN LOCKED");
        let (status, _) = token_status(&Err("C_GetSlotList failed".into()), "x", "bob");
        assert!(matches!(status, TokenStatus::Error(_)));
    }

    /// A ceremony given on the command line is opened once the UI is on screen: the screen
    /// says what it waits for while the module loads; a module that cannot be loaded ends the
    /// UI with the error for the command to print.
    #[test]
    fn a_ceremony_given_on_the_command_line_is_opened_with_the_ui_on_screen() {
        let tmp = tempfile::tempdir().unwrap();
        let not_a_module = tmp.path().join("not-a-module.so");
        std::fs::write(&not_a_module, b"not a shared library").unwrap();
        let plan = Plan {
            module: Some(crate::driver::module::ChosenModule {
                path: not_a_module.clone(),
                chosen_by: crate::config::ModuleChoice::Flag(not_a_module),
                purpose: crate::driver::module::ModuleUse::Ceremony { practice: true },
                why: None,
            }),
            ..Plan::default()
        };
        let ws = Workspace {
            dir: tmp.path().join("ws"),
        };
        std::fs::create_dir_all(&ws.dir).unwrap();
        let text = crate::driver::shipped_script("bootstrap-root").unwrap();
        let mut app = App::opening(
            ws,
            "bootstrap-root".into(),
            text.into(),
            tmp.path().join("sys"),
            Some(plan),
            Start::Continue,
        );
        let v = app.view_state();
        let shown = format!("{:?} {:?}", v.banner, v.message);
        assert!(
            shown.contains("working: opening the ceremony bootstrap-root")
                && shown.contains("Opening the ceremony bootstrap-root in"),
            "{shown}"
        );
        app.wait_idle();
        assert!(app.quit);
        let e = app.take_open_error().expect("the module error");
        assert!(e.to_string().contains("not-a-module.so"), "{e}");
    }

    /// The welcome waits for Enter: other keys (here the choice's Down and Enter's neighbours)
    /// change nothing under it, Enter begins, and the key line says so meanwhile.
    #[test]
    fn the_welcome_waits_for_enter() {
        let mut app = chooser(&["a", "b"]);
        app.welcome = Some(vec!["Welcome.".into()]);
        let v = app.view_state();
        assert_eq!(v.welcome, Some(vec!["Welcome.".to_string()]));
        assert_eq!(v.keys[0], ("Enter".to_string(), "begin".to_string()));
        app.update(Msg::Key(KeyEvent::from(KeyCode::Down)));
        app.update(Msg::Key(KeyEvent::from(KeyCode::Char('y'))));
        assert!(app.welcome.is_some());
        assert_eq!(app.selected, 0);
        app.update(Msg::Key(KeyEvent::from(KeyCode::Enter)));
        assert!(app.welcome.is_none());
        assert!(app.view_state().welcome.is_none());
        app.update(Msg::Key(KeyEvent::from(KeyCode::Down)));
        assert_eq!(app.selected, 1);
    }

    /// A PIN held for a YubiKey's key generation while its management key is asked is never
    /// shown, not even by `Debug`.
    #[test]
    fn a_held_pin_is_not_shown_by_debug() {
        let purpose = PinFor::ManagementKey {
            keyholder: "alice".into(),
            key_type: "ecdsa-p256".into(),
            pin: HeldPin(Zeroizing::new("271828".into())),
        };
        let shown = format!("{purpose:?}");
        assert!(
            !shown.contains("271828") && shown.contains("HeldPin(..)"),
            "{shown}"
        );
    }

    /// The PIV management key is typed into a field labelled "management key", not "PIN"
    /// (before: the masked field of the management-key prompt said "PIN:").
    #[test]
    fn the_management_key_field_is_not_labelled_pin() {
        let mut app = App::new(Phase::Choose {
            ws: Some(Workspace {
                dir: std::env::temp_dir().join("conclave-no-such-workspace"),
            }),
            sys: std::env::temp_dir().join("conclave-no-such-sys"),
            plan: Box::default(),
            start: Start::Continue,
            scripts: Vec::new(),
        });
        let draw = |app: &App| {
            let mut term =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
            term.draw(|f| view::draw(f, &app.view_state())).unwrap();
            let buf = term.backend().buffer().clone();
            (0..buf.area.height)
                .map(|y| {
                    (0..buf.area.width)
                        .map(|x| buf[(x, y)].symbol().to_string())
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        app.pin(
            "alice: PIV management key of token yk-alice".into(),
            PinFor::ManagementKey {
                keyholder: "alice".into(),
                key_type: "ecdsa-p256".into(),
                pin: HeldPin(Zeroizing::new("271828".into())),
            },
        );
        let shown = draw(&app);
        assert!(
            shown.contains("management key: _") && !shown.contains("PIN: _"),
            "{shown}"
        );
        app.pin(
            "alice: PIN of token yk-alice".into(),
            PinFor::Sign {
                who: "alice".into(),
            },
        );
        let shown = draw(&app);
        assert!(shown.contains("PIN: _"), "{shown}");
    }

    /// The PIN prompt's buffer is allocated once at its full size: typing the longest PIN the
    /// prompt takes never moves it, so no shorter copy is left in freed memory (before, it
    /// started empty and grew).
    #[test]
    fn typing_a_pin_never_moves_its_buffer() {
        let mut app = App::new(Phase::Choose {
            ws: Some(Workspace {
                dir: std::env::temp_dir().join("conclave-no-such-workspace"),
            }),
            sys: std::env::temp_dir().join("conclave-no-such-sys"),
            plan: Box::default(),
            start: Start::Continue,
            scripts: Vec::new(),
        });
        app.pin(
            "PIN".into(),
            PinFor::Sign {
                who: "alice".into(),
            },
        );
        let buffer = |app: &App| match &app.prompt {
            PromptState::Pin { buf, .. } => (buf.as_ptr(), buf.len()),
            _ => panic!("the PIN prompt is gone"),
        };
        let (at, _) = buffer(&app);
        for _ in 0..40 {
            app.update(Msg::Key(KeyEvent::from(KeyCode::Char('é'))));
            assert_eq!(buffer(&app).0, at, "the PIN buffer moved");
        }
        assert_eq!(buffer(&app).1, 64, "the prompt takes 64 bytes");
    }

    /// The clock step: the reference time is typed in the text prompt (update()), then checked
    /// against the machine clock before anything is recorded.
    #[test]
    fn the_typed_reference_time_confirms_or_refuses_the_machine_clock() {
        let mut app = chooser(&[]);
        app.text(
            "Reference time".into(),
            String::new(),
            TextFor::ReferenceTime,
        );
        for c in "2026-11-23 10:02".chars() {
            app.update(Msg::Key(KeyEvent::from(KeyCode::Char(c))));
        }
        app.update(Msg::Key(KeyEvent::from(KeyCode::Enter)));
        assert_eq!(app.reference_text, "2026-11-23 10:02");
        let machine = "2026-11-23T10:00:00Z";
        // Within five minutes: the reference is recorded.
        assert_eq!(
            clock_reference(&app.reference_text, machine, false),
            Ok(Some("2026-11-23 10:02".into()))
        );
        // The machine clock three years back: refused with the difference.
        let e = clock_reference(&app.reference_text, "2023-11-23T10:02:00Z", false).unwrap_err();
        assert!(
            e.starts_with(
                "The machine clock is off: 1096 days 0 h 0 min 0 s behind the reference time"
            ),
            "{e}"
        );
        // Nothing typed: a real ceremony asks for it, a practice run takes its own clock.
        let e = clock_reference("", machine, false).unwrap_err();
        assert!(e.contains("Type the time a reference clock"), "{e}");
        assert_eq!(clock_reference(" ", machine, true), Ok(None));
        // What cannot be read as a time is said so.
        let e = clock_reference("10:02", machine, true).unwrap_err();
        assert!(e.contains("YYYY-MM-DD HH:MM"), "{e}");
    }

    /// The token's PIN-count flags are said before the PIN is typed, and its final try asks
    /// a confirmation first (before: the prompt opened the same on a token one try from
    /// locking).
    #[test]
    fn the_final_pin_try_is_confirmed_and_low_counts_are_shown() {
        let mut t = TokenDesc::example("yk-alice", "1583001");
        assert_eq!(
            pin_step(Some(&t), "alice: PIN", false),
            PinStep::Prompt("alice: PIN".into())
        );
        t.pin.count_low = true;
        let PinStep::Prompt(label) = pin_step(Some(&t), "alice: PIN", false) else {
            panic!("a prompt")
        };
        assert!(label.contains("CKF_USER_PIN_COUNT_LOW"), "{label}");
        t.pin.final_try = true;
        let PinStep::Confirm(q) = pin_step(Some(&t), "alice: PIN", false) else {
            panic!("a confirmation before the final try")
        };
        assert!(
            q.contains("ONE PIN try left") && q.contains("yk-alice"),
            "{q}"
        );
        let PinStep::Prompt(label) = pin_step(Some(&t), "alice: PIN", true) else {
            panic!("the prompt once confirmed")
        };
        assert!(label.contains("ONE try left"), "{label}");
        // A TPM token (tpm2-pkcs11: no PIN-count flags, one lockout for every token on the
        // TPM): the wrong PINs so far are said, and before the last shared try the room is
        // asked first, as headless warns (`tpm_last_try_warning`).
        let mut tpm = TokenDesc::example("alice", "0000000000000000");
        tpm.pin.shared_lockout = Some(1);
        let PinStep::Prompt(l) = pin_step(Some(&tpm), "alice: PIN", false) else {
            panic!("a prompt with one wrong PIN so far")
        };
        assert!(l.contains("(1 wrong PIN here so far)"), "{l}");
        tpm.pin.shared_lockout = Some(2);
        let PinStep::Confirm(q) = pin_step(Some(&tpm), "alice: PIN", false) else {
            panic!("a confirmation before the last shared TPM try")
        };
        assert!(
            q.contains("ONE more wrong PIN") && q.contains("EVERY keyholder's token"),
            "{q}"
        );
        let PinStep::Prompt(l) = pin_step(Some(&tpm), "alice: PIN", true) else {
            panic!("the prompt once confirmed")
        };
        assert!(l.contains("ONE more wrong PIN"), "{l}");
        let (_, rows) = token_status(&Ok(vec![tpm]), "alice", "alice");
        assert_eq!(rows[0].flags, "TPM: ONE shared PIN try left");
        // A reader with a PIN pad says how its PIN is entered.
        let mut pad = TokenDesc::example("alice", "1583001");
        pad.protected_path = true;
        let PinStep::Prompt(l) = pin_step(Some(&pad), "alice: PIN", false) else {
            panic!("a prompt")
        };
        assert!(
            l.contains("has a PIN pad: enter the PIN on the reader")
                && l.contains("press Enter with nothing typed"),
            "{l}"
        );
        // The prompt with the warning is whole at 80x24.
        let state = crate::tui::state::ViewState {
            prompt: crate::tui::state::Prompt::Pin {
                label,
                field: "PIN".into(),
                typed: 3,
                practice_hint: true,
            },
            ..Default::default()
        };
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        term.draw(|f| view::draw(f, &state)).unwrap();
        let buf = term.backend().buffer().clone();
        let text: String = (0..24)
            .map(|y| (0..80).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
            .collect();
        assert!(text.contains("another wrong PIN locks it"), "{text}");
        assert!(text.contains("Enter: log in"), "{text}");
    }

    /// Skipping a sealer that leaves fewer keyholders than the root threshold is warned about
    /// before it is confirmed (before: a 5-of-5 root lost its checkpoint without a word).
    #[test]
    fn a_skip_that_leaves_the_checkpoint_unsignable_is_warned_about() {
        let w = skip_warning(Some((4, 5))).expect("a warning");
        assert!(
            w.contains("only 4 keyholder(s) holding a root key") && w.contains("threshold 5"),
            "{w}"
        );
        assert!(w.contains("checkpoint cannot be signed"), "{w}");
        assert_eq!(skip_warning(None), None);
    }

    /// A summary-first review: approval is refused until every summary line has been on screen
    /// and the room confirmed the request set's SHA-256, and from the full list; then allowed.
    #[test]
    fn a_summary_first_review_is_approved_only_after_the_request_set_is_confirmed() {
        let summary = |confirmed| ReviewPane::Summary { confirmed };
        let unseen = approval_refusal(summary(false), true, 10, 30, false).unwrap();
        assert!(
            unseen.contains("lines 11-30 of 30 of the summary"),
            "{unseen}"
        );
        let unconfirmed = approval_refusal(summary(false), true, 30, 30, false).unwrap();
        assert!(unconfirmed.contains("press d"), "{unconfirmed}");
        let list = approval_refusal(ReviewPane::FullList, true, 30, 30, true).unwrap();
        assert!(list.contains("approved from its summary"), "{list}");
        assert!(approval_refusal(summary(true), false, 30, 30, true).is_some());
        assert_eq!(approval_refusal(summary(true), true, 30, 30, true), None);
        // A review read line by line needs no confirmation.
        assert_eq!(
            approval_refusal(ReviewPane::Changes, true, 22, 22, false),
            None
        );
        assert!(approval_refusal(ReviewPane::Changes, true, 21, 22, false).is_some());
    }

    #[test]
    fn key_lines_keep_owner_and_full_key_id_whole() {
        let id = "ab".repeat(32);
        let out = review_display(&[
            "root v1 -> v2".into(),
            format!("    + {id} (ed25519, owner dave)"),
            format!("    - {id} (ecdsa-sha2-nistp256)"),
        ]);
        assert_eq!(out[0], "root v1 -> v2");
        assert_eq!(out[1], "    + added   owner dave, ed25519");
        assert_eq!(out[2], format!("      key id {id}"));
        assert!(out[3].starts_with("    - removed owner unknown, ecdsa-sha2-nistp256"));
        assert!(out.iter().all(|l| l.chars().count() <= 78), "{out:?}");
    }

    #[test]
    fn parameters_typed_are_checked_against_their_type() {
        let text = crate::driver::shipped_script("bootstrap-root").unwrap();
        let script = Script::parse("bootstrap-root.toml", text).unwrap();
        let mut values = BTreeMap::new();
        values.insert("root_threshold".to_string(), "3".to_string());
        values.insert("key_type".to_string(), "ed25519".to_string());
        let v = param_values(&script, &values).unwrap();
        assert_eq!(v["root_threshold"], ParamJson::Integer(3));
        assert_eq!(v["key_type"], ParamJson::Text("ed25519".into()));
        values.insert("root_threshold".to_string(), "two".to_string());
        let e = param_values(&script, &values).unwrap_err();
        assert!(
            e.contains("root_threshold") && e.contains("whole number"),
            "{e}"
        );
    }

    #[test]
    fn qr_frames_fit_the_console_and_a_reader_rebuilds_the_file() {
        use crate::transport::qr::{Collector, read_png_codes, terminal_frame_to_png};
        let file: Vec<u8> = (0..6000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut q = QrShow::new("2.root.json", &file, 80, 24).unwrap();
        let mut c = Collector::new();
        let mut frames = 0;
        while !c.progress().complete {
            assert!(q.lines.len() < 24, "{} rows", q.lines.len());
            assert!(q.lines.iter().all(|l| l.chars().count() <= 80));
            // Every third frame is "missed" by the reader.
            if frames % 3 != 2 {
                let codes = read_png_codes(&terminal_frame_to_png(&q.lines, 4).unwrap()).unwrap();
                assert_eq!(codes.len(), 1, "frame {} is readable", q.frame);
                c.receive("console", &codes[0]).unwrap();
            }
            q.advance();
            frames += 1;
            assert!(frames < 40 * q.fragments, "never complete");
        }
        assert_eq!(c.finish().unwrap().data, file);
        assert!(
            QrShow::new("x", &file, 20, 8).is_err(),
            "too small a terminal is said so"
        );
    }

    /// A key press or a redraw at a large review costs only the drawing (issue 17): the review
    /// is built from the engine once per engine state and reused by every later draw; a new
    /// event rebuilds it, and leaving the step drops it. Counted, not timed.
    #[test]
    fn the_review_is_built_once_per_engine_state() {
        let mut engine = crate::ceremony::engine::summary::fixture::engine_at_review(60);
        let mut app = chooser(&[]);
        let first = app.review(&engine);
        assert!(first.summary.is_some(), "60 projects open with a summary");
        assert_eq!(first.lines, review_display(&engine.review_lines()));
        for _ in 0..10 {
            assert!(Arc::ptr_eq(&first, &app.review(&engine)));
        }
        assert_eq!(app.review_builds.get(), 1);
        // An event changes the engine's state: built again, once.
        let step = engine.current_step().unwrap_or("end").to_string();
        engine
            .apply(&Event::Exception {
                step,
                witness: "wendy".into(),
                text: "a note".into(),
            })
            .expect("an exception is taken at any step");
        let second = app.review(&engine);
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(Arc::ptr_eq(&second, &app.review(&engine)));
        assert_eq!(app.review_builds.get(), 2);
        // A copy of the same state is the same state; an engine built anew (as a session
        // replays one after a correction) is another, even at the same number of events.
        assert!(Arc::ptr_eq(&second, &app.review(&engine.clone())));
        let mut other = crate::ceremony::engine::summary::fixture::engine_at_review(60);
        assert_ne!(other.revision(), engine.revision());
        other.require_clock_confirmation();
        app.review(&other);
        assert_eq!(app.review_builds.get(), 3);
        // Leaving the step drops it.
        app.seen_step = "another step".into();
        app.phase = Phase::Gone;
        app.after_change();
        assert!(app.review_cache.borrow().is_none());
    }

    /// A machine with one USB stick mounted at /media/STICK; each read notes the thread it
    /// ran on.
    #[derive(Default)]
    struct WatchedSystem {
        threads: std::sync::Mutex<Vec<String>>,
    }

    impl WatchedSystem {
        fn note(&self) {
            let name = std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string();
            self.threads.lock().unwrap().push(name);
        }

        fn reads(&self) -> Vec<String> {
            self.threads.lock().unwrap().clone()
        }
    }

    fn not_found() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::NotFound)
    }

    impl SystemView for WatchedSystem {
        fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
            self.note();
            match path.to_str().unwrap_or_default() {
                "/proc/mounts" => Ok("/dev/sdb1 /media/STICK vfat rw 0 0\n".into()),
                "/sys/class/block/sdb1/partition" | "/sys/block/sdb/removable" => Ok("1\n".into()),
                _ => Err(not_found()),
            }
        }
        fn read_link(&self, path: &Path) -> std::io::Result<PathBuf> {
            self.note();
            if path == Path::new("/sys/class/block/sdb1") {
                Ok(PathBuf::from(
                    "../../devices/pci0000:00/usb1/1-2/block/sdb/sdb1",
                ))
            } else {
                Err(not_found())
            }
        }
        fn read_dir(&self, _: &Path) -> std::io::Result<Vec<String>> {
            self.note();
            Err(not_found())
        }
        fn space(&self, _: &Path) -> std::io::Result<crate::transport::usb::Space> {
            self.note();
            Ok(crate::transport::usb::Space {
                total: 8_000_000_000,
                free: 4_000_000_000,
            })
        }
        fn read_head(&self, _: &Path, _: usize) -> std::io::Result<Vec<u8>> {
            self.note();
            Err(not_found())
        }
    }

    fn chooser_workspace(app: &App) -> String {
        match app.view_state().screen {
            Screen::Choose { workspace, .. } => workspace,
            other => panic!("not the chooser: {other:?}"),
        }
    }

    /// The workspace chooser lists the removable media as the machine reader found them, on
    /// its own thread: the UI thread never reads the mounts (a hung medium's `statvfs` would
    /// freeze the screen), before the first answer the screen says it is looking, and draws
    /// and keys read nothing. The script chosen stays chosen when the media are read again
    /// (before: each listing clamped it to the number of media).
    #[test]
    fn the_media_are_read_off_the_ui_thread_and_the_chooser_shows_the_last_answer() {
        let system = Arc::new(WatchedSystem::default());
        let mut app = chooser(&["a", "b", "c"])
            .with_system(Arc::clone(&system) as Arc<dyn SystemView + Send + Sync>);
        assert_eq!(chooser_workspace(&app), "looking for removable media ...");
        app.wait_idle();
        assert_eq!(
            chooser_workspace(&app),
            "/media/STICK/conclave on USB medium (no label) (/dev/sdb1, 4000 MB free) (w: another medium)"
        );
        let reads = system.reads();
        assert!(!reads.is_empty());
        assert!(
            reads.iter().all(|t| t == "conclave-read"),
            "read on the UI thread: {reads:?}"
        );
        // Draws and keys read nothing; the script chosen stays when the media are read again.
        for _ in 0..5 {
            app.view_state();
        }
        app.update(Msg::Key(KeyEvent::from(KeyCode::Down)));
        app.update(Msg::Key(KeyEvent::from(KeyCode::Down)));
        assert_eq!(system.reads().len(), reads.len());
        for _ in 0..4 {
            app.update(Msg::Tick);
        }
        app.wait_idle();
        assert!(system.reads().len() > reads.len(), "read again on a tick");
        assert!(system.reads().iter().all(|t| t == "conclave-read"));
        assert_eq!(app.selected, 2);
    }
}
