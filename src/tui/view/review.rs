//! The review: what changes against the trusted metadata, and the digests of the bytes to
//! sign, each with a short form people read aloud.

use crate::text::{show, show_indented};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::tui::state::DigestRow;

pub(super) fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    lines: &[String],
    digests: &[DigestRow],
    scroll: usize,
) {
    let digest_height = u16::try_from(digests.len() * 3 + 1)
        .unwrap_or(u16::MAX)
        .min(area.height / 2);
    let [changes, sums] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(digest_height)]).areas(area);
    let body: Vec<Line<'_>> = lines
        .iter()
        .skip(scroll)
        .map(|l| {
            let t = l.trim_start();
            let style = if t.starts_with("- removed") {
                Style::new().fg(Color::LightRed)
            } else if t.starts_with("+ added") {
                Style::new().fg(Color::LightGreen)
            } else {
                Style::new()
            };
            // Each line is shown whole (an owner padded with spaces cannot wrap into a line
            // of its own: the engine renders names with `text::show`).
            Line::from(Span::styled(show_indented(l), style))
        })
        .collect();
    let more = if lines.len() > scroll + usize::from(changes.height.saturating_sub(2)) {
        " ↓ more (PgDn) "
    } else {
        ""
    };
    frame.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::TOP | Borders::BOTTOM)
                .title(format!(" What changes ({} lines) ", lines.len()))
                .title_bottom(more),
        ),
        changes,
    );
    let mut out = vec![Line::from(Span::styled(
        "To sign (SHA-256 of the canonical bytes; read the words aloud):",
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    for d in digests {
        out.push(Line::from(vec![
            Span::styled(
                format!("{:<10}", show(&d.role)),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                d.words.clone(),
                Style::new()
                    .fg(Color::LightCyan)
                    .add_modifier(Modifier::BOLD),
            ),
        ]));
        // The hex in two rows of eight groups, so it fits 80 columns.
        let groups: Vec<&str> = d.hex_groups.split(' ').collect();
        for chunk in groups.chunks(8) {
            out.push(Line::from(Span::styled(
                format!("          {}", chunk.join(" ")),
                Style::new().fg(Color::Gray),
            )));
        }
    }
    frame.render_widget(Paragraph::new(out).wrap(Wrap { trim: false }), sums);
}
