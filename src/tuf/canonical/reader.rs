//! A fast reader for metadata files, on two cores for large targets roles.
//!
//! It reads the file's outer objects (the envelope, `signed` and `signed.targets`) itself, packs
//! each target entry straight from its text ([`super::fast`]) and leaves every other value to the
//! strict serde reader. It accepts only what it is sure of and otherwise returns `None`, and the
//! caller then reads the file the general way, which gives the same value or the error with its
//! place; so this reader never decides that a file is wrong, and never reads it differently.
//!
//! A large `targets` object is read in pieces, on the machine's cores: each piece after the first
//! starts at a member found after an evenly spaced guess, and a piece's members are used only when
//! the piece before it stopped exactly where it begins, at the start of a member of the same
//! object. Whatever the guesses hit, the result is what one thread would have read, or `None`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Map, Value, fast};

/// Remaining input above which a `targets` object is read in pieces on several threads.
const SPLIT_MIN: usize = 1 << 20;

/// Most threads reading one `targets` object.
const MAX_THREADS: usize = 8;

/// Pieces per thread (see [`Reader::targets`]).
const PIECES_PER_THREAD: usize = 4;

/// The deepest nesting the strict reader accepts: a document at most this deep parses, one level
/// deeper does not (serde_json's recursion limit; checked in the tests below).
pub(super) const MAX_NESTING: usize = 127;

/// A check of target entries, as [`Value::parse_metadata`] takes it.
pub(super) type Check<'a> = &'a (dyn Fn(&str, &Value) -> Result<(), String> + Sync);

