//! Verification, export and seal.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::meter_lines;
use crate::tui::state::Meter;

pub(super) fn verify(frame: &mut Frame<'_>, area: Rect, meters: &[Meter]) {
    let mut lines = vec![
        Line::raw("Conclave verifies the signed metadata again, as a client would:"),
        Line::raw("every signature over the reviewed bytes, every threshold, the new root"),
        Line::raw("against the current one."),
        Line::raw(""),
    ];
    lines.extend(meter_lines(meters));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

pub(super) fn export(
    frame: &mut Frame<'_>,
    area: Rect,
    files: &[(String, usize)],
    destination: &str,
) {
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Destination: "),
            Span::styled(
                destination.to_string(),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ]),
        Line::raw("Each file is written under a temporary name, synced, renamed, read back and"),
        Line::raw("compared; SHA256SUMS is written last. Nothing is overwritten."),
        Line::raw(""),
    ];
    for (name, size) in files {
        lines.push(Line::raw(format!("  {name:<28} {size:>9} bytes")));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

pub(super) fn seal(frame: &mut Frame<'_>, area: Rect, artifacts: &[String]) {
    let mut lines = vec![
        Line::raw("The seal closes the transcript: its hash covers every record and these"),
        Line::raw("files. Then each keyholder signs the seal with their token."),
        Line::raw(""),
    ];
    for a in artifacts {
        lines.push(Line::raw(format!("  {a}")));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
