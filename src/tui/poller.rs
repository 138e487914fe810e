//! Token polling off the UI thread. About once a second at the token steps the screen shows
//! which tokens are present and which one holds the key a keyholder signs with next; asking a
//! token can hang (a YubiHSM connector timing out, a PIN-pad reader, a TPM behind a stuck
//! resource manager), so the asking runs on a poller thread of its own and its answer comes
//! back as a message ([`super::app::Msg::Polled`]). Keys are handled meanwhile as always (a PIN
//! typed into an open prompt while a poll runs reaches it); the screen shows the last answer.
//! Only an action that names the present token right after the ceremony changed (a step, a
//! signature, a token job) waits for the next answer, saying so (Esc stops waiting).
//!
//! Each request carries the question it answers ([`Question`]: the state of the ceremony and
//! who is looked up for); an answer is applied only if the UI would ask the same question when
//! it arrives, so an answer given for a step the ceremony has left is dropped. The poller
//! answers only the newest request waiting (older ones would be stale on arrival).
//!
//! One thread reaches the token module at a time: the poller and the token worker
//! ([`super::worker`]) take the same [`TokenGate`] around their token calls. The module itself
//! may be called from several threads (initialised with `CKF_OS_LOCKING_OK`), but a token's
//! login state is shared by every session the application has with it (PKCS#11 v2.40): a
//! poll that logs in to look into a token showing its keys only after login (YubiHSM 2), or
//! a job that logs out to verify the PIN again before a signature (ykcs11's slot 9c), would
//! change what the other sees. A poll waiting for the gate waits on its own thread; a job
//! waiting for a poll shows its status ("working: ...") like any slow token.
//!
//! The machine is read the same way, on a second poller thread of its own (a hung medium
//! never holds up the tokens, nor a hung token the media): the air-gap check's sysfs reading
//! and the removable media mounted ([`Look`]), answered as [`super::app::Msg::Read`]. The UI
//! thread reads no file, no `/proc` and no `/sys`: the screen shows the last answer, or says
//! it is checking until the first one comes.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::driver::TokenLookup;
use crate::signer::pkcs11::TokenDesc;
use crate::system::AirgapReport;
use crate::transport::usb::{Medium, SystemView, find_media};
use crate::tuf::key::KeyId;

/// Held by the one thread that calls the token module (the poller or the token worker).
#[derive(Clone, Default)]
pub struct TokenGate(Arc<Mutex<()>>);

impl TokenGate {
    /// Wait until no other thread uses the tokens; they are this thread's until the guard
    /// drops.
    pub(super) fn hold(&self) -> MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a poll answers: the ceremony's state when it was asked and who is looked up for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Question {
    /// The engine's state ([`crate::ceremony::engine::Engine::revision`]).
    pub(super) revision: u64,
    /// At a signing step: the keyholder who signs next and the key they sign with.
    pub(super) signing: Option<(String, KeyId)>,
    /// At the seal: the keyholder who signs it next.
    pub(super) sealing: Option<String>,
    /// The plan's (and the room's) token for each keyholder.
    pub(super) named: std::collections::BTreeMap<String, String>,
}

/// A poll's answer.
pub struct Polled {
    /// The request's number (increasing for the life of the UI).
    pub(super) id: u64,
    /// The question it answers.
    pub(super) question: Question,
    /// The present tokens (or why they could not be listed).
    pub(super) tokens: Result<Vec<TokenDesc>, String>,
    /// At a signing step: the keyholder, the key, and the present token holding it.
    pub(super) signing: Option<(String, KeyId, Option<TokenDesc>)>,
    /// At the seal: the keyholder and the present token holding one of their keys.
    pub(super) sealing: Option<(String, Option<TokenDesc>)>,
}

impl std::fmt::Debug for Polled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Polled")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A request a poller thread answers: numbered, answered on the thread.
pub(super) trait Ask: Send + 'static {
    /// What answers it.
    type Answer: Send + 'static;
    /// The request's number (increasing for the life of the UI).
    fn id(&self) -> u64;
    /// The answer's request number.
    fn answered(answer: &Self::Answer) -> u64;
    /// Answer it (on the poller thread, or on the UI thread when no thread could be started).
    fn answer(self) -> Self::Answer;
}

/// A question and what looks it up.
pub(super) struct Request {
    pub(super) id: u64,
    pub(super) question: Question,
    pub(super) lookup: TokenLookup,
    /// Held while the tokens are asked.
    pub(super) gate: TokenGate,
}

impl Request {
    /// Ask the tokens.
    fn look_up(self) -> Polled {
        let Request {
            id,
            question,
            lookup,
            gate: _,
        } = self;
        let tokens = lookup.tokens().map_err(|e| e.to_string());
        let signing = question.signing.as_ref().and_then(|(who, keyid)| {
            lookup
                .token_holding(who, keyid)
                .ok()
                .map(|t| (who.clone(), keyid.clone(), t))
        });
        let sealing = question
            .sealing
            .as_ref()
            .map(|who| (who.clone(), lookup.sealing_token(who)));
        Polled {
            id,
            question,
            tokens,
            signing,
            sealing,
        }
    }
}

impl Ask for Request {
    type Answer = Polled;

    fn id(&self) -> u64 {
        self.id
    }

