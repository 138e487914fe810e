//! Loading from the input media.

use crate::text::{show, show_message};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub(super) fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    what: &str,
    source: &str,
    keys: &[(String, String)],
) {
    let mut lines = vec![
        Line::from(Span::styled(
            show_message(what),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::raw(""),
        Line::raw(format!("From: {}", show(source))),
        Line::raw(""),
        Line::raw("Everything loaded is checked and recorded whole in the transcript."),
    ];
    if !keys.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            "Read aloud; the registry's operator compares each key id:",
            Style::new().add_modifier(Modifier::BOLD),
        )));
        for (role, id) in keys {
            lines.push(Line::raw(format!("  {}", show(role))));
            lines.push(Line::raw(format!("    {}", show_message(id))));
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
