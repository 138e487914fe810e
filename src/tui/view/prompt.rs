//! The prompt overlay: confirmation (never pre-selected), masked PIN, a line of text.

use crate::text::{show_lines, show_message};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::tui::state::Prompt;

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, p: &Prompt) {
    let (title, lines, colour) = match p {
        Prompt::None => return,
        Prompt::Confirm { question } => (
            " Confirm ",
            vec![
                Line::raw(show_lines(question)),
                Line::raw(""),
                Line::from(vec![
                    Span::styled(" y ", Style::new().fg(Color::Black).bg(Color::Yellow)),
                    Span::raw(" yes    "),
                    Span::styled(
                        " any other key ",
                        Style::new().fg(Color::Black).bg(Color::Gray),
                    ),
                    Span::raw(" no"),
                ]),
            ],
            Color::Yellow,
        ),
        Prompt::Pin {
            label,
            typed,
            practice_hint,
        } => {
            let mut l = vec![
                Line::raw(show_lines(label)),
                Line::raw(""),
                Line::from(vec![
                    Span::raw("PIN: "),
                    Span::styled(
                        format!("{}_", "*".repeat(*typed)),
                        Style::new().add_modifier(Modifier::BOLD),
                    ),
                ]),
                Line::raw(""),
                Line::raw("Enter: log in   Esc: cancel"),
            ];
            if *practice_hint {
                l.push(Line::from(Span::styled(
                    "Practice token: F2 fills in its practice PIN",
                    Style::new().fg(Color::Yellow),
                )));
            }
            (" PIN (not shown, not recorded) ", l, Color::LightCyan)
        }
        Prompt::Text { label, value } => (
            " Type ",
            vec![
                Line::raw(show_lines(label)),
                Line::raw(""),
                Line::from(Span::styled(
                    format!("{}_", show_message(value)),
                    Style::new().fg(Color::Yellow),
                )),
                Line::raw(""),
                Line::raw("Enter: done   Esc: cancel"),
            ],
            Color::LightCyan,
        ),
    };
    let r = centered(area, 70, u16::try_from(lines.len() + 4).unwrap_or(10));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(Style::new().fg(colour))
                .title(title),
        ),
        r,
    );
}
