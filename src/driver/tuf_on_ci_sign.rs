//! `conclave tuf-on-ci review`, `sign` and `accept` on the offline side: the event's and the
//! known-good `metadata/` folders read ([`read_metadata_folder`]), reviewed by tuf-on-ci's CI
//! rules ([`crate::tuf::tuf_on_ci`]), every refusal decided before any PIN, then the token
//! signs ([`sign_event_roles`]) and the bundles or the edited folder are written into a new
//! folder. The command line renders what they return.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::clock::Clock;
use super::error::DriverError;
use super::sign_commands::{KeyChoice, RoleCount, sign_event_roles};
use super::signing_key::{Keyholder, SigningError};
use super::token_device::TokenModule;
use super::tuf_on_ci::{
    read_metadata_folder, refuse_existing_output, write_bundles, write_metadata_folder,
};
use crate::text::show;
use crate::tuf::key::Key;
use crate::tuf::tuf_on_ci::{self as core, MetadataFolder, Review};

/// A folder reader's or writer's error as a signing command's: a refused input is invalid
/// (exit 1), anything else an I/O error.
fn from_driver(e: DriverError) -> SigningError {
    match e {
        DriverError::Refused(m) => SigningError::Invalid(m),
        other => SigningError::Io(other.to_string()),
    }
}

/// The event's and the known-good `metadata/` folders (each the folder or the checkout holding
/// it), and the reference time of the expiry rule.
#[derive(Debug, Clone, Copy)]
pub struct EventFolders<'a> {
    /// The signing event's `metadata/` (`--event`).
    pub event: &'a Path,
    /// The known-good `metadata/` (`--known-good`).
    pub known_good: &'a Path,
    /// The reference time for the expiry rule.
    pub now: OffsetDateTime,
}

impl EventFolders<'_> {
    fn read(&self) -> Result<(MetadataFolder, MetadataFolder), SigningError> {
        Ok((
            read_metadata_folder(self.event, "the signing event's metadata (--event)")
                .map_err(from_driver)?,
            read_metadata_folder(self.known_good, "the known-good metadata (--known-good)")
                .map_err(from_driver)?,
        ))
    }
}

/// `conclave tuf-on-ci review`: the folders read and the event reviewed against the known-good
/// state (the review carries its failures; it is not an error to break a rule).
pub fn review_tuf_on_ci_event(f: &EventFolders<'_>) -> Result<Review, SigningError> {
    let (event, known_good) = f.read()?;
    core::review_event(&event, &known_good, f.now).map_err(|e| SigningError::Invalid(e.to_string()))
}

/// A signing event signed by [`sign_tuf_on_ci_event`].
pub struct EventSigned {
    /// The review the signatures follow.
    pub review: Review,
    /// Each signed role's threshold count with the new signature.
    pub counts: Vec<RoleCount>,
    /// The bundle files written.
    pub written: Vec<PathBuf>,
}