/// Read a metadata file, or `None` when the general reader must (see the module documentation).
pub(super) fn parse_metadata(bytes: &[u8], check: Check<'_>) -> Option<Value> {
    let mut r = Reader { b: bytes, i: 0 };
    r.ws();
    let v = r.level_value(Level::Top, 0, check)?;
    r.ws();
    (r.i == bytes.len()).then_some(v)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Signed,
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A member name without escapes or control characters.
    fn name(&mut self) -> Option<&'a str> {
        let (run, end) = fast::plain_string(self.b, self.i)?;
        self.i = end;
        std::str::from_utf8(run).ok()
    }

    /// A member's name and the colon after it (with the whitespace around).
    fn member_name(&mut self) -> Option<&'a str> {
        let key = self.name()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(key)
    }

    /// A member of a `targets` object: its name, its entry packed into `scratch`.
    fn target_member(&mut self, scratch: &mut Vec<u8>) -> Option<&'a str> {
        let key = self.member_name()?;
        scratch.clear();
        self.i = fast::pack_target_entry_at(self.b, self.i, scratch)?;
        Some(key)
    }

    /// Any value, by the strict serde reader; `depth` containers enclose it.
    fn general(&mut self, depth: usize) -> Option<Value> {
        let rest = self.b.get(self.i..)?;
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        let v = values.next()?.ok()?;
        if depth + nesting(&v) > MAX_NESTING {
            return None;
        }
        self.i += values.byte_offset();
        Some(v)
    }

    /// The value of a member at `level` (the file itself, or `signed`).
    fn level_value(&mut self, level: Level, depth: usize, check: Check<'_>) -> Option<Value> {
        if self.peek()? != b'{' {
            return self.general(depth);
        }
        self.i += 1;
        let mut entries = Vec::new();
        self.ws();
        if self.eat(b'}').is_none() {
            loop {
                self.ws();
                let key = self.member_name()?;
                let value = match (level, key) {
                    (Level::Top, "signed") => self.level_value(Level::Signed, depth + 1, check)?,
                    (Level::Signed, "targets") if self.peek() == Some(b'{') => {
                        Value::Object(self.targets(check)?)
                    }
                    _ => self.general(depth + 1)?,
                };
                entries.push((key.to_string(), value));
                self.ws();
                if self.eat(b',').is_none() {
                    self.eat(b'}')?;
                    break;
                }
            }
        }
        Map::from_unique_entries(entries).ok().map(Value::Object)
    }

    /// The `targets` object, read in pieces on the machine's cores when it is large.
    fn targets(&mut self, check: Check<'_>) -> Option<Map> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(Map::new());
        }
        let left = self.b.len() - self.i;
        let threads = if left < SPLIT_MIN {
            1
        } else {
            crate::tuf::parallel::cores().min(MAX_THREADS)
        };
        if threads < 2 {
            let mut entries = Vec::new();
            self.members(&mut entries, check, None)?;
            return Map::from_unique_entries(entries).ok();
        }
        // More pieces than threads: a thread that shares its core (with the hashing of the
        // file, say) takes fewer of them.
        let pieces = PIECES_PER_THREAD * threads;
        let guesses: Vec<usize> = (1..pieces).map(|k| self.i + left / pieces * k).collect();
        self.targets_in_pieces(check, &guesses, threads)
    }

    /// The members of a `targets` object (from its first member), in pieces that start at the
    /// first member found after each of `guesses`, read by `threads` threads.
    fn targets_in_pieces(
        &mut self,
        check: Check<'_>,
        guesses: &[usize],
        threads: usize,
    ) -> Option<Map> {
        let b = self.b;
        let mut starts = vec![self.i];
        for &guess in guesses {
            let last = starts.last().copied().unwrap_or(self.i);
            if let Some(at) = member_start_after(b, guess.max(last + 1))
                && at > last
            {
                starts.push(at);
            }
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let work = || {
            let mut done = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= starts.len() || failed.load(Ordering::Relaxed) {
                    return done;
                }
                let mut r = Reader { b, i: starts[k] };
                let mut entries = Vec::new();
                let end = r.members(&mut entries, check, starts.get(k + 1).copied());
                if end.is_none() {
                    failed.store(true, Ordering::Relaxed);
                }
                done.push((k, end.map(|end| (end, r.i, entries))));
            }
        };
        let mut pieces: Vec<Option<Piece>> = (0..starts.len()).map(|_| None).collect();
        std::thread::scope(|s| {
            let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            for (k, piece) in work() {
                pieces[k] = piece;
            }
            for h in others {
                // A panic in a thread (a bug, or a failed debug assertion in the tests) is
                // resumed here, as it would be without threads, not taken for a failed piece.
                match h.join() {
                    Ok(done) => {
                        for (k, piece) in done {
                            pieces[k] = piece;
                        }
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        // Piece 0 starts at the first member. Each next piece counts only if the one before
        // stopped exactly at its start, the start of a member: then it was read from the state
        // one thread would have been in there.
        let total = pieces.iter().flatten().map(|(_, _, m)| m.len()).sum();
        let mut entries = Vec::with_capacity(total);
        for piece in pieces {
            let (end, at, members) = piece?;
            entries.extend(members);
            if end == End::Object {
                self.i = at;
                return Map::from_unique_entries(entries).ok();
            }
        }
        None
    }

    /// Members of a `targets` object from a member's start to the end of the object, or to the
    /// start of a member at `stop_at`. `None` when anything is not read (or the reading passes
    /// `stop_at` without stopping there).
    fn members(
        &mut self,
        entries: &mut Vec<(String, Value)>,
        check: Check<'_>,
        stop_at: Option<usize>,
    ) -> Option<End> {
        let mut scratch = Vec::new();
        loop {
            if let Some(stop) = stop_at {
                if self.i == stop {
                    return Some(End::Piece);
                }
                if self.i > stop {
                    return None;
                }
            }
            let key = self.target_member(&mut scratch)?;
            debug_assert!(
                super::parse_canonical(&scratch).is_ok_and(|v| check(key, &v).is_ok()),
                "the fast path packed an entry that the check refuses"
            );
            entries.push((key.to_string(), Value::Packed(scratch.as_slice().into())));
            self.ws();
            if self.eat(b',').is_none() {
                self.eat(b'}')?;
                return Some(End::Object);
            }
            self.ws();
        }
    }
}

/// A piece of a `targets` object: how it ended, where, and its members.
type Piece = (End, usize, Vec<(String, Value)>);

/// Where the reading of a piece of a `targets` object stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// At the start of the next piece.
    Piece,
    /// After the closing brace of the object.
    Object,
}

/// The first place after `from` that looks like the start of a member of a `targets` object: a
/// quote after a comma, beginning a name, a colon and a target entry this reader packs. A comma
/// inside an entry (between its own members) is followed by a member that is no target entry,
/// and the next comma is tried. `None` after 64 tries.
fn member_start_after(b: &[u8], mut from: usize) -> Option<usize> {
    let mut scratch = Vec::new();
    for _ in 0..64 {
        let comma = from + memchr::memchr(b',', b.get(from..)?)?;
        from = comma + 1;
        let mut r = Reader { b, i: comma + 1 };
        r.ws();
        let at = r.i;
        if r.target_member(&mut scratch).is_some() {
            return Some(at);
        }
    }
    None
}

/// How deeply containers nest in `v` (0 for a scalar).
fn nesting(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(m) => 1 + m.iter().map(|(_, v)| nesting(v)).max().unwrap_or(0),
        // Packed objects are only made by this module's caller, never met here.
        Value::Packed(_) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_all(_: &str, _: &Value) -> Result<(), String> {
        Ok(())
    }

    /// The general reader, as the caller falls back to it.
    fn general(text: &[u8]) -> Value {
        Value::parse(text).unwrap()
    }

    fn entry(i: usize) -> String {
        format!(
            "\"t/{i:06}\": {{\n \"custom\": {{\"n\": {i}}},\n \"hashes\": {{\"sha256\": \"{i:064x}\"}},\n \"length\": {i}\n}}"
        )
    }

    fn targets_file(n: usize, around: &str) -> String {
        let entries: Vec<String> = (0..n).map(entry).collect();
        format!(
            "{{\"signatures\": [{{\"keyid\": \"ab\", \"sig\": \"cd\"}}], \"signed\": {{\"_type\": \"targets\", \"delegations\": {{\"keys\": {{}}, \"roles\": [[[1]]]}}, \"targets\": {{{}}}, \"version\": 1{around}}}}}",
            entries.join(",\n")
        )
    }

    #[test]
    fn the_nesting_limit_is_the_general_readers() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(Value::parse(nested(MAX_NESTING).as_bytes()).is_ok());
        assert!(Value::parse(nested(MAX_NESTING + 1).as_bytes()).is_err());
        // Under `signed` (two objects deep), the limit counts from the top of the file.
        let doc = |n: usize| format!("{{\"signed\": {{\"x\": {}}}}}", nested(n));
        let ok = doc(MAX_NESTING - 2);
        let deep = doc(MAX_NESTING - 1);
        assert!(Value::parse(ok.as_bytes()).is_ok());
        assert!(Value::parse(deep.as_bytes()).is_err());
        assert_eq!(
            parse_metadata(ok.as_bytes(), &accept_all),
            Some(general(ok.as_bytes()))
        );
        assert_eq!(parse_metadata(deep.as_bytes(), &accept_all), None);
    }

    #[test]
    fn small_and_large_targets_read_as_the_general_reader_reads_them() {
        // 5 entries: one thread; 20,000 entries (over 2 MB): read in pieces on the cores.
        for n in [0, 1, 5, 20_000] {
            let text = targets_file(n, "");
            let v = parse_metadata(text.as_bytes(), &accept_all).expect("read");
            assert_eq!(v, general(text.as_bytes()), "{n} entries");
            let count = v
                .as_object()
                .and_then(|m| m.get("signed"))
                .and_then(Value::as_object)
                .and_then(|m| m.get("targets"))
                .and_then(Value::as_object)
                .map(Map::len);
            assert_eq!(count, Some(n));
        }
    }

    #[test]
    fn whatever_it_is_not_sure_of_goes_to_the_general_reader() {
        let big = targets_file(20_000, "");
        let cases: Vec<String> = vec![
            // A repeated target name, on either side of the middle of the file.
            big.replacen("t/000003", "t/000002", 1),
            big.replacen("t/019998", "t/019999", 1),
            big.replacen("t/010001", "t/010000", 1),
            // An escape in a name, an entry without hashes, a float, a broken entry.
            big.replacen("t/015000", "t\\/015000", 1),
            big.replacen("\"hashes\": {\"sha256\": \"0000000000000000000000000000000000000000000000000000000000002710\"}", "\"hashes\": {}", 1),
            big.replacen("\"length\": 17\n", "\"length\": 17.0\n", 1),
            big.replacen("\"length\": 19000\n", "\"length\": 19000,\n", 1),
            // Repeated or escaped members outside targets, trailing text.
            big.replacen("\"version\": 1", "\"version\": 1, \"version\": 2", 1),
            big.replacen("\"_type\"", "\"_typ\\u0065\"", 1),
            format!("{big} x"),
        ];
        for (n, text) in cases.iter().enumerate() {
            assert!(
                parse_metadata(text.as_bytes(), &accept_all).is_none(),
                "case {n}"
            );
            // The general reader decides: the same value as the fast reader would give, or the
            // error.
            if let Ok(v) = Value::parse_metadata(text.as_bytes(), u64::MAX, &accept_all) {
                assert!(v == general(text.as_bytes()), "case {n}");
            }
        }
        // Out of order on either side of the middle: read, and sorted as the general reader
        // sorts.
        for text in [
            big.replacen("t/012000", "t/000000x", 1),
            big.replacen("t/001000", "t/019999x", 1),
        ] {
            let v = parse_metadata(text.as_bytes(), &accept_all).expect("read");
            assert!(v == general(text.as_bytes()));
        }
    }

    #[test]
    fn a_piece_that_starts_at_a_wrong_place_changes_nothing() {
        // A target name that looks like the end of one entry and the start of another, placed
        // where a piece is looked for: a piece starting inside the name is not used.
        let mut text = targets_file(20_000, "");
        let middle = text.len() / 2;
        let at = text[middle..].find("\"t/").unwrap() + middle;
        let fake =
            "\"t/x, \\\"y\\\": {\\\"hashes\\\": {\\\"a\\\": \\\"b\\\"}, \\\"length\\\": 1}\"";
        let end = text[at..].find(':').unwrap() + at;
        text.replace_range(at..end, fake);
        let v = Value::parse_metadata(text.as_bytes(), u64::MAX, &accept_all).unwrap();
        assert!(v == general(text.as_bytes()));
    }

    #[test]
    fn wherever_the_pieces_start_the_members_are_the_same() {
        let text = targets_file(2_000, "");
        let expected = general(text.as_bytes());
        let signed = expected
            .as_object()
            .and_then(|m| m.get("signed"))
            .and_then(Value::as_object);
        let expected = signed.and_then(|m| m.get("targets"));
        let start = text.find("\"targets\": {").unwrap() + "\"targets\": {".len();
        let middle = text.len() / 2;
        // Guesses inside names, digests, between an entry's members, at and past the end, in
        // one piece or several, out of order, on one to three threads.
        let mut sets: Vec<Vec<usize>> =
            (middle..middle + 300).step_by(5).map(|g| vec![g]).collect();
        sets.push(vec![
            start + 1,
            middle,
            middle + 1,
            text.len() - 40,
            text.len() - 1,
            text.len(),
        ]);
        sets.push((1..40).map(|k| start + k * 997).collect());
        sets.push(vec![middle + 5000, middle]);
        for (n, guesses) in sets.iter().enumerate() {
            for threads in 1..=3 {
                let mut r = Reader {
                    b: text.as_bytes(),
                    i: start,
                };
                let map = r.targets_in_pieces(&accept_all, guesses, threads);
                assert!(
                    map.map(Value::Object).as_ref() == expected,
                    "guesses {n}, {threads} threads"
                );
                assert_eq!(
                    &text.as_bytes()[r.i..],
                    b", \"version\": 1}}",
                    "guesses {n}"
                );
            }
        }
    }
}
