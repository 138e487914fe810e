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

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::driver::TokenLookup;
use crate::signer::pkcs11::TokenDesc;
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

/// A question and what looks it up.
pub(super) struct Request {
    pub(super) id: u64,
    pub(super) question: Question,
    pub(super) lookup: TokenLookup,
}

impl Request {
    /// Ask the tokens (on the poller thread, or here when no thread could be started).
    pub(super) fn answer(self) -> Polled {
        let Request {
            id,
            question,
            lookup,
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

/// The poller thread, as the UI sees it.
pub(super) struct Poller {
    requests: Sender<Request>,
    answers: Receiver<Polled>,
    /// The newest request not answered yet, and when it was sent.
    pub(super) waiting: Option<(u64, Instant)>,
}

/// How waiting for an answer ended.
pub(super) enum Answer {
    /// An answer (maybe to an older request).
    Got(Box<Polled>),
    /// None within the wait.
    None,
    /// The poller thread is gone.
    Gone,
}

impl Poller {
    /// Start the poller thread; `None` when no thread can be started.
    pub(super) fn start(gate: TokenGate) -> Option<Poller> {
        let (req_tx, req_rx) = mpsc::channel::<Request>();
        let (ans_tx, ans_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("conclave-poll".into())
            .spawn(move || poll_loop(&req_rx, &ans_tx, &gate))
            .ok()?;
        Some(Poller {
            requests: req_tx,
            answers: ans_rx,
            waiting: None,
        })
    }

    /// Send a request; `Err` gives it back when the thread is gone.
    pub(super) fn ask(&mut self, request: Request) -> Result<(), Box<Request>> {
        let id = request.id;
        match self.requests.send(request) {
            Ok(()) => {
                self.waiting = Some((id, Instant::now()));
                Ok(())
            }
            Err(mpsc::SendError(request)) => Err(Box::new(request)),
        }
    }

    /// An answer if one came, waiting up to `wait` (`None`: until one comes).
    pub(super) fn answer(&mut self, wait: Option<Duration>) -> Answer {
        let got = match wait {
            None => self.answers.recv().map_err(|_| TryRecvError::Disconnected),
            Some(d) if d.is_zero() => self.answers.try_recv(),
            Some(d) => self.answers.recv_timeout(d).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => TryRecvError::Empty,
                mpsc::RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            }),
        };
        match got {
            Ok(polled) => {
                if self.waiting.is_some_and(|(id, _)| id <= polled.id) {
                    self.waiting = None;
                }
                Answer::Got(Box::new(polled))
            }
            Err(TryRecvError::Empty) => Answer::None,
            Err(TryRecvError::Disconnected) => {
                self.waiting = None;
                Answer::Gone
            }
        }
    }
}

/// The poller thread: answer the newest request waiting, holding the token gate, until the UI
/// goes away. A lookup that panics (a module misbehaving) answers "cannot be listed".
fn poll_loop(requests: &Receiver<Request>, answers: &Sender<Polled>, gate: &TokenGate) {
    while let Ok(mut request) = requests.recv() {
        // Only the newest question matters: older ones would be stale on arrival.
        while let Ok(newer) = requests.try_recv() {
            request = newer;
        }
        let (id, question) = (request.id, request.question.clone());
        let polled = {
            let _held = gate.hold();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| request.answer()))
        }
        .unwrap_or_else(|_| Polled {
            id,
            question,
            tokens: Err("the tokens could not be listed (internal error while asking them)".into()),
            signing: None,
            sealing: None,
        });
        if answers.send(polled).is_err() {
            return;
        }
    }
}
