//! One event maker per need: what the machine, the media and the tokens answer.

use std::path::Path;

use zeroize::Zeroizing;

use crate::ceremony::engine::{ClockConfirmation, Event, Need, parse_reference_time};
use crate::signer::pkcs11::{EdParams, PivSlot, TokenDesc, parse_key_type};
use crate::transcript::record::Timestamp;
use crate::transport::usb::{ExportFile, ExportOptions, ExportReport, StdFs, export_files};
use crate::tuf::key::KeyId;

use super::error::{DriverError, io, signer_error, token_error};
use super::inputs::{current_metadata, key_requests, practice_layout, publish_targets};
use super::session::Session;
use super::token_device::{OpenToken, TokenSigner};
use super::tokens::{
    ceremony_signer, holds_recorded_key, key_label, keyholder_token, keyholder_token_among,
    login_to, management_key_for, pin_for, recorded_owner, sealing_token, token_holding,
    token_signer_for,
};

impl Session {
    /// The air-gap self-check of this machine, as the event that records it (reads sysfs).
    pub fn airgap_event(&self) -> Event {
        self.airgap_event_of(crate::system::airgap_check(&self.sys))
    }

    /// The event that records the air-gap reading `r` at the current step (the terminal UI
    /// reads sysfs on a thread of its own and records what its screen showed).
    pub fn airgap_event_of(&self, r: crate::system::AirgapReport) -> Event {
        Event::AirgapChecked {
            step: self.step(),
            interfaces: r.interfaces,
            radios: r.radios,
        }
    }

    /// The root of the sysfs the air-gap check reads (normally `/sys`).
    pub fn sysfs(&self) -> &Path {
        &self.sys
    }

    /// The machine time, as the transcript records it (RFC 3339 UTC).
    pub fn machine_time(&self) -> String {
        self.stamp().to_string()
    }

    /// The clock confirmation event for the machine time, confirmed against `reference` (the
    /// time a reference clock shows, typed `YYYY-MM-DD HH:MM` UTC). Without a reference only a
    /// practice run confirms, and records that it did; the engine refuses a machine clock
    /// further than [`crate::ceremony::engine::CLOCK_TOLERANCE_SECONDS`] from the reference.
    pub fn clock_event(&self, reference: Option<&str>) -> Result<Event, DriverError> {
        let now = self.stamp();
        let confirmation = match reference {
            Some(text) => {
                let r = parse_reference_time(text)
                    .map_err(|e| DriverError::Refused(format!("reference time: {e}")))?;
                let r = Timestamp::from_datetime(r).ok_or_else(|| {
                    DriverError::Refused("reference time: out of range".to_string())
                })?;
                ClockConfirmation::Reference {
                    reference: r.to_string(),
                    difference_seconds: (now.to_datetime() - r.to_datetime()).whole_seconds(),
                }
            }
            None if self.plan.practice => ClockConfirmation::Practice,
            None => {
                return Err(DriverError::Refused(
                    "the clock is confirmed against a reference time (a phone or radio clock): none was given"
                        .into(),
                ));
            }
        };
        Ok(Event::ClockConfirmed {
            step: self.step(),
            time: now.to_string(),
            confirmation: Some(confirmation),
        })
    }

    /// Load the current metadata (root chain verified from the first root) from the media.
    pub fn load_metadata_event(&self) -> Result<Event, DriverError> {
        let (root, targets) = current_metadata(&self.ws, self.clock(), self.engine.rstuf())?;
        Ok(Event::MetadataLoaded {
            step: self.step(),
            root,
            targets,
            not_before: super::export::previous_transcript_time(&[
                self.ws.export(),
                self.ws.input(),
            ]),
        })
    }

    /// Import developers' key requests from the input media.
    pub fn import_requests_event(&self) -> Result<Event, DriverError> {
        let (requests, sources) = key_requests(&self.ws, self.practice_tokens)?
            .into_iter()
            .unzip();
        Ok(Event::RequestsImported {
            step: self.step(),
            requests,
            sources,
        })
    }

    /// Import the target files to publish (manifest and files) from the input media.
    pub fn import_targets_event(&self) -> Result<Event, DriverError> {
        let (manifest, files) = publish_targets(
            &self.ws,
            self.practice_tokens,
            crate::ceremony::publish::max_target_bytes(
                self.engine
                    .int_parameter(crate::ceremony::publish::MAX_TARGET_BYTES),
            ),
        )?;
        Ok(Event::TargetsImported {
            step: self.step(),
            manifest,
            files,
        })
    }

