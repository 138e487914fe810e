//! Screens of the administrator's simple steps: parameters, acknowledgements, the air-gap
//! check, the clock and the proposal.

use crate::text::{show, show_lines, show_message};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::good_bad;

pub(super) fn parameters(
    frame: &mut Frame<'_>,
    area: Rect,
    rows: &[(String, String, String)],
    selected: usize,
) {
    let mut lines = vec![
        Line::raw("Parameters of this ceremony (recorded in the transcript):"),
        Line::raw(""),
    ];
    if rows.is_empty() {
        lines.push(Line::raw("This ceremony has no parameters."));
    }
    for (i, (name, value, _)) in rows.iter().enumerate() {
        let style = if i == selected {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<22}", show(name)), style),
            Span::styled(
                format!(" {}", show_message(value)),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ]));
    }
    if let Some((_, _, description)) = rows.get(selected) {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            show_lines(description),
            Style::new().fg(Color::Gray),
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

pub(super) fn acknowledge(
    frame: &mut Frame<'_>,
    area: Rect,
    prompt: &str,
    record_text: bool,
    text: &str,
) {
    // One line per line of the prompt (a Span does not break at a newline).
    let mut lines: Vec<Line<'_>> = show_lines(prompt)
        .lines()
        .map(|l| {
            Line::from(Span::styled(
                l.to_string(),
                Style::new().add_modifier(Modifier::BOLD),
            ))
        })
        .collect();
    lines.push(Line::raw(""));
    if record_text {
        lines.push(Line::from(vec![
            Span::raw("Recorded text: "),
            Span::styled(
                format!("{}_", show_message(text)),
                Style::new().fg(Color::Yellow),
            ),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

/// A screen whose first reading of the machine has not come yet.
pub(super) fn checking(frame: &mut Frame<'_>, area: Rect, what: &str) {
    frame.render_widget(
        Paragraph::new(Line::raw(what.to_string())).wrap(Wrap { trim: true }),
        area,
    );
}

pub(super) fn airgap(frame: &mut Frame<'_>, area: Rect, interfaces: &[String], radios: &[String]) {
    let ok = interfaces.is_empty() && radios.is_empty();
    let mut lines = vec![Line::from(Span::styled(
        if ok {
            "AIR GAP OK: no network interface but loopback, no wireless or Bluetooth device"
        } else {
            "NOT AIR-GAPPED: this machine can reach a network"
        },
        good_bad(ok),
    ))];
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::raw("Network interfaces other than lo: "),
        Span::styled(
            if interfaces.is_empty() {
                "none".to_string()
            } else {
                interfaces.join(", ")
            },
            good_bad(interfaces.is_empty()),
        ),
    ]));
    lines.push(Line::from(vec![
        Span::raw("Wireless and Bluetooth devices:   "),
        Span::styled(
            if radios.is_empty() {
                "none".to_string()
            } else {
                radios.join(", ")
            },
            good_bad(radios.is_empty()),
        ),
    ]));
    if !ok {
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "A real ceremony stops here. A practice ceremony records it as a warning.",
        ));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

pub(super) fn clock(frame: &mut Frame<'_>, area: Rect, now: &str, reference: &str) {
    let lines = vec![
        Line::raw("The machine's clock (UTC). Expiry dates are computed from it."),
        Line::raw(""),
        Line::from(Span::styled(
            format!("   {now}"),
            Style::new()
                .fg(Color::LightCyan)
                .add_modifier(Modifier::BOLD),
        )),
        Line::raw(""),
        Line::raw("Read a reference clock (a phone, a radio clock) and type its time in UTC"),
        Line::raw(format!(
            "(e, YYYY-MM-DD HH:MM): it must be within {} minutes of the machine's clock.",
            crate::ceremony::engine::CLOCK_TOLERANCE_SECONDS / 60
        )),
        Line::raw(""),
        Line::raw(format!(
            "   Reference: {}",
            if reference.is_empty() {
                "(not typed yet)".to_string()
            } else {
                show(reference).to_string()
            }
        )),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

pub(super) fn propose(frame: &mut Frame<'_>, area: Rect) {
    let lines = vec![
        Line::raw("Conclave builds the new metadata from the inputs and the parameters."),
        Line::raw("Nothing is signed yet: the next step shows every change for review."),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