/// `conclave tuf-on-ci sign`: the event reviewed; one that breaks a rule or changes no role is
/// refused, and so is an existing `out`, before the module is loaded; the key (no PIN yet) must
/// be able to sign a changed role; then PIN, one signature per role and key id
/// ([`sign_event_roles`]), and one bundle each (made at the clock's time) written into the new
/// folder `out`.
pub fn sign_tuf_on_ci_event(
    f: &EventFolders<'_>,
    key: &KeyChoice<'_>,
    out: &Path,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
    clock: &dyn Clock,
) -> Result<EventSigned, SigningError> {
    let r = review_tuf_on_ci_event(f)?;
    if !r.failures.is_empty() {
        return Err(SigningError::Invalid(format!(
            "{}\nrefusing to sign: the event breaks {} of tuf-on-ci's CI rules (no PIN was asked)",
            r.text.trim_end(),
            r.failures.len()
        )));
    }
    if r.changed.is_empty() {
        return Err(SigningError::Invalid(format!(
            "{}\nnothing to sign: the event changes no role",
            r.text.trim_end()
        )));
    }
    refuse_existing_output(out).map_err(|e| SigningError::Usage(format!("--out {e}")))?;
    let k = key.open(load, kh, "sign the tuf-on-ci signing event")?;
    let token = k.token.clone();
    let plan = r.slots_for(&k.public.material());
    if plan.is_empty() {
        return Err(SigningError::Invalid(format!(
            "{}\nkey \"{}\" on {token} may sign none of the changed roles ({}); no PIN was asked",
            r.text.trim_end(),
            show(&k.key.label),
            r.changed
                .iter()
                .map(|c| show(&c.name))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let (signed, counts) = sign_event_roles(k, key.keyholder, kh, &r, &plan)?;
    let bundles = r
        .bundles(&signed, Some(&token.serial), clock.now())
        .map_err(SigningError::Invalid)?;
    let written = write_bundles(out, &bundles).map_err(from_driver)?;
    Ok(EventSigned {
        review: r,
        counts,
        written,
    })
}

/// An invite accepted by [`accept_tuf_on_ci_invite`].
pub struct InviteAccepted {
    /// The keyholder as written into the key (`@handle`, lower case).
    pub user: String,
    /// One line per change of the edit.
    pub lines: Vec<String>,
    /// The review of the edited event.
    pub review: Review,
    /// The threshold counts of the roles signed; `None`: not signed, other invites are open.
    pub counts: Option<Vec<RoleCount>>,
}

/// The GitHub handle as tuf-on-ci writes a key's owner: lower case, with its `@`.
pub fn tuf_on_ci_user(handle: &str) -> String {
    let mut user = handle.to_lowercase();
    if !user.starts_with('@') {
        user.insert(0, '@');
    }
    user
}

/// `conclave tuf-on-ci accept`: the folders read and an existing `out` refused before the
/// module is loaded; the key's public key (no PIN) joins the roles `handle` was invited to
/// ([`core::accept_invites`]); the edited event must break no rule but open invites of
/// others; when none is left open, the key signs what it may (PIN, [`sign_event_roles`]); the
/// whole edited `metadata/` is written to the new folder `out`.
pub fn accept_tuf_on_ci_invite(
    f: &EventFolders<'_>,
    key: &KeyChoice<'_>,
    handle: &str,
    out: &Path,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
) -> Result<InviteAccepted, SigningError> {
    let (event, known_good) = f.read()?;
    let user = tuf_on_ci_user(handle);
    refuse_existing_output(out).map_err(|e| SigningError::Usage(format!("--out {e}")))?;
    let key = KeyChoice {
        keyholder: Some(&user),
        ..*key
    };
    let k = key.open(load, kh, "accept the tuf-on-ci invite")?;
    let public = Key::from_public_key(&k.public);
    let accepted = core::accept_invites(&event, &known_good, &user, &public, f.now)
        .map_err(|e| SigningError::Invalid(e.to_string()))?;
    let r = core::review_event_with(&accepted.event, &known_good, f.now, &accepted.role_files)
        .map_err(|e| SigningError::Invalid(e.to_string()))?;
    if !r.breaks_only_open_invites() {
        let mut text = String::new();
        for l in &accepted.lines {
            text.push_str(l);
            text.push('\n');
        }
        text.push_str(&r.text);
        return Err(SigningError::Invalid(format!(
            "{}\nrefusing: the edited event breaks tuf-on-ci's CI rules (no PIN was asked)",
            text.trim_end()
        )));
    }
    let mut edited = accepted.event.clone();
    let mut counts = None;
    if r.failures.is_empty() {
        let plan = r.slots_for(&k.public.material());
        let (signed, c) = sign_event_roles(k, Some(&user), kh, &r, &plan)?;
        edited = r
            .with_signatures(&edited, &signed)
            .map_err(SigningError::Invalid)?;
        counts = Some(c);
    }
    write_metadata_folder(out, &edited).map_err(from_driver)?;
    Ok(InviteAccepted {
        user,
        lines: accepted.lines,
        review: r,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tuf-on-ci writes a key's owner as the GitHub handle in lower case with its `@`.
    #[test]
    fn a_handle_becomes_tuf_on_cis_owner_field() {
        assert_eq!(tuf_on_ci_user("Alice"), "@alice");
        assert_eq!(tuf_on_ci_user("@Bob"), "@bob");
    }

    /// A folder that cannot be read is refused before the module is loaded (no token touched),
    /// naming which folder.
    #[test]
    fn unreadable_folders_are_refused_before_the_module_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let f = EventFolders {
            event: &dir.path().join("no-event"),
            known_good: dir.path(),
            now: OffsetDateTime::UNIX_EPOCH,
        };
        let mut loads = 0;
        let mut load = || -> Result<Box<dyn TokenModule>, SigningError> {
            loads += 1;
            Err(SigningError::Usage("not loaded in this test".into()))
        };
        let key = KeyChoice {
            token: None,
            key: "k",
            keyholder: None,
        };
        let mut kh = crate::driver::fake_tokens::Answering::new("unused");
        let out = dir.path().join("out");
        let Err(e) = sign_tuf_on_ci_event(
            &f,
            &key,
            &out,
            &mut load,
            &mut kh,
            &crate::driver::FixedClock(OffsetDateTime::UNIX_EPOCH),
        ) else {
            panic!("signed without an event");
        };
        assert!(e.to_string().contains("--event"), "{e}");
        let Err(e) = accept_tuf_on_ci_invite(&f, &key, "@alice", &out, &mut load, &mut kh) else {
            panic!("accepted without an event");
        };
        assert!(e.to_string().contains("--event"), "{e}");
        assert_eq!(loads, 0);
        assert!(!out.exists());
    }
}
