//! The ceremony driver: the one owner of an open ceremony, outside the pure core. It holds the
//! workspace, the transcript file, the engine, the tokens, the clock, the inputs, the export
//! and the key-event log; the headless runner, `conclave ceremony run` and the terminal UI all
//! drive a ceremony through its [`Session`]. Every decision is the engine's
//! ([`crate::ceremony::engine`]); this module does the I/O around it.
//!
//! A practice run (`conclave rehearse`) uses SoftHSM2 practice tokens for three keyholders in
//! the workspace and stand-in online keys; killed at any point, the same command continues from
//! the transcript.

mod answers;
pub mod audit_files;
mod bundles;
pub mod checks;
mod clock;
mod error;
mod events;
mod export;
#[cfg(test)]
pub mod fake_tokens;
mod inputs;
mod lock;
pub mod log_dir;
mod log_step;
mod lookup;
pub mod module;
pub mod pipeline_inputs;
mod plan;
mod practice;
mod report;
mod rstuf;
mod runner;
mod scripts;
mod seal;
mod session;
mod sign_commands;
mod sign_metadata;
mod signing_key;
mod token_device;
mod token_store;
mod token_work;
mod tokens;
pub mod transcript_file;
mod tuf_on_ci;
mod tuf_on_ci_sign;
mod workspace;

pub use answers::{
    AnswerPeople, Answers, AnswersError, Secrets, piv_slots, read_answers, read_pins,
};
pub use bundles::{BundleExported, Merged, export_bundle, merge_bundles};
pub use checks::{Check, CheckKind, check};
pub use clock::{Clock, FixedClock, SystemClock, timestamp};
pub use error::{CONTINUES_FROM_DISK, DriverError, NotRecorded, record_name};
pub use lock::{LOCK_FILE, WorkspaceLock};
pub use lookup::TokenLookup;
pub use plan::{Plan, Start};
pub use practice::{
    ChildExit, PRACTICE_CHILD, PRACTICE_KEYHOLDERS, PRACTICE_LOG_ORIGIN, PracticeRequest,
    PracticeSetup, PracticeToken, PracticeTokenError, REHEARSE_CHILD, die_with_parent,
    in_softhsm_child, init_practice, init_practice_tokens, random_digits, run_softhsm_child,
};
pub use report::{CeremonyReport, KeyLog, KeyRow};
pub use runner::{run, run_real};
pub use scripts::{
    MAX_SCRIPT, NamedScript, SHIPPED_SCRIPTS, ScriptFileError, ScriptOrigin, find_script,
    script_list, shipped_script,
};
pub use session::{Opened, Session, rehearsal_unfinished};
pub use sign_commands::{
    CheckpointSigned, KeyChoice, LayoutSignRequest, LayoutSigned, PendingRootSigned, RoleCount,
    RstufSignRequest, sign_checkpoint, sign_event_roles, sign_intoto_layout, sign_layout,
    sign_log_checkpoint, sign_pending_root, sign_rstuf_pending,
};
pub use sign_metadata::{SignRequest, SignedFile, TokenSignature, sign_file, sign_with_token};
pub use signing_key::{
    Ask, HeldSigner, Keyholder, SigningError, SigningKey, ask_pin, note_advisories,
    open_key_or_login,
};
pub use token_device::{Located, OpenToken, TokenModule, TokenSigner, locate_key};
pub use token_work::{
    BenchReport, KeygenReport, KeygenRequest, ListedKey, ListedToken, RootKey, TokenListing,
    TrustedKeys, bench, keygen, list_tokens, trusted_root_keys,
};
pub use tuf_on_ci::{
    AppliedEvent, apply_event_signatures, metadata_dir, no_rehearsal, read_metadata_folder,
    refuse_existing_output, write_bundles, write_metadata_folder,
};
pub use tuf_on_ci_sign::{
    EventFolders, EventSigned, InviteAccepted, accept_tuf_on_ci_invite, review_tuf_on_ci_event,
    sign_tuf_on_ci_event, tuf_on_ci_user,
};
pub use workspace::{Workspace, prepare, rehearsal_workspace};
