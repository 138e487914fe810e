//! Token work off the UI thread. A token can take seconds (a YubiHSM over USB, a TPM, a PIN
//! pad waiting for the reader) or hang; the UI must keep drawing and answering keys meanwhile.
//!
//! A [`Job`] moves the ceremony ([`Phase`], which owns the driver [`crate::driver::Session`]
//! and the seal's logged-in signers) to a worker thread for one operation (a login, a key
//! generation, signatures, the seal, the key-event log, an export) and back. The thread runs
//! the job's work on the ceremony and sends back a [`JobDone`]: the ceremony and the typed
//! result, bound to the code that applies it on the UI thread (`App::update` with
//! [`super::app::Msg::Done`]). The session has one owner at any time: the UI thread, or the
//! worker while a job runs; nothing is shared, nothing is locked.
//!
//! The transcript is written the same way: a step that touches no token (parameters, an
//! approval, an exception, the roll call, a skip, a withdrawal, closing the signing ...) is
//! recorded by a [`JobKind::Record`] job, so an append and its fsync on a slow or failing
//! medium never freeze the screen. The ceremony, and with it the one open transcript file,
//! has one owner at a time: one writer, and records are written in the order the jobs were
//! started (one job at a time: keys that would start another are ignored until it ends). A
//! record job does not take the token gate (it calls no token: a token poll that hangs does not
//! hold up the transcript).
//!
//! PINs travel inside the job's work (moved, never copied) in their zeroizing buffers and are
//! wiped when the work ends. A panic in the work is caught: the UI then ends with a message
//! (the transcript holds every recorded step; the same command continues).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::app::{App, Phase};
use super::poller::TokenGate;
use super::state::ViewState;
use crate::driver::DriverError;

/// Set when the room stops the UI while a job runs ("stop now?" confirmed): the job's work
/// records nothing after that, as if the process had ended there (a key the token made
/// meanwhile is found, reported and removed when the ceremony continues).
#[derive(Clone, Debug, Default)]
pub struct Abandon(Arc<AtomicBool>);

impl Abandon {
    /// The room stopped the UI.
    pub(super) fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// `Err` once the room stopped the UI: `what` is not recorded.
    pub(super) fn check(&self, what: &str) -> Result<(), DriverError> {
        if self.0.load(Ordering::SeqCst) {
            Err(DriverError::Refused(format!(
                "{what} was not recorded: the UI was stopped"
            )))
        } else {
            Ok(())
        }
    }
}

/// What runs on the worker: the operation on the ceremony, giving what applies its result.
pub(super) type Work = Box<dyn FnOnce(&mut Phase) -> Apply + Send>;

/// Applies a job's result to the UI (on the UI thread).
pub(super) type Apply = Box<dyn FnOnce(&mut App) + Send>;

/// A finished job: the ceremony back from the worker and what applies the result.
pub struct JobDone {
    pub(super) phase: Phase,
    pub(super) apply: Apply,
}

impl std::fmt::Debug for JobDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobDone(..)")
    }
}

/// What a job works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JobKind {
    /// A token (and the transcript, when its result is recorded): holds the token gate.
    Token,
    /// Only the transcript: a step recorded (append and fsync), no token called.
    Record,
    /// A file read for the screen (an exported file shown as QR codes): nothing recorded, no
    /// token called.
    Read,
}

/// A job running on the worker thread.
pub(super) struct Job {
    /// What it works on.
    pub(super) kind: JobKind,
    /// What it does ("generating the ed25519 key of alice", "the roll call").
    pub(super) what: String,
    /// Where ("token alice", "the medium /media/usb").
    pub(super) on: String,
    /// When it started (for the elapsed seconds on screen).
    pub(super) started: Instant,
    /// The screen when it started: drawn (with the job's status) until it ends.
    pub(super) view: ViewState,
    done: Receiver<JobDone>,
}

/// How waiting for a job ended.
pub(super) enum Waited {
    /// Finished.
    Done(Box<JobDone>),
    /// Still running.
    Running,
    /// The worker went away without an answer (the ceremony went with it).
    Lost,
}

