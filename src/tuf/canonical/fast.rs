//! Canonical bytes of a target entry straight from its JSON text.
//!
//! A targets role lists one entry per target file, and a registry's role can list hundreds of
//! thousands: building a tree for each entry only to write it back as canonical bytes was most of
//! the time `conclave verify` spent on such a file (make bench, 100,000 targets). TUF tools write
//! entries with their members already in canonical order and without escapes, so for those the
//! canonical bytes are the text minus its whitespace. This module produces them in one pass, and
//! declines (returns `false`) on anything it is not sure of: members out of order or repeated,
//! escapes, control characters, numbers that are not plain 64-bit integers, deep nesting, or an
//! entry without the shape of a target file. The caller then reads the entry the general way,
//! which either gives the same bytes or reports what is wrong; this path never decides that
//! anything is an error.

/// Deepest nesting handled here; deeper entries take the general path.
const MAX_DEPTH: usize = 32;

/// Append to `out` the canonical bytes of the JSON value `text` and return `true` when the value
/// is a target entry (an object whose `length` is a non-negative 64-bit integer and whose
/// `hashes` is a non-empty object of strings) written in a form this path reads (see the module
/// documentation). On `false`, `out` may hold partial output: the caller clears it.
pub(super) fn pack_target_entry(text: &str, out: &mut Vec<u8>) -> bool {
    let b = text.as_bytes();
    let start = b.len() - text.trim_start_matches(is_ws).len();
    pack_target_entry_at(b, start, out)
        .is_some_and(|end| b[end..].iter().all(|&c| is_ws(char::from(c))))
}

/// As [`pack_target_entry`], for the target entry that starts at `at` in `b`: the index just
/// after it, or `None`.
pub(super) fn pack_target_entry_at(b: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut p = Packer { b, i: at, out };
    match p.value(0)? {
        Kind::Object { entry: true, .. } => Some(p.i),
        _ => None,
    }
}

/// The contents of the string whose opening quote is at `at` in `b`, and the index just after
/// its closing quote, when it is written plainly: no escapes, no control characters, UTF-8 (its
/// canonical form is then the same bytes).
pub(super) fn plain_string(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let len = memchr::memchr2(b'"', b'\\', b.get(start..)?)?;
    let end = start + len;
    if b[end] != b'"' {
        return None;
    }
    let run = &b[start..end];
    // Printable ASCII, the usual case, checked in one pass; anything else must be UTF-8 without
    // control characters.
    if !run.iter().all(|&c| (0x20..0x80).contains(&c))
        && (run.iter().any(|&c| c < 0x20) || std::str::from_utf8(run).is_err())
    {
        return None;
    }
    Some((run, end + 1))
}

/// JSON whitespace.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\n' | '\r' | '\t')
}

/// What a value turned out to be, as far as the target-file shape needs to know.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A non-negative integer (fits `u64`).
    Count,
    /// A string.
    String,
    /// An object: how many members, whether all of them are strings, and whether it has the
    /// shape of a target entry (only worked out at the top level).
    Object {
        members: usize,
        all_strings: bool,
        entry: bool,
    },
    /// Anything else that is valid (negative integer, array, literal).
    Other,
}

struct Packer<'a, 'o> {
    b: &'a [u8],
    i: usize,
    out: &'o mut Vec<u8>,
}

