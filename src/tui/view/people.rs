//! Roll call: the names of the people present.

use crate::text::show_message;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub(super) fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    fields: &[String; 3],
    selected: usize,
    min_keyholders: u32,
    min_witnesses: u32,
) {
    let labels = [
        "Ceremony administrator".to_string(),
        format!("Keyholders (at least {min_keyholders})"),
        format!("Witnesses (at least {min_witnesses})"),
    ];
    let mut lines = vec![
        Line::raw("Names as they will stand in the transcript; lists separated by commas."),
        Line::raw(""),
    ];
    for (i, (label, value)) in labels.iter().zip(fields.iter()).enumerate() {
        let style = if i == selected {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {label:<28}"), style),
            Span::raw(format!(" {}", show_message(value))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
