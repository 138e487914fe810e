//! `?`: the keys of the current screen and the keys that work everywhere.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph};

use ratatui::widgets::Wrap;

use super::{centered, wrapped_height};

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, keys: &[(String, String)]) {
    let mut lines = vec![Line::raw("This screen:")];
    for (k, what) in keys {
        lines.push(Line::from(vec![
            Span::styled(format!(" {k:<10}"), Style::new().fg(Color::LightCyan)),
            Span::raw(what.clone()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw("Everywhere:"));
    for (k, what) in [
        ("?", "show or hide this help"),
        ("!", "a witness records an exception (in the transcript)"),
        ("Esc", "back, where going back is safe; cancels a prompt"),
        (
            "Ctrl-C",
            "stop; the same command continues the ceremony later",
        ),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!(" {k:<10}"), Style::new().fg(Color::LightCyan)),
            Span::raw(what),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "Signing and destructive actions ask for a confirmation of their own",
    ));
    lines.push(Line::raw(
        "(y), separate from the PIN; keys typed ahead are discarded first.",
    ));
    let r = centered(area, 76, u16::try_from(lines.len() + 2).unwrap_or(20));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" Keys ")),
        r,
    );
}

/// The welcome of a new ceremony over its first step, above the key line (Enter begins).
pub(super) fn welcome(frame: &mut Frame<'_>, area: Rect, paragraphs: &[String]) {
    let above_keys = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    let width = 76u16.min(above_keys.width);
    // One column of padding each side: the words never touch the border ("every│key").
    let inner = width.saturating_sub(4);
    let mut lines = Vec::new();
    let mut height = 2u16;
    for p in paragraphs {
        height = height.saturating_add(if p.is_empty() {
            1
        } else {
            wrapped_height(p, inner, true)
        });
        lines.push(Line::raw(p.clone()));
    }
    let r = centered(above_keys, width, height);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::new()
                .borders(Borders::ALL)
                .padding(Padding::horizontal(1))
                .title(" Welcome "),
        ),
        r,
    );
}