impl Job {
    /// The job's result if it has finished; waits up to `wait` (`None`: until it finishes).
    pub(super) fn poll(&self, wait: Option<Duration>) -> Waited {
        let got = match wait {
            None => self.done.recv().map_err(|_| TryRecvError::Disconnected),
            Some(d) if d.is_zero() => self.done.try_recv(),
            Some(d) => self.done.recv_timeout(d).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => TryRecvError::Empty,
                mpsc::RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            }),
        };
        match got {
            Ok(done) => Waited::Done(Box::new(done)),
            Err(TryRecvError::Empty) => Waited::Running,
            Err(TryRecvError::Disconnected) => Waited::Lost,
        }
    }

    /// The status line: what, where, a spinner and the seconds elapsed.
    pub(super) fn status(&self) -> String {
        const SPIN: [char; 4] = ['|', '/', '-', '\\'];
        let elapsed = self.started.elapsed();
        let frame = usize::try_from(elapsed.as_millis() / 250).unwrap_or(0) % SPIN.len();
        match self.kind {
            JobKind::Token => format!(
                "working: {} on {} {} {} s. The screen stays live; other keys wait until it ends (? help, Ctrl-C stops).",
                self.what,
                self.on,
                SPIN[frame],
                elapsed.as_secs()
            ),
            JobKind::Record => format!(
                "recording: {} in {} {} {} s. Other keys are ignored until it is on disk (? help, Ctrl-C stops).",
                self.what,
                self.on,
                SPIN[frame],
                elapsed.as_secs()
            ),
            JobKind::Read => format!(
                "reading: {} from {} {} {} s. Other keys are ignored until it is read (? help, Ctrl-C stops).",
                self.what,
                self.on,
                SPIN[frame],
                elapsed.as_secs()
            ),
        }
    }
}

/// Start `work` on `phase` on a worker thread. A [`JobKind::Token`] job holds `gate` while the
/// work runs (the token poller waits meanwhile, [`super::poller`]); a [`JobKind::Record`] or
/// [`JobKind::Read`] job does not. When no thread can be started, the work runs here (blocking, as before) and its
/// result is returned at once.
pub(super) fn start(
    (kind, what, on): (JobKind, String, String),
    view: ViewState,
    phase: Phase,
    work: Work,
    gate: TokenGate,
) -> Result<Job, Box<JobDone>> {
    let (tx, rx) = mpsc::channel();
    // The ceremony and the work wait here for the thread; a thread that cannot start leaves
    // them to this thread.
    let handed = Arc::new(Mutex::new(Some((phase, work))));
    let theirs = Arc::clone(&handed);
    let here = gate.clone();
    let spawned = std::thread::Builder::new()
        .name("conclave-token".into())
        .spawn(move || {
            let taken = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some((phase, work)) = taken {
                let done = {
                    let _held = (kind == JobKind::Token).then(|| gate.hold());
                    run(phase, work)
                };
                // The UI may have ended (Ctrl-C while the token worked): nobody to tell.
                let _ = tx.send(done);
            }
        });
    match spawned {
        Ok(_) => Ok(Job {
            kind,
            what,
            on,
            started: Instant::now(),
            view,
            done: rx,
        }),
        Err(_) => {
            let taken = handed.lock().unwrap_or_else(PoisonError::into_inner).take();
            match taken {
                Some((phase, work)) => {
                    let _held = (kind == JobKind::Token).then(|| here.hold());
                    Err(Box::new(run(phase, work)))
                }
                // The thread took them after all: wait for its answer.
                None => Ok(Job {
                    kind,
                    what,
                    on,
                    started: Instant::now(),
                    view,
                    done: rx,
                }),
            }
        }
    }
}

/// Run `work` on `phase`; a panic becomes a result that ends the UI.
fn run(mut phase: Phase, work: Work) -> JobDone {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut phase)));
    let apply = match outcome {
        Ok(apply) => apply,
        Err(_) => Box::new(|app: &mut App| app.job_lost()) as Apply,
    };
    JobDone { phase, apply }
}
