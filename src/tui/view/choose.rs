//! Script choice: the ceremonies this Conclave can run.

use crate::text::{show, show_lines};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub(super) fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    scripts: &[(String, String, String)],
    selected: usize,
    workspace: &str,
) {
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Workspace: "),
            Span::styled(show(workspace), Style::new().fg(Color::LightCyan)),
        ]),
        Line::raw(""),
        Line::raw("Which ceremony is held today?"),
        Line::raw(""),
    ];
    for (i, (name, title, _)) in scripts.iter().enumerate() {
        let style = if i == selected {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(
            format!(" {:<26} {} ", show(name), show(title)),
            style,
        )));
    }
    if let Some((_, _, purpose)) = scripts.get(selected) {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            show_lines(purpose),
            Style::new().fg(Color::Gray).add_modifier(Modifier::ITALIC),
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
