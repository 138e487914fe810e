//! Verification, export and seal.

use crate::text::{show, show_indented};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use std::ops::Range;

use super::token::RowsPage;
use super::{lines_height, meter_lines};
use crate::tui::state::{DigestRow, Meter};

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

/// The export screen as drawn in its body area.
pub(super) struct ExportLayout {
    /// Its lines.
    pub lines: Vec<Line<'static>>,
    /// Where the files stand when they page (`None`: all on screen).
    pub page: Option<RowsPage>,
    /// The rows of the area (from its top) the files on screen take, each with its size and
    /// whole SHA-256 (`None`: no file on screen): a prompt opens beside them, never over them.
    pub files: Option<Range<usize>>,
}

/// The export screen's lines at `area` with its files paged from `scroll` (a file's name, size
/// and whole SHA-256 are never split between two pages), where the files stand when they page,
/// and the rows they take. Paged like the review and the signing rows ("files 4-6 of 9",
/// PgDn/PgUp): every file is reachable (before: files below the third were cut off at 80x24).
/// Rows are counted as drawn, a line wrapped at the area's width (a long destination's name
/// takes two rows).
pub(super) fn export_layout(
    area: Rect,
    files: &[(String, usize, String)],
    destinations: &[String],
    selected: usize,
    scroll: usize,
) -> ExportLayout {
    let mut lines = vec![Line::from(Span::styled(
        "Destination:",
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    for (i, d) in destinations.iter().enumerate() {
        let style = if i == selected {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(format!(" {} ", show(d)), style)));
    }
    if destinations.len() == 1 {
        lines.push(Line::from(Span::styled(
            " (no writable removable medium found; insert one to choose it)",
            Style::new().fg(Color::Gray),
        )));
    }
    lines.push(Line::raw(""));
    // How the files are written: left out only when it would leave no room for one file
    // (a small terminal), as the guide says the same.
    let note = lines.len()..lines.len() + 3;
    lines.push(Line::raw(
        "Each file is written under a temporary name, synced, renamed, read back and",
    ));
    lines.push(Line::raw(
        "compared; SHA256SUMS, with every whole SHA-256, is written last.",
    ));
    lines.push(Line::raw("Nothing is overwritten."));
    lines.push(Line::raw(
        "  file                         bytes  SHA-256 (whole, two rows a file)",
    ));
    // The whole SHA-256 of each file, as SHA256SUMS has it: 16 bytes a row in groups of four,
    // so a witness can compare every digit (before: only the first 16 bytes were shown).
    let file_rows: Vec<Vec<Line<'static>>> = files
        .iter()
        .map(|(name, size, sha256)| {
            let bytes = hex::decode(sha256).unwrap_or_default();
            let groups: Vec<String> = crate::transcript::display::hex_groups(&bytes)
                .split(' ')
                .map(String::from)
                .collect();
            groups
                .chunks(8)
                .enumerate()
                .map(|(i, chunk)| {
                    let head = if i == 0 {
                        format!("{:<24} {size:>9}", show(name))
                    } else {
                        String::new()
                    };
                    Line::raw(format!("  {head:<34}  {}", chunk.join(" ")))
                })
                .collect()
        })
        .collect();
    let height = usize::from(area.height);
    let rows: Vec<usize> = file_rows
        .iter()
        .map(|f| usize::from(lines_height(f, area.width)))
        .collect();
    let all: usize = rows.iter().sum();
    // The rows one file and the position line take under the heading.
    let one_file = rows.iter().copied().max().unwrap_or(1).max(1) + 1;
    if usize::from(lines_height(&lines, area.width)) + one_file.min(all) > height {
        let short: Vec<Line<'static>> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !note.contains(i))
            .map(|(_, l)| l.clone())
            .collect();
        if usize::from(lines_height(&short, area.width)) + one_file <= height {
            lines = short;
        }
    }
    let head = usize::from(lines_height(&lines, area.width));
    if head + all <= height {
        lines.extend(file_rows.into_iter().flatten());
        return ExportLayout {
            lines,
            page: None,
            files: (all > 0).then_some(head..head + all),
        };
    }
    let total = file_rows.len();
    // One row is the position line; a file takes two rows.
    let per_file = rows.iter().copied().max().unwrap_or(1).max(1);
    let room = height.saturating_sub(head + 1) / per_file;
    if room == 0 {
        lines.truncate(height.saturating_sub(1));
        lines.push(Line::from(Span::styled(
            format!("{total} file(s) below: enlarge the terminal to see them"),
            Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
        )));
        return ExportLayout {
            lines,
            page: None,
            files: None,
        };
    }
    let shown = room.min(total);
    let first = scroll.min(total - shown);
    let shown_rows: usize = rows.iter().skip(first).take(shown).sum();
    lines.extend(file_rows.into_iter().skip(first).take(shown).flatten());
    lines.push(super::token::page_line("file", first, shown, total));
    ExportLayout {
        lines,
        page: Some(RowsPage {
            first,
            shown,
            total,
        }),
        files: Some(head..head + shown_rows),
    }
}

pub(super) fn export(
    frame: &mut Frame<'_>,
    area: Rect,
    files: &[(String, usize, String)],
    destinations: &[String],
    selected: usize,
    scroll: usize,
) {
    let lines = export_layout(area, files, destinations, selected, scroll).lines;
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

pub(super) fn seal(frame: &mut Frame<'_>, area: Rect, artifacts: &[String], hash: &[DigestRow]) {
    let mut lines = if hash.is_empty() {
        vec![
            Line::raw("The seal closes the transcript: its hash covers every record and these"),
            Line::raw("files. Once it is written, its hash is shown and each keyholder signs it."),
            Line::raw(""),
        ]
    } else {
        let (sums, _) = super::review::sum_lines(hash, area.width);
        let mut l = vec![Line::raw("The seal hash every keyholder signed:")];
        // The block without its "To sign" heading: the signatures are made.
        l.extend(sums.into_iter().skip(1));
        l.push(Line::raw(""));
        l
    };
    for a in artifacts {
        lines.push(Line::raw(format!("  {}", show_indented(a))));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