impl<'a> Packer<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A string without escapes or control characters, in UTF-8; its contents are returned and
    /// written quoted to the output.
    fn string(&mut self) -> Option<&'a [u8]> {
        let (run, end) = plain_string(self.b, self.i)?;
        self.out.push(b'"');
        self.out.extend_from_slice(run);
        self.out.push(b'"');
        self.i = end;
        Some(run)
    }

    /// An integer as canonical JSON writes it: no leading zeros, no `-0`, within the 64-bit
    /// range, not followed by a fraction or an exponent.
    fn number(&mut self) -> Option<Kind> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let digits = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let text = &self.b[start..self.i];
        let digits = &self.b[digits..self.i];
        if digits.is_empty()
            || (digits[0] == b'0' && (digits.len() > 1 || negative))
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        let text_str = std::str::from_utf8(text).ok()?;
        let kind = if negative {
            text_str.parse::<i64>().ok()?;
            Kind::Other
        } else {
            text_str.parse::<u64>().ok()?;
            Kind::Count
        };
        self.out.extend_from_slice(text);
        Some(kind)
    }

    fn literal(&mut self, lit: &[u8]) -> Option<Kind> {
        if self.b.get(self.i..)?.starts_with(lit) {
            self.i += lit.len();
            self.out.extend_from_slice(lit);
            Some(Kind::Other)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Kind> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(|_| Kind::String),
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<Kind> {
        self.i += 1;
        self.out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.out.push(b']');
            return Some(Kind::Other);
        }
        loop {
            self.ws();
            self.value(depth + 1)?;
            self.ws();
            match self.peek()? {
                b',' => self.out.push(b','),
                b']' => {
                    self.i += 1;
                    self.out.push(b']');
                    return Some(Kind::Other);
                }
                _ => return None,
            }
            self.i += 1;
        }
    }

    fn object(&mut self, depth: usize) -> Option<Kind> {
        self.i += 1;
        self.out.push(b'{');
        self.ws();
        let mut members = 0;
        let mut all_strings = true;
        let (mut length, mut hashes) = (false, false);
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.out.push(b'}');
        } else {
            let mut previous: Option<&[u8]> = None;
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                // Strictly increasing names: canonical order, and no member twice.
                if previous.is_some_and(|p| p >= key) {
                    return None;
                }
                previous = Some(key);
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                self.out.push(b':');
                self.ws();
                let kind = self.value(depth + 1)?;
                members += 1;
                all_strings &= kind == Kind::String;
                if depth == 0 {
                    match key {
                        b"length" => length = kind == Kind::Count,
                        b"hashes" => {
                            hashes = matches!(
                                kind,
                                Kind::Object {
                                    members: 1..,
                                    all_strings: true,
                                    ..
                                }
                            )
                        }
                        _ => {}
                    }
                }
                self.ws();
                match self.peek()? {
                    b',' => self.out.push(b','),
                    b'}' => {
                        self.i += 1;
                        self.out.push(b'}');
                        break;
                    }
                    _ => return None,
                }
                self.i += 1;
            }
        }
        Some(Kind::Object {
            members,
            all_strings,
            entry: depth == 0 && length && hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Value;
    use super::*;

    fn fast(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        pack_target_entry(text, &mut out).then_some(out)
    }

    #[test]
    fn entries_as_tools_write_them_are_packed_to_their_canonical_bytes() {
        for text in [
            r#"{"hashes": {"sha256": "ab"}, "length": 3}"#,
            "{\n \"custom\": {\n  \"build\": 0,\n  \"platform\": \"linux\"\n },\n \"hashes\": {\n  \"sha256\": \"00\",\n  \"sha512\": \"11\"\n },\n \"length\": 1000\n}",
            r#"  {"custom":{"a":[1,-2,true,false,null,{"b":[]},"é"],"z":{}},"hashes":{"x":""},"length":0}  "#,
            r#"{"hashes": {"sha256": "ab"}, "length": 18446744073709551615, "zz": -9223372036854775808}"#,
        ] {
            let expected = Value::parse(text.as_bytes()).unwrap().canonical_bytes();
            assert_eq!(fast(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_reader() {
        for text in [
            // Not the shape of a target entry.
            r#"{"hashes": {"sha256": "ab"}}"#,
            r#"{"length": 3}"#,
            r#"{"hashes": {}, "length": 3}"#,
            r#"{"hashes": {"sha256": 1}, "length": 3}"#,
            r#"{"hashes": ["ab"], "length": 3}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": -3}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": "3"}"#,
            r#"{"custom": {"length": 1, "hashes": {"a": "b"}}}"#,
            r#"[1]"#,
            // Out of canonical order, repeated members, escapes, control characters.
            r#"{"length": 3, "hashes": {"sha256": "ab"}}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3, "length": 4}"#,
            r#"{"hashes": {"sha256": "a\nb"}, "length": 3}"#,
            "{\"hashes\": {\"sha256\": \"a\u{1}b\"}, \"length\": 3}",
            r#"{"hashes": {"sha256": "a\"b"}, "length": 3}"#,
            // Numbers canonical JSON does not carry as written, or at all.
            r#"{"hashes": {"sha256": "ab"}, "length": 03}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3.0}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3e2}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 18446744073709551616}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 1, "x": -0}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 1, "x": -9223372036854775809}"#,
            // Broken text.
            r#"{"hashes": {"sha256": "ab"}, "length": 3"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3}}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3,}"#,
            r#"{"hashes": {"sha256": "ab",}, "length": 3}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3, "x": [1,]}"#,
            r#"{"hashes": {"sha256": "ab"}, "length": 3, "x": tru}"#,
            r#"{"hashes": {"sha256": "ab"} "length": 3}"#,
        ] {
            assert_eq!(fast(text), None, "{text}");
        }
        let deep = format!(
            r#"{{"hashes": {{"a": "b"}}, "length": 1, "x": {}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(fast(&deep), None);
    }
}