    fn answered(answer: &Polled) -> u64 {
        answer.id
    }

    /// Ask the tokens holding the token gate. A lookup that panics (a module misbehaving)
    /// answers "cannot be listed".
    fn answer(self) -> Polled {
        let (id, question, gate) = (self.id, self.question.clone(), self.gate.clone());
        let _held = gate.hold();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.look_up())).unwrap_or_else(
            |_| Polled {
                id,
                question,
                tokens: Err(
                    "the tokens could not be listed (internal error while asking them)".into(),
                ),
                signing: None,
                sealing: None,
            },
        )
    }
}

/// What the machine reader is asked (no token): what one screen shows of this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// The air-gap check at `step`, from the sysfs mounted at `sys`.
    Airgap {
        /// The step.
        step: String,
        /// The sysfs root.
        sys: PathBuf,
    },
    /// The removable media mounted (the workspace chooser, the export).
    Media,
}

/// A machine question and what reads the media (the running system, or a test's view of one).
pub(super) struct Reading {
    pub(super) id: u64,
    pub(super) look: Look,
    pub(super) system: Arc<dyn SystemView + Send + Sync>,
}

/// What the machine reader found.
#[derive(Debug)]
pub(super) enum Found {
    /// The air-gap check's reading.
    Airgap(AirgapReport),
    /// The removable media mounted (a medium that fails to be read is left out).
    Media(Vec<Medium>),
}

/// The machine reader's answer.
#[derive(Debug)]
pub struct Read {
    pub(super) id: u64,
    pub(super) look: Look,
    pub(super) found: Found,
}

impl Ask for Reading {
    type Answer = Read;

    fn id(&self) -> u64 {
        self.id
    }

    fn answered(answer: &Read) -> u64 {
        answer.id
    }

    /// Read sysfs or the mounts (no token, no gate). A read that panics answers nothing found
    /// for the media and an unreadable sysfs for the air gap (never "air-gapped").
    fn answer(self) -> Read {
        let Reading { id, look, system } = self;
        let asked = look.clone();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &asked {
            Look::Airgap { sys, .. } => Found::Airgap(crate::system::airgap_check(sys)),
            Look::Media => Found::Media(find_media(&*system).unwrap_or_default()),
        }))
        .unwrap_or_else(|_| match &look {
            Look::Airgap { sys, .. } => Found::Airgap(AirgapReport {
                interfaces: vec![format!(
                    "(cannot read {}: interfaces unknown)",
                    sys.display()
                )],
                radios: Vec::new(),
            }),
            Look::Media => Found::Media(Vec::new()),
        });
        Read { id, look, found }
    }
}

/// A poller thread, as the UI sees it.
pub(super) struct Poller<R: Ask> {
    requests: Sender<R>,
    answers: Receiver<R::Answer>,
    /// The newest request not answered yet, and when it was sent.
    pub(super) waiting: Option<(u64, Instant)>,
}

/// How waiting for an answer ended.
pub(super) enum Answer<A> {
    /// An answer (maybe to an older request).
    Got(Box<A>),
    /// None within the wait.
    None,
    /// The poller thread is gone.
    Gone,
}

impl<R: Ask> Poller<R> {
    /// Start a poller thread named `name`; `None` when no thread can be started.
    pub(super) fn start(name: &str) -> Option<Poller<R>> {
        let (req_tx, req_rx) = mpsc::channel::<R>();
        let (ans_tx, ans_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || poll_loop(&req_rx, &ans_tx))
            .ok()?;
        Some(Poller {
            requests: req_tx,
            answers: ans_rx,
            waiting: None,
        })
    }

    /// Send a request; `Err` gives it back when the thread is gone.
    pub(super) fn ask(&mut self, request: R) -> Result<(), Box<R>> {
        let id = request.id();
        match self.requests.send(request) {
            Ok(()) => {
                self.waiting = Some((id, Instant::now()));
                Ok(())
            }
            Err(mpsc::SendError(request)) => Err(Box::new(request)),
        }
    }

    /// An answer if one came, waiting up to `wait` (`None`: until one comes).
    pub(super) fn answer(&mut self, wait: Option<Duration>) -> Answer<R::Answer> {
        let got = match wait {
            None => self.answers.recv().map_err(|_| TryRecvError::Disconnected),
            Some(d) if d.is_zero() => self.answers.try_recv(),
            Some(d) => self.answers.recv_timeout(d).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => TryRecvError::Empty,
                mpsc::RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            }),
        };
        match got {
            Ok(answer) => {
                if self
                    .waiting
                    .is_some_and(|(id, _)| id <= R::answered(&answer))
                {
                    self.waiting = None;
                }
                Answer::Got(Box::new(answer))
            }
            Err(TryRecvError::Empty) => Answer::None,
            Err(TryRecvError::Disconnected) => {
                self.waiting = None;
                Answer::Gone
            }
        }
    }
}

/// A poller thread: answer the newest request waiting until the UI goes away.
fn poll_loop<R: Ask>(requests: &Receiver<R>, answers: &Sender<R::Answer>) {
    while let Ok(mut request) = requests.recv() {
        // Only the newest question matters: older ones would be stale on arrival.
        while let Ok(newer) = requests.try_recv() {
            request = newer;
        }
        if answers.send(request.answer()).is_err() {
            return;
        }
    }
}