    /// Import the in-toto layout `file` from the input media (`input/FILE`); a practice run
    /// makes a stand-in layout (one step, one software functionary key) when there is none.
    pub fn import_layout_event(&self, file: &str) -> Result<Event, DriverError> {
        let path = self.ws.input().join(file);
        if !path.exists() && self.practice_tokens {
            crate::folder::create_dir_all_mode(&self.ws.input(), crate::folder::DIR_MODE)
                .map_err(io(self.ws.input().display()))?;
            crate::folder::write_new_file(&path, practice_layout(self.clock())?.as_bytes())
                .map_err(io(path.display()))?;
        }
        let bytes = crate::folder::read_limited(&path, 4 * 1024 * 1024).map_err(|e| {
            DriverError::Refused(format!("the in-toto layout on the input media: {e}"))
        })?;
        let file = String::from_utf8(bytes)
            .map_err(|_| DriverError::Refused(format!("{}: not UTF-8 JSON", path.display())))?;
        Ok(Event::LayoutImported {
            step: self.step(),
            file,
        })
    }

    /// Import the online public keys from the input media.
    pub fn import_keys_event(&self) -> Event {
        Event::KeysImported {
            step: self.step(),
            keys: self.online.clone(),
        }
    }

    /// The online keys on the input media as the room reads them aloud before they are
    /// recorded: (role, "key id HEX" or "NOT USABLE: why"), parsed once when they were read.
    pub fn online_key_ids(&self) -> &[(String, String)] {
        &self.online_ids
    }

    /// The proposal event (digests of what is to be signed).
    pub fn propose_event(&self) -> Result<Event, DriverError> {
        Ok(Event::Proposed {
            step: self.step(),
            digests: self
                .engine
                .proposal()
                .map_err(|e| DriverError::Refused(e.to_string()))?
                .digests(),
        })
    }

    /// The present token `keyholder`'s key is generated in: the one the plan (or the room's
    /// assignment) names by label or serial, default the token labelled with their name; an
    /// error when none or several present tokens answer to that name.
    pub fn keyholder_token(&self, keyholder: &str) -> Result<TokenDesc, DriverError> {
        keyholder_token(self.tokens.as_ref(), keyholder, &self.plan)
    }

    /// [`Session::keyholder_token`] among the tokens `present` (listed earlier, e.g. by the
    /// terminal UI's token poller): no token is asked.
    pub fn keyholder_token_among(
        &self,
        keyholder: &str,
        present: &[TokenDesc],
    ) -> Result<TokenDesc, DriverError> {
        keyholder_token_among(present, &self.tokens.name(), keyholder, &self.plan)
    }

    /// The token a keyholder is expected to use (label or serial), as the plan names it.
    pub fn expected_token(&self, keyholder: &str) -> String {
        self.plan
            .tokens
            .get(keyholder)
            .cloned()
            .unwrap_or_else(|| keyholder.to_string())
    }

