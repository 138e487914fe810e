//! The paper form the room follows (ICANN annotates printed scripts): numbered steps, who acts,
//! boxes for the witnesses' initials and times, and a field for the transcript head hash.

use std::fmt::Write as _;

use super::script::{Person, Script};
use crate::text::show;

fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    for para in text.split("\n\n") {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let word = &show(word);
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                let _ = writeln!(out, "{indent}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
    out
}

fn presence_line(script: &Script) -> String {
    script
        .presence
        .iter()
        .map(|(p, n)| match n.max {
            Some(max) if max == n.min => format!("{} {}", n.min, p.as_str()),
            Some(max) => format!("{}-{max} {}", n.min, p.as_str()),
            None => format!("at least {} {}", n.min, p.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The script as a plain-text form (80 columns).
pub fn text(script: &Script) -> String {
    let mut out = String::new();
    let rule = "=".repeat(78);
    let _ = writeln!(
        out,
        "{rule}\n{}  ({})\n{rule}",
        show(&script.title),
        show(&script.name)
    );
    out.push_str(&wrap(&script.purpose, 76, ""));
    let _ = writeln!(out, "\nPeople: {}", presence_line(script));
    out.push_str("\nDate: ____________   Place: ______________________   Appliance bag serial: ____________\n");
    out.push_str("\nPresent (name, role, signature):\n");
    let rows = script
        .presence
        .values()
        .map(|p| p.max.unwrap_or(p.min + 1) as usize)
        .sum::<usize>()
        .max(4);
    for _ in 0..rows {
        out.push_str("  ______________________  ______________  ______________________\n");
    }
    if !script.parameters.is_empty() {
        out.push_str("\nParameters (default / value used):\n");
        for p in &script.parameters {
            let _ = writeln!(
                out,
                "  {:<22} {:<12} ________",
                show(&p.name),
                show(&p.default.to_string())
            );
            out.push_str(&wrap(&p.description, 70, "      "));
        }
    }
    out.push('\n');
    for step in &script.steps {
        let _ = writeln!(
            out,
            "{}\nStep {}  {}  [{}]  action: {}",
            "-".repeat(78),
            show(&step.id),
            show(&step.title),
            step.actor.as_str(),
            step.action
        );
        out.push_str(&wrap(&step.instructions, 72, "    "));
        for (k, v) in &step.with {
            let _ = writeln!(out, "    {}: {}", show(k), show(v));
        }
        out.push_str(
            "    Done at (UTC): ________   Initials: ______ ______ ______   Exception: [ ]\n",
        );
    }
    let _ = writeln!(
        out,
        "{}\nTranscript head hash (hex):\n  ____ ____ ____ ____ ____ ____ ____ ____\n  ____ ____ ____ ____ ____ ____ ____ ____\nHead hash words: ______________________________________________________________\nWitness signatures: ______________________   ______________________",
        "=".repeat(78)
    );
    out
}

/// HTML escaping on top of [`crate::text::show_lines`] (a bidi override shows as `\u{202e}`,
/// not as reversed text).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::text::show_lines(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The script as a self-contained HTML page for printing.
pub fn html(script: &Script) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\nbody{{font-family:serif;max-width:48em;margin:2em auto}}table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #000;padding:.3em;vertical-align:top}}.box{{display:inline-block;min-width:6em;border-bottom:1px solid #000}}.step{{page-break-inside:avoid;border:1px solid #000;margin:1em 0;padding:.5em}}\n</style></head><body>\n",
        esc(&script.title)
    );
    let _ = write!(
        out,
        "<h1>{}</h1>\n<p><code>{}</code> ({})</p>\n<p>{}</p>\n<p>People: {}</p>\n",
        esc(&script.title),
        esc(&script.name),
        esc(script.kind.as_str()),
        esc(&script.purpose),
        esc(&presence_line(script))
    );
    out.push_str("<p>Date: <span class=\"box\"></span> Place: <span class=\"box\"></span> Appliance bag serial: <span class=\"box\"></span></p>\n");
    out.push_str("<table><tr><th>Name</th><th>Role</th><th>Signature</th></tr>\n");
    for p in [
        Person::Administrator,
        Person::Keyholder,
        Person::Keyholder,
        Person::Keyholder,
        Person::Witness,
        Person::Witness,
    ] {
        let _ = writeln!(
            out,
            "<tr><td>&nbsp;</td><td>{}</td><td></td></tr>",
            p.as_str()
        );
    }
    out.push_str("</table>\n");
    if !script.parameters.is_empty() {
        out.push_str("<h2>Parameters</h2><table><tr><th>Name</th><th>Default</th><th>Used</th><th>Meaning</th></tr>\n");
        for p in &script.parameters {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td></td><td>{}</td></tr>",
                esc(&p.name),
                esc(&p.default.to_string()),
                esc(&p.description)
            );
        }
        out.push_str("</table>\n");
    }
    for step in &script.steps {
        let _ = write!(
            out,
            "<div class=\"step\"><h3>Step {} &mdash; {}</h3><p><b>{}</b> &middot; action <code>{}</code></p>",
            esc(&step.id),
            esc(&step.title),
            esc(step.actor.as_str()),
            esc(step.action.as_str())
        );
        for para in step.instructions.split("\n\n") {
            let _ = write!(out, "<p>{}</p>", esc(para));
        }
        for (k, v) in &step.with {
            let _ = write!(out, "<p><code>{}</code>: {}</p>", esc(k), esc(v));
        }
        out.push_str("<p>Done at (UTC): <span class=\"box\"></span> Initials: <span class=\"box\"></span> <span class=\"box\"></span> <span class=\"box\"></span> Exception: &#9744;</p></div>\n");
    }
    out.push_str("<h2>Seal</h2><p>Transcript head hash (hex): <span class=\"box\" style=\"min-width:40em\"></span></p><p>Head hash words: <span class=\"box\" style=\"min-width:40em\"></span></p><p>Witness signatures: <span class=\"box\" style=\"min-width:15em\"></span> <span class=\"box\" style=\"min-width:15em\"></span></p>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> Script {
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/bootstrap-root.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        Script::parse("bootstrap-root.toml", &text).unwrap()
    }

    #[test]
    fn text_form_has_every_step_with_boxes() {
        let s = script();
        let t = text(&s);
        for step in &s.steps {
            assert!(
                t.contains(&format!("Step {}  {}", step.id, step.title)),
                "{}",
                step.title
            );
        }
        assert_eq!(t.matches("Initials:").count(), s.steps.len());
        assert!(t.contains("Transcript head hash"));
        assert!(
            t.lines().all(|l| l.chars().count() <= 100),
            "lines fit a page"
        );
    }

    #[test]
    fn html_form_escapes_and_is_complete() {
        let mut s = script();
        s.steps[0].title = "<script>alert(1)</script> & more".into();
        let h = html(&s);
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(!h.contains("<script>"));
        assert_eq!(h.matches("class=\"step\"").count(), s.steps.len());
        assert!(h.ends_with("</html>\n"));
    }

    #[test]
    fn hostile_script_text_is_shown_escaped() {
        let mut s = script();
        s.title = "\u{1b}]0;owned\u{7}\u{202e}live".into();
        s.steps[0].instructions = "read \u{1b}[8mhidden\u{1b}[0m aloud".into();
        for out in [text(&s), html(&s)] {
            assert!(
                !out.contains('\u{1b}') && !out.contains('\u{202e}'),
                "{out}"
            );
            assert!(out.contains("\\u{202e}live"));
            assert!(out.contains("\\x1b[8mhidden"));
        }
    }
}
