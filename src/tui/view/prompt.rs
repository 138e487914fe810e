//! The prompt overlay: confirmation (never pre-selected), masked PIN, a line of text.

use crate::text::{show_lines, show_message};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::tui::state::Prompt;

/// The prompt over `area`. `keep_below`: the row where what the room reads while answering
/// starts (the review's digest block): the prompt is drawn above it when it fits there whole,
/// else centred (a cut question would be worse).
pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, p: &Prompt, keep_below: Option<u16>) {
    let (title, lines, colour) = match p {
        Prompt::None => return,
        Prompt::Confirm { question } => (
            " Confirm ",
            show_lines(question)
                .split('\n')
                .map(|l| Line::raw(l.to_string()))
                .chain([
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
                ])
                .collect(),
            Color::Yellow,
        ),
        Prompt::Pin {
            label,
            field,
            typed,
            practice_hint,
        } => {
            let mut l: Vec<Line<'static>> = show_lines(label)
                .split('\n')
                .map(|x| Line::raw(x.to_string()))
                .collect();
            l.extend([
                Line::raw(""),
                Line::from(vec![
                    Span::raw(format!("{}: ", show_message(field))),
                    Span::styled(
                        format!("{}_", "*".repeat(*typed)),
                        Style::new().add_modifier(Modifier::BOLD),
                    ),
                ]),
                Line::raw(""),
                Line::raw("Enter: log in   Esc: cancel"),
            ]);
            if *practice_hint {
                l.push(Line::from(Span::styled(
                    "Practice token: F2 fills in its practice PIN",
                    Style::new().fg(Color::Yellow),
                )));
            }
            let title = if field == "PIN" {
                " PIN (not shown, not recorded) "
            } else {
                " management key (not shown, not recorded) "
            };
            (title, l, Color::LightCyan)
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
    // Rows the lines take wrapped inside the box (68 columns), the borders and a spare row.
    let inner = usize::from(area.width.min(70).saturating_sub(2).max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let height = u16::try_from(rows + 3).unwrap_or(u16::MAX);
    let above = keep_below.map(|y| Rect {
        height: y.saturating_sub(area.y).min(area.height),
        ..area
    });
    let r = match above {
        Some(top) if height <= top.height => centered(top, 70, height),
        _ => centered(area, 70, height),
    };
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