    /// Generate a new key in the keyholder's token: never an existing one, unless the script's
    /// step says `existing = "use"` (then the key under the ceremony's label is taken and
    /// recorded as existing). The device's firmware advisories are recorded with the key, and a
    /// key type an advisory concerns is refused on that device. On a YubiKey through ykcs11 the
    /// key goes into the plan's PIV slot (default 9c) after a management-key login, and the slot
    /// is recorded with the key.
    /// `pin`: the PIN typed for this operation, else the plan's or asked on the terminal;
    /// `management_key` likewise (a YubiKey only).
    pub fn generate_key_event(
        &self,
        keyholder: &str,
        key_type: &str,
        pin: Option<&Zeroizing<String>>,
        management_key: Option<&Zeroizing<String>>,
    ) -> Result<Event, DriverError> {
        let alg = parse_key_type(key_type)
            .ok_or_else(|| DriverError::Refused(format!("unknown key type {key_type}")))?;
        let token = keyholder_token(self.tokens.as_ref(), keyholder, &self.plan)?;
        // Before any PIN: another keyholder's token (all YubiHSMs are labelled alike) never
        // gets this keyholder's PIN.
        if let Some(owner) = self.token_owner(&token)
            && owner != keyholder
        {
            return Err(DriverError::Refused(format!(
                "token {token} is {owner}'s token (it holds {owner}'s key, or the plan names it for {owner}); {keyholder}'s own token is expected"
            )));
        }
        if token.is_piv() {
            return self.generate_piv_key_event(keyholder, alg, &token, pin, management_key);
        }
        // Before the PIN is asked or sent.
        token
            .refuse_affected(alg)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let session = login_to(self.tokens.as_ref(), &token, keyholder, &self.plan, pin)?;
        let base = key_label(&self.script_name);
        // Objects an interrupted generation of this ceremony left (a pair made but not
        // recorded, or one half of a pair): removed before a new key is made, and recorded.
        let prefix = self.key_id_prefix()?;
        self.remove_leftover_keys(session.as_ref(), keyholder, &prefix)?;
        let keys = session
            .keys()
            .map_err(token_error(format!("keys of {keyholder}")))?;
        let existing = self
            .step_uses_existing()
            .then(|| keys.iter().find(|k| k.label == base).cloned())
            .flatten();
        let key = match existing.clone() {
            Some(tkey) => self_tested(session, &tkey, keyholder)?,
            None => {
                // A label no key on the token has: the ceremony's, numbered if taken.
                let label = (1..)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            format!("{base}-{n}")
                        }
                    })
                    .find(|l| !keys.iter().any(|k| &k.label == l))
                    .unwrap_or(base);
                // The id starts with the ceremony's prefix: a pair this ceremony made is told
                // from any other key on the token.
                let mut id = prefix.to_vec();
                let mut tail = [0u8; 8];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tail);
                id.extend_from_slice(&tail);
                session
                    .generate(alg, &label, Some(id), EdParams::Auto)
                    .map_err(token_error(format!("generating the key of {keyholder}")))?
                    .key
            }
        };
        Ok(self.key_generated(keyholder, &token, key, existing.is_some(), None))
    }

    /// [`Session::generate_key_event`] on a YubiKey through ykcs11: the key goes into the plan's
    /// PIV slot for the keyholder. An occupied slot is refused (naming what is in it) before
    /// any secret is asked; the factory-default management key is refused in a real ceremony
    /// and recorded as an exception in a practice one; a wrong management key is
    /// [`DriverError::WrongManagementKey`] and nothing is generated.
    fn generate_piv_key_event(
        &self,
        keyholder: &str,
        alg: crate::tuf::key::Algorithm,
        token: &TokenDesc,
        pin: Option<&Zeroizing<String>>,
        management_key: Option<&Zeroizing<String>>,
    ) -> Result<Event, DriverError> {
        token
            .refuse_affected(alg)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let slot = self.plan.piv_slot_for(keyholder);
        let ctx = format!("the token of {keyholder}");
        let session = self.tokens.open(token, true).map_err(token_error(&ctx))?;
        session.check_not_locked().map_err(token_error(&ctx))?;
        if self.step_uses_existing() {
            // The key already in the slot, taken only after its self-test.
            let pin = pin_for(token, keyholder, &self.plan, pin)?;
            session
                .login(&pin)
                .map_err(token_error(format!("login to the token of {keyholder}")))?;
            let tkey = session
                .keys()
                .map_err(token_error(format!("keys of {keyholder}")))?
                .into_iter()
                .find(|k| k.id.first() == Some(&slot.key_id()))
                .ok_or_else(|| {
                    DriverError::Refused(format!(
                        "the script takes the existing key of {keyholder}, but PIV slot {slot} of {token} holds none"
                    ))
                })?;
            let key = self_tested(session, &tkey, keyholder)?;
            return Ok(self.key_generated(keyholder, token, key, true, Some(slot)));
        }
        // Before any PIN or management key is asked: PIV key generation would replace the key.
        session.check_piv_slot_free(slot).map_err(|e| {
            DriverError::Refused(format!(
                "{ctx}: {e}; generate {keyholder}'s key in a free slot (conclave ceremony run: [piv_slots] {keyholder} = \"9d\" in the answers file, or piv_slot = \"9d\" for every keyholder; conclave tui --piv-slot 9d) or clear the slot with the YubiKey's own tools after checking what the key is"
            ))
        })?;
        let pin = pin_for(token, keyholder, &self.plan, pin)?;
        let mk = management_key_for(token, keyholder, &self.plan, management_key)?;
        let factory = mk
            .trim()
            .eq_ignore_ascii_case(crate::signer::pkcs11::PIV_FACTORY_MANAGEMENT_KEY);
        let generated = session
            .generate_piv(alg, slot, &mk, &pin, self.plan.practice)
            .map_err(token_error(format!(
                "generating the key of {keyholder} in PIV slot {slot}"
            )))?;
        drop(mk);
        if factory {
            // Only a practice ceremony gets here (a real one is refused above): recorded.
            self.note_exception(format!(
                "PRACTICE: {token} of {keyholder} still has the factory-default PIV management key; its key in PIV slot {slot} was generated with it (a real ceremony refuses it: change it with ykman piv access change-management-key)"
            ));
        }
        Ok(self.key_generated(keyholder, token, generated.key, false, Some(slot)))
    }

    /// Whether generating `keyholder`'s key asks for a PIV management key too: their token is
    /// present and is a YubiKey through ykcs11.
    pub fn generation_needs_management_key(&self, keyholder: &str) -> bool {
        !self.step_uses_existing()
            && keyholder_token(self.tokens.as_ref(), keyholder, &self.plan)
                .is_ok_and(|t| t.is_piv())
    }

    /// Whether the current step takes an existing key (`existing = "use"`).
    fn step_uses_existing(&self) -> bool {
        self.engine
            .current_step()
            .and_then(|id| self.engine.script().steps.iter().find(|s| s.id == id))
            .and_then(|s| s.with.get("existing"))
            .is_some_and(|v| v == "use")
    }

    /// The event recording a key in `token` (generated now, or `existing`).
    fn key_generated(
        &self,
        keyholder: &str,
        token: &TokenDesc,
        key: crate::tuf::key::Key,
        existing: bool,
        piv_slot: Option<PivSlot>,
    ) -> Event {
        Event::KeyGenerated {
            step: self.step(),
            keyholder: keyholder.to_string(),
            token_serial: token.serial.clone(),
            token: Some(token.identity()),
            advisories: token.advisories.iter().map(|a| a.to_string()).collect(),
            existing,
            piv_slot: piv_slot.map(|s| s.to_string()),
            key: key.to_value(),
        }
    }

    /// The first 8 bytes of the `CKA_ID` of every key this ceremony generates: SHA-256 of the
    /// transcript's first record (its `begin`), so they stay the same when it is resumed and
    /// differ from every other ceremony's.
    fn key_id_prefix(&self) -> Result<[u8; 8], DriverError> {
        use sha2::Digest;
        let bytes = std::fs::read(&self.tpath).map_err(io(self.tpath.display()))?;
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let digest = sha2::Sha256::digest([b"conclave key id ".as_slice(), first].concat());
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&digest[..8]);
        Ok(prefix)
    }

    /// Remove from the keyholder's token the objects this ceremony made (`CKA_ID` under its
    /// prefix) that belong to no key it recorded: a pair whose generation was cut short before
    /// it was recorded, or one half of a pair. Never touches another key. What was removed is
    /// recorded (an `exception` by Conclave) with the next event.
    fn remove_leftover_keys(
        &self,
        session: &dyn OpenToken,
        keyholder: &str,
        prefix: &[u8],
    ) -> Result<(), DriverError> {
        let recorded: Vec<KeyId> = self
            .engine
            .generated_keys()
            .iter()
            .map(|(_, _, k)| k.key_id())
            .collect();
        let keys = session
            .keys()
            .map_err(token_error(format!("keys of {keyholder}")))?;
        let objects = session
            .objects_with_id_prefix(prefix)
            .map_err(token_error(format!(
                "the objects on the token of {keyholder}"
            )))?;
        // A recorded key of this keyholder whose public object is not found: a private key
        // alone might be its, so none is removed.
        let recorded_missing = self
            .engine
            .generated_keys()
            .iter()
            .filter(|(who, _, _)| who == keyholder)
            .any(|(_, _, k)| {
                !keys
                    .iter()
                    .any(|t| t.tuf_key().is_some_and(|t| t.key_id() == k.key_id()))
            });
        let mut removed = Vec::new();
        let mut ids: Vec<&Vec<u8>> = objects.iter().map(|(id, _)| id).collect();
        ids.dedup();
        for id in ids {
            let kept = keys.iter().any(|k| {
                &k.id == id && k.tuf_key().is_some_and(|t| recorded.contains(&t.key_id()))
            });
            let has_public = keys.iter().any(|k| &k.id == id);
            if kept || (recorded_missing && !has_public) {
                continue;
            }
            session.destroy_id(id).map_err(token_error(format!(
                "removing a half-made key of {keyholder}"
            )))?;
            removed.extend(
                objects
                    .iter()
                    .filter(|(i, _)| i == id)
                    .map(|(_, what)| format!("{what} (CKA_ID {})", hex::encode(id))),
            );
        }
        if !removed.is_empty() {
            let text = format!(
                "removed from the token {} of {keyholder} what an interrupted key generation of \
                 this ceremony left, never recorded: {}",
                session.token(),
                removed.join(", ")
            );
            self.note_exception(text);
        }
        Ok(())
    }

    /// What the machine found while making the last event (half-made key objects it removed)
    /// and records with the next one: the texts, for the screen to report.
    pub fn pending_notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|e| match e {
                Event::Exception { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Record `text` as an exception by Conclave with the next event (what the machine found
    /// while making another event).
    fn note_exception(&self, text: String) {
        self.notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Event::Exception {
                step: self.step(),
                witness: crate::transcript::writer::SYSTEM_ACTOR.into(),
                text,
            });
    }

    /// The next key `who` has to sign with and the present token that holds it (`None`: not
    /// present), for the UI to check the token before asking for its PIN.
    pub fn next_signing_token(
        &self,
        who: &str,
    ) -> Result<Option<(KeyId, Option<TokenDesc>)>, DriverError> {
        let Some((keyid, _)) = self.engine.roles_left(who).into_iter().next() else {
            return Ok(None);
        };
        let token = token_holding(
            self.tokens.as_ref(),
            who,
            &self.plan,
            &self.engine,
            &self.earlier_keys,
            &keyid,
        )?;
        Ok(Some((keyid, token)))
    }

    /// One signature by `who`'s token over the next role they have left to sign.
    pub fn sign_event(
        &self,
        who: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<Event, DriverError> {
        let p = self
            .engine
            .proposal()
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let Some((keyid, role)) = self.engine.roles_left(who).into_iter().next() else {
            return Err(DriverError::Refused(format!(
                "{who} is asked to sign but has nothing left to sign"
            )));
        };
        let mut signer = token_signer_for(
            self.tokens.as_ref(),
            who,
            &self.plan,
            &self.engine,
            &self.earlier_keys,
            &keyid,
            pin,
        )?;
        let tuf_on_ci = self.engine.tuf_on_ci_signed_bytes(&role);
        let bytes = match (role.as_str(), &p.root, &p.targets) {
            _ if tuf_on_ci.is_some() => tuf_on_ci.unwrap_or_default(),
            ("layout", _, _) => match &p.layout {
                Some(l) => l.signed_message(),
                None => {
                    return Err(DriverError::Refused(
                        "no layout is part of this proposal".into(),
                    ));
                }
            },
            ("root", Some(r), _) => r.signed_bytes().to_vec(),
            ("targets", _, Some(t)) => t.signed_bytes().to_vec(),
            _ => {
                return Err(DriverError::Refused(format!(
                    "{role} is not part of this proposal"
                )));
            }
        };
        let sig = signer.sign(&bytes).map_err(signer_error(format!(
            "signing {role} with the token of {who}"
        )))?;
        Ok(Event::Signed {
            step: self.step(),
            keyholder: who.to_string(),
            role,
            keyid: keyid.0,
            sig: hex::encode(sig),
        })
    }

    /// Write the files to the export media (atomic, read back, `SHA256SUMS`): the workspace's
    /// `export/` folder (later ceremonies continue from it) and, when `medium` is given, also
    /// that folder on removable media. Returns the event and what was written where.
    pub fn export_event(
        &self,
        files: &[(String, Vec<u8>)],
        medium: Option<&Path>,
    ) -> Result<(Event, Vec<ExportReport>), DriverError> {
        let list: Vec<ExportFile> = files
            .iter()
            .map(|(name, data)| ExportFile {
                name: name.clone(),
                data: data.clone(),
            })
            .collect();
        if let Some(m) = medium
            && m != self.ws.export()
        {
            // Before anything is written: a medium that is not mounted removable media would
            // put the export on the appliance's own disk.
            crate::transport::usb::check_removable(&*crate::transport::usb::system(), m)
                .map_err(io("export"))?;
        }
        let places = super::export::export_places(&self.ws, medium);
        // Files in sub-folders (publish-targets' `targets/...`): each folder is exported on
        // its own, with its own `SHA256SUMS`.
        let groups = super::export::by_folder(&list).map_err(io("export"))?;
        let mut reports = Vec::new();
        for dir in &places {
            for (sub, group) in &groups {
                let dir = dir.join(sub);
                crate::folder::create_dir_all_mode(&dir, crate::folder::DIR_MODE)
                    .map_err(io(dir.display()))?;
                reports.push(
                    export_files(&StdFs, &dir, group, ExportOptions::default())
                        .map_err(io(format!("export to {}", dir.display())))?,
                );
            }
        }
        use sha2::Digest;
        Ok((
            Event::Exported {
                step: self.step(),
                files: files
                    .iter()
                    .map(|(n, b)| (n.clone(), hex::encode(sha2::Sha256::digest(b))))
                    .collect(),
                destination: places
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                rstuf_settings: self.engine.rstuf_settings_record(),
            },
            reports,
        ))
    }

    /// The headless answer to `need`, with the actor to record: plan values, the machine's own
    /// checks, the tokens (PIN: `pin`, else the plan's, else asked on the terminal).
    pub fn answer(
        &self,
        need: Need,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<(String, Event), DriverError> {
        let step = self.step();
        let mut actor = self.step_actor();
        let event = match need {
            Need::Done => {
                return Err(DriverError::Refused("the ceremony has no step left".into()));
            }
            Need::Parameters => {
                // Checked against the keyholders the plan names, before anything is recorded.
                let known =
                    (!self.plan.keyholders.is_empty()).then_some(self.plan.keyholders.len());
                self.engine
                    .check_parameters(&self.plan.values, known)
                    .map_err(|e| DriverError::Refused(e.to_string()))?;
                Event::Parameters {
                    values: self.plan.values.clone(),
                    practice: self.plan.practice,
                }
            }
            Need::Acknowledge { .. } => Event::Acknowledged {
                step,
                value: Some(self.plan.acknowledgement.clone()),
            },
            Need::AirgapCheck => self.airgap_event(),
            Need::ClockConfirm => self.clock_event(self.plan.reference_time.as_deref())?,
            Need::RollCall { .. } => {
                // Before the names: a key type a present token's advisory concerns is refused,
                // or replaced by a safe one when the answers left it at the script's default.
                // No token listed (none present, or the module cannot list): key generation,
                // which checks again, decides.
                let present = self.tokens.tokens().unwrap_or_default();
                let named = self.plan.values.contains_key("key_type");
                match self.key_type_at_roll_call(named, &present)? {
                    Some(correction) => {
                        actor = "administrator".into();
                        correction
                    }
                    None => Event::RollCall {
                        step,
                        administrator: self.plan.administrator.clone(),
                        keyholders: self.plan.keyholders.clone(),
                        witnesses: self.plan.witnesses.clone(),
                    },
                }
            }
            Need::LoadMetadata => self.load_metadata_event()?,
            Need::ImportRequests => self.import_requests_event()?,
            Need::ImportTargets => self.import_targets_event()?,
            Need::ImportLayout { file } => self.import_layout_event(&file)?,
            Need::ImportEvent { event, known_good } => {
                self.import_event_event(&event, &known_good)?
            }
            Need::ImportPending { file, trusted_root } => {
                self.import_pending_event(&file, &trusted_root)?
            }
            Need::ImportKeys { .. } => self.import_keys_event(),
            Need::GenerateKey {
                keyholder,
                key_type,
            } => {
                actor = keyholder.clone();
                self.generate_key_event(&keyholder, &key_type, pin, None)?
            }
            Need::Propose => self.propose_event()?,
            Need::Review { digests } => Event::Approved {
                step,
                digests,
                request_set_sha256: crate::ceremony::engine::answered_request_set(
                    &self.engine,
                    self.plan.request_set_sha256.as_deref(),
                )
                .map_err(|e| DriverError::Refused(format!("answers file: {e}")))?,
            },
            Need::Sign { pending, meters } => {
                let met = !meters.is_empty() && meters.values().all(|m| m.verified());
                if let Some((who, reason)) =
                    pending.iter().find_map(|w| self.plan.skip.get_key_value(w))
                {
                    actor = "administrator".into();
                    Event::SignerSkipped {
                        step,
                        keyholder: who.clone(),
                        reason: reason.clone(),
                    }
                } else if pending.is_empty() || (met && self.plan.close_signing_when_met) {
                    Event::SigningClosed { step }
                } else {
                    let who = &pending[0];
                    actor = who.clone();
                    self.sign_event(who, pin).map_err(|e| {
                        e.with_hint(format!(
                            "to go on without {who}, the administrator skips them with a reason (answers file: [skip] {who} = \"REASON\")"
                        ))
                    })?
                }
            }
            Need::Verify => Event::Verified { step },
            Need::Export { files } => self.export_event(&files, self.plan.export_to.as_deref())?.0,
            Need::Seal => Event::Sealed { step },
        };
        Ok((actor, event))
    }

    /// What an unfinished ceremony leaves in the tokens: one line per key generated so far
    /// (keyholder, key id, token). Empty when no key was generated.
    pub fn left_in_tokens(&self) -> Vec<String> {
        self.engine
            .generated_keys()
            .iter()
            .map(|(who, token, key)| {
                format!(
                    "{who}: key {} ({}) in token {token}",
                    crate::ceremony::engine::owned_key(key, who).key_id(),
                    key.scheme
                )
            })
            .collect()
    }

    /// What to tell the room when the ceremony stops before its end (empty when no key was
    /// generated): which key was left in which token, and that it stays unused.
    pub fn abandoned_note(&self) -> Option<String> {
        let left = self.left_in_tokens();
        (!left.is_empty()).then(|| {
            format!(
                "stopped at step {}: keys generated so far stay in the tokens, unused until the same command continues the ceremony: {}",
                self.step(),
                left.join("; ")
            )
        })
    }

    /// Keyholders who seal: everyone in the roll call whose key takes part in this ceremony.
    pub fn sealers(&self) -> Vec<String> {
        self.engine
            .keyholders()
            .iter()
            .filter(|k| !self.engine.keyholder_key_ids(k).is_empty())
            .cloned()
            .collect()
    }

    /// The present token with which `who` signs the seal, if one is found by its keys.
    pub fn sealing_token(&self, who: &str) -> Option<TokenDesc> {
        sealing_token(
            self.tokens.as_ref(),
            who,
            &self.plan,
            &self.engine,
            &self.earlier_keys,
        )
        .ok()
        .flatten()
    }

    /// Whose token `token` is in this ceremony: the keyholder whose key the transcript recorded
    /// on it at key generation, else the keyholder whose expected token it is
    /// ([`Session::expected_token`]: the plan's or the room's choice, default the token
    /// labelled with their name) by serial, or by a label no other present token shares.
    pub fn token_owner(&self, token: &TokenDesc) -> Option<String> {
        let present = self.tokens.tokens().unwrap_or_default();
        self.token_owner_among(token, &present)
    }

    /// [`Session::token_owner`] with the tokens `present` (listed earlier, e.g. by the terminal
    /// UI's token poller): no token is asked.
    pub fn token_owner_among(&self, token: &TokenDesc, present: &[TokenDesc]) -> Option<String> {
        if let Some(who) = recorded_owner(&self.engine, token) {
            return Some(who.to_string());
        }
        let shared_label = present
            .iter()
            .filter(|t| t.initialized && t.label == token.label)
            .count()
            > 1;
        self.engine
            .keyholders()
            .iter()
            .chain(self.plan.tokens.keys())
            .find(|who| {
                let expected = self.expected_token(who);
                expected == token.serial || (!shared_label && token.is_named(&expected))
            })
            .cloned()
    }

    /// The roll call's check of the ceremony's key type against the firmware advisories of
    /// the tokens present, before any key exists and before any PIN
    /// ([`crate::signer::pkcs11::key_type_verdict`]): `None` when no advisory concerns it (or
    /// the script generates no key); a correction to record (with its reason) when the key
    /// type was left at the script's default and another is safe on every token; otherwise
    /// refused, naming each device, its firmware and advisory, the key types safe on it and how
    /// to choose another. `named_by_administrator`: the administrator gave the key type (the
    /// answers file names it); a recorded value other than the script's default counts as
    /// given too. Tokens that hold a key recorded in this workspace (a rotation's current keys,
    /// used to sign, not to generate) are left out, and so, when the plan names every
    /// keyholder's token, are tokens it does not name. `present`: the tokens listed now
    /// (headless: listed here; the terminal UI: its token poller's answer).
    pub fn key_type_at_roll_call(
        &self,
        named_by_administrator: bool,
        present: &[TokenDesc],
    ) -> Result<Option<Event>, DriverError> {
        use crate::ceremony::engine::ParamJson;
        use crate::signer::pkcs11::{KeyTypeVerdict, key_type_name, key_type_verdict};
        let Some(value) = self.engine.parameters().get("key_type") else {
            return Ok(None);
        };
        let value = value.to_string();
        let Some(alg) = parse_key_type(&value) else {
            return Ok(None);
        };
        let default = self
            .engine
            .script()
            .parameters
            .iter()
            .find(|p| p.name == "key_type")
            .map(|p| p.default.to_string());
        let at_default = !named_by_administrator && default.as_deref() == Some(value.as_str());
        // When the plan names every keyholder's token, the others present do not generate.
        let plan = &self.plan;
        let every_named = !plan.keyholders.is_empty()
            && plan.keyholders.iter().all(|k| plan.tokens.contains_key(k));
        let named = |t: &TokenDesc| {
            plan.tokens
                .values()
                .any(|n| *n == t.serial || t.is_named(n))
        };
        let generating: Vec<&TokenDesc> = present
            .iter()
            .filter(|t| t.initialized && !holds_recorded_key(&self.engine, &self.earlier_keys, t))
            .filter(|t| !every_named || named(t))
            .collect();
        match key_type_verdict(&generating, alg, at_default) {
            KeyTypeVerdict::Fine => Ok(None),
            KeyTypeVerdict::Propose { to, reason } => Ok(Some(Event::ParametersCorrected {
                step: self.step(),
                values: [(
                    "key_type".to_string(),
                    ParamJson::Text(key_type_name(to).to_string()),
                )]
                .into_iter()
                .collect(),
                reason: Some(reason),
            })),
            KeyTypeVerdict::Refuse(message) => Err(DriverError::Refused(message)),
        }
    }

    /// Assign a token (label or serial) to a keyholder for this ceremony: their keys are
    /// generated in it (the administrator confirms the token the keyholder brought).
    pub fn assign_token(&mut self, who: &str, token: &str) {
        self.plan.tokens.insert(who.to_string(), token.to_string());
    }

    /// The token key with which `who` signs the seal (PIN: `pin`, else the plan's or asked),
    /// and its key id as the ceremony's metadata lists it (the one id the room reads for this
    /// key on every screen; the seal record itself names the bare key's id).
    pub fn seal_signer(
        &self,
        who: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<(TokenSigner, KeyId), DriverError> {
        ceremony_signer(
            self.tokens.as_ref(),
            who,
            &self.plan,
            &self.engine,
            &self.earlier_keys,
            pin,
        )
    }
}

/// An existing key, taken only after it signs a test message that verifies in software.
fn self_tested(
    session: Box<dyn OpenToken>,
    tkey: &crate::signer::pkcs11::TokenKey,
    keyholder: &str,
) -> Result<crate::tuf::key::Key, DriverError> {
    let mut signer = session
        .signer(tkey)
        .map_err(token_error(format!("the key of {keyholder}")))?;
    let msg = b"conclave existing key self-test";
    let checked = signer
        .sign_raw(msg)
        .map_err(|e| e.to_string())
        .and_then(|sig| signer.verify(msg, &sig).map_err(|e| e.to_string()));
    if let Err(reason) = checked {
        return Err(DriverError::Refused(format!(
            "the key \"{}\" on the token of {keyholder} failed its self-test \
             (a test signature did not verify: {reason}); it is not used",
            tkey.label
        )));
    }
    Ok(signer.key().clone())
}
