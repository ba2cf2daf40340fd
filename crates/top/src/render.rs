//! Draws the [`App`]: a tab line, the current view's panes (side by side on wide screens),
//! a footer with the filter, the source and the key hint, and the help or detail overlay;
//! and the same tables as plain text for `--once`.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table as TableWidget, Widget, Wrap};

use super::app::{App, Overlay};
use super::keys::KEYS;
use super::model::{ALWAYS, Pane, Table, Tone, View, age, clock};

/// Space between columns.
const SPACING: u16 = 1;

/// A text column is not cut below this many characters while a less important column can
/// be dropped instead.
const MIN_TEXT: usize = 16;

/// From this width on, the panes of a view stand side by side.
const SIDE_BY_SIDE: u16 = 140;

/// `s` characters at most `width` wide, cut with an ellipsis.
fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// The colour of a tone.
fn style(tone: Tone) -> Style {
    match tone {
        Tone::Page => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Tone::Ticket => Style::new().fg(Color::Yellow),
        Tone::Ok => Style::new().fg(Color::Green),
        Tone::Dim => Style::new().fg(Color::DarkGray),
        Tone::Plain => Style::new(),
    }
}

/// The columns shown in `width` and their widths: each as wide as its widest cell (or
/// header, with the sort arrow); text columns without any value are left out. Less important columns are dropped while text would be cut
/// below [`MIN_TEXT`]; then the widest text columns are cut, to the same width, so short
/// ones (a name) stay whole.
fn widths(table: &Table, width: u16) -> Vec<(usize, u16)> {
    let natural = |i: usize| {
        let arrow = usize::from(table.sort.is_some_and(|(s, _)| s == i));
        let widest = table
            .rows
            .iter()
            .map(|r| r.cells[i].text.chars().count())
            .max();
        widest
            .unwrap_or(0)
            .max(table.columns[i].header.chars().count() + arrow)
    };
    // A text column no row has a value for (nodes on an older Strata) takes no room.
    let blank = |i: usize| {
        !table.columns[i].right
            && !table.rows.is_empty()
            && table.rows.iter().all(|r| r.cells[i].text.is_empty())
    };
    let mut shown: Vec<usize> = (0..table.columns.len()).filter(|i| !blank(*i)).collect();
    let needed = |shown: &[usize]| -> usize {
        let spacing = usize::from(SPACING) * shown.len().saturating_sub(1);
        let cols: usize = shown
            .iter()
            .map(|&i| {
                if table.columns[i].grow {
                    natural(i).min(MIN_TEXT)
                } else {
                    natural(i)
                }
            })
            .sum();
        spacing + cols
    };
    while needed(&shown) > usize::from(width) {
        // The least important column; of equals, the rightmost.
        let drop = shown
            .iter()
            .enumerate()
            .filter(|(_, i)| table.columns[**i].keep != ALWAYS)
            .min_by_key(|(at, i)| (table.columns[**i].keep, usize::MAX - at))
            .map(|(at, _)| at);
        match drop {
            Some(at) => {
                shown.remove(at);
            }
            None => break,
        }
    }
    let spacing = usize::from(SPACING) * shown.len().saturating_sub(1);
    let fixed: usize = shown
        .iter()
        .filter(|i| !table.columns[**i].grow)
        .map(|i| natural(*i))
        .sum();
    let budget = usize::from(width).saturating_sub(spacing + fixed);
    let grown = |cap: usize| -> usize {
        shown
            .iter()
            .filter(|i| table.columns[**i].grow)
            .map(|i| natural(*i).min(cap))
            .sum()
    };
    let mut cap = shown.iter().map(|i| natural(*i)).max().unwrap_or(0);
    while cap > 0 && grown(cap) > budget {
        cap -= 1;
    }
    shown
        .into_iter()
        .map(|i| {
            let w = if table.columns[i].grow {
                natural(i).min(cap)
            } else {
                natural(i)
            };
            (i, w as u16)
        })
        .collect()
}

/// Where a pane is and how it is shown.
struct PaneState {
    /// The selected row, in the focused pane.
    selected: Option<usize>,
    /// The first row shown.
    offset: usize,
    /// Whether the data is stale (drawn dim).
    stale: bool,
}

/// Title line and rows of `table` in `area` from `state.offset`; returns how many rows fit.
fn draw_table(table: &Table, state: &PaneState, area: Rect, buf: &mut Buffer) -> usize {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let count = if table.rows.len() == table.total {
        format!("{}", table.total)
    } else {
        format!("{}/{}", table.rows.len(), table.total)
    };
    let mut head = Style::new().add_modifier(Modifier::BOLD);
    if state.selected.is_some() {
        head = head.add_modifier(Modifier::UNDERLINED);
    }
    let mut spans = vec![Span::styled(format!("{} ({count})", table.title), head)];
    let fit = usize::from(body.height.saturating_sub(1));
    if let Some(sel) = state.selected.filter(|_| table.rows.len() > fit) {
        spans.push(Span::raw(format!(
            "  row {} of {}",
            sel + 1,
            table.rows.len()
        )));
    }
    if state.stale {
        spans.push(Span::styled(
            "  STALE: Strata unreachable, data of the last refresh",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans).render(title, buf);

    let widths = widths(table, body.width);
    let cell = |i: usize, w: u16, text: &str| {
        let line = Line::from(truncate(text, usize::from(w)));
        if table.columns[i].right {
            line.alignment(Alignment::Right)
        } else {
            line
        }
    };
    let header = Row::new(widths.iter().map(|&(i, w)| {
        let arrow = match table.sort {
            Some((s, false)) if s == i => "▲",
            Some((s, true)) if s == i => "▼",
            _ => "",
        };
        cell(i, w, &format!("{}{arrow}", table.columns[i].header))
    }))
    .style(Style::new().add_modifier(Modifier::REVERSED));
    let rows = table
        .rows
        .iter()
        .enumerate()
        .skip(state.offset)
        .take(fit)
        .map(|(at, r)| {
            let cells = widths.iter().map(|&(i, w)| {
                let c = cell(i, w, &r.cells[i].text);
                if state.stale {
                    c.style(style(Tone::Dim))
                } else if table.tone_columns.is_empty() || table.tone_columns.contains(&i) {
                    c.style(style(r.tone))
                } else {
                    c
                }
            });
            let row = Row::new(cells);
            if state.selected == Some(at) {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        });
    TableWidget::new(rows, widths.iter().map(|(_, w)| Constraint::Length(*w)))
        .header(header)
        .column_spacing(SPACING)
        .render(body, buf);
    if table.rows.is_empty() && body.height > 1 {
        let [_, note] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        let text = if table.total > 0 {
            "no row matches the filter (Esc clears it)"
        } else {
            table.empty
        };
        Paragraph::new(format!("  {text}")).render(note, buf);
    }
    fit
}

/// The first row to show so that `selected` is visible in `fit` rows, moving as little
/// as possible from `offset`.
fn scrolled(offset: usize, selected: usize, fit: usize, rows: usize) -> usize {
    let offset = offset.min(rows.saturating_sub(fit));
    if fit == 0 || selected < offset {
        selected
    } else if selected >= offset + fit {
        selected + 1 - fit
    } else {
        offset
    }
}

/// The footer: the filter, errors (they must be seen), the source; the key hint on the
/// right, never cut (more of it on wider screens).
fn footer(app: &App, now_ms: i64, area: Rect, buf: &mut Buffer) {
    let hints = [
        "? help",
        "q quit",
        "/ filter",
        "⏎ detail",
        "tab pane",
        "↑↓ move",
        "s sort",
    ];
    let width = usize::from(area.width);
    let mut hint = String::new();
    for n in (2..=hints.len()).rev() {
        // The most important hints; `? help · q quit` always.
        let mut shown: Vec<&str> = hints[..n].to_vec();
        shown.rotate_left(2);
        hint = shown.join(" · ");
        if hint.chars().count() + 45 <= width {
            break;
        }
    }
    let hint_len = hint.chars().count().min(width) as u16;
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(hint_len)]).areas(area);
    Line::from(truncate(&hint, usize::from(hint_len)))
        .alignment(Alignment::Right)
        .render(right, buf);

    let mut spans: Vec<Span> = Vec::new();
    if app.overlay == Overlay::Filter {
        spans.push(Span::styled(
            format!("/{}▏", app.filter),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(" Enter keep · Esc clear  "));
    } else if !app.filter.is_empty() {
        spans.push(Span::styled(
            format!("filter: {}", app.filter),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(" (Esc clears) · "));
    }
    if let Some(e) = &app.error {
        spans.push(Span::styled(
            format!("ERROR {} ", e.replace('\n', " ")),
            Style::new().fg(Color::White).bg(Color::Red),
        ));
        spans.push(Span::raw(" "));
    }
    let mut source = format!(
        "{} · {} UTC, {} ago",
        app.url,
        clock(app.refreshed_ms),
        age(now_ms - app.refreshed_ms)
    );
    if width >= 120 {
        source.push_str(&format!(
            ", every {}",
            humantime::format_duration(app.interval)
        ));
    }
    spans.push(Span::raw(source));
    // Cut at the left part's width, an ellipsis at the end.
    let room = usize::from(left.width.saturating_sub(1));
    let mut used = 0;
    let mut cut = Vec::new();
    for s in spans {
        let n = s.content.chars().count();
        if used + n <= room {
            used += n;
            cut.push(s);
        } else {
            let content = truncate(&s.content, room - used);
            cut.push(Span::styled(content, s.style));
            break;
        }
    }
    Line::from(cut).render(left, buf);
}

/// The tab line: views, with counts (open findings/firing alerts).
fn tabs(app: &App) -> Line<'static> {
    let mut spans = vec![Span::styled(
        "strata top ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    let s = &app.snapshot;
    for v in View::ALL {
        let count = match v {
            View::Engines => format!("{}", s.engines.len()),
            View::Gpus => format!("{}", s.gpus.len()),
            View::Findings => format!("{}/{}", s.findings.len(), s.alerts.len()),
        };
        let label = format!(" {} {} ({count}) ", v.index() + 1, v.name());
        let style = if v == app.view() {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            let worst = match v {
                View::Findings => (s.findings.iter().map(|f| &f.severity))
                    .chain(s.alerts.iter().map(|a| &a.severity))
                    .map(|x| Tone::of(x))
                    .filter(|t| matches!(t, Tone::Page | Tone::Ticket))
                    .min()
                    .unwrap_or(Tone::Plain),
                _ => Tone::Plain,
            };
            style(worst)
        };
        spans.push(Span::styled(label, style));
    }
    Line::from(spans)
}

/// A box of `w`×`h` centred in `area` (cut to it).
fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The help overlay: every key.
fn help(area: Rect, buf: &mut Buffer) {
    let key_w = KEYS
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {k:<key_w$}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let widest = KEYS
        .iter()
        .map(|(_, w)| w.chars().count())
        .max()
        .unwrap_or(0);
    let r = centred(area, (key_w + widest + 6) as u16, KEYS.len() as u16 + 2);
    Clear.render(r, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .title(" Keys ")
                .title_bottom(" Esc close "),
        )
        .render(r, buf);
}

/// The detail overlay, scrolled by `scroll` lines.
fn detail(d: &super::detail::Detail, scroll: usize, area: Rect, buf: &mut Buffer) {
    let r = centred(area, area.width.saturating_sub(4).max(20), area.height);
    Clear.render(r, buf);
    let lines: Vec<Line> = d
        .lines
        .iter()
        .map(|(tone, text)| Line::styled(text.clone(), style(*tone)))
        .collect();
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((scroll.min(usize::from(u16::MAX)) as u16, 0))
        .block(
            Block::bordered()
                .title(format!(" {} ", d.title))
                .title_bottom(" Esc close · ↑↓ scroll "),
        )
        .render(r, buf);
}

/// Draws the whole UI at `now_ms`.
pub fn draw(frame: &mut Frame, app: &App, now_ms: i64) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(tabs(app), top);
    footer(app, now_ms, bottom, frame.buffer_mut());
    let panes = app.view().panes();
    let areas = if body.width >= SIDE_BY_SIDE {
        Layout::horizontal(panes.iter().map(|_| Constraint::Fill(1)))
            .spacing(2)
            .split(body)
    } else {
        Layout::vertical(panes.iter().map(|_| Constraint::Fill(1))).split(body)
    };
    for (&pane, area) in panes.iter().zip(areas.iter()) {
        let t = app.table(pane, now_ms);
        let focused = pane == app.focus;
        let selected = app.selected(pane, &t);
        let fit = usize::from(area.height.saturating_sub(2));
        let i = pane.index();
        let offset = scrolled(app.offset[i].get(), selected, fit, t.rows.len());
        app.offset[i].set(offset);
        let state = PaneState {
            selected: (focused && !t.rows.is_empty()).then_some(selected),
            offset,
            stale: app.stale(),
        };
        let fit = draw_table(&t, &state, *area, frame.buffer_mut());
        if focused {
            app.page.set(fit);
        }
    }
    match &app.overlay {
        Overlay::Help => help(body, frame.buffer_mut()),
        Overlay::Detail(d, scroll) => detail(d, *scroll, body, frame.buffer_mut()),
        Overlay::None | Overlay::Filter => {}
    }
}

/// Every view's tables as plain text `width` columns wide (for `--once`).
pub fn plain(app: &App, now_ms: i64, width: u16) -> String {
    let mut out = format!(
        "strata top: {} at {} UTC\n",
        app.url,
        clock(app.refreshed_ms)
    );
    for pane in Pane::ALL {
        let t = app.table(pane, now_ms);
        // Title, header and rows (or the note of an empty table).
        let height = 2 + t.rows.len().max(1) as u16;
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        let state = PaneState {
            selected: None,
            offset: 0,
            stale: app.stale(),
        };
        draw_table(&t, &state, area, &mut buf);
        out.push('\n');
        for y in 0..height {
            let line: String = (0..width).map(|x| buf[(x, y)].symbol()).collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::press;
    use crate::model::tests::sample;
    use crate::model::{Alert, Snapshot};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyCode;
    use std::time::Duration;

    const NOW: i64 = 1_060_000;

    /// The screen of `app` at `w`×`h`.
    fn buffer(app: &App, w: u16, h: u16) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app, NOW)).unwrap();
        t.backend().buffer().clone()
    }

    /// The screen of `app` at `w`×`h`, one string per line.
    fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
        let buf = buffer(app, w, h);
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect())
            .collect()
    }

    /// The foreground colour where `text` starts on the screen.
    fn colour_of(app: &App, w: u16, h: u16, text: &str) -> Color {
        let buf = buffer(app, w, h);
        for y in 0..h {
            let line: Vec<&str> = (0..w).map(|x| buf[(x, y)].symbol()).collect();
            let s: String = line.concat();
            if let Some(at) = s.find(text) {
                let x = s[..at].chars().count() as u16;
                return buf[(x, y)].fg;
            }
        }
        panic!("{text} not on screen")
    }

    fn app(s: Snapshot) -> App {
        App::new(
            "http://127.0.0.1:9464",
            Duration::from_secs(2),
            s,
            NOW - 3000,
        )
    }

    /// The sample with 17 firing alerts, `Alert-01` .. `Alert-17`.
    fn many_alerts() -> Snapshot {
        let mut s = sample();
        s.alerts = (1..=17)
            .map(|i| Alert {
                name: format!("Alert-{i:02}"),
                severity: "ticket".into(),
                instance: "127.0.0.1:42759".into(),
                summary: format!("summary {i}"),
                active_ms: Some(NOW - 1000 * i),
                ..Alert::default()
            })
            .collect();
        s
    }

    #[test]
    fn engines_at_80x24_show_names_model_node_and_the_key_hint() {
        let lines = screen(&app(sample()), 80, 24);
        let all = lines.join("\n");
        assert!(lines.iter().all(|l| l.chars().count() == 80));
        assert!(lines[0].contains("1 Engines (3)") && lines[0].contains("3 Findings (1/1)"));
        assert!(lines[1].starts_with("Engines (3)"), "{all}");
        for h in [
            "NAME▲", "ENGINE", "MODEL", "NODE", "RUN/WAIT", "KV%", "TTFT95", "TOK/s",
        ] {
            assert!(lines[2].contains(h), "{h} in {:?}", lines[2]);
        }
        // The least important column gives way; the identity stays whole.
        assert!(!lines[2].contains("PRE/s"), "{:?}", lines[2]);
        assert!(lines[3].starts_with("127.0.0.1:38049"), "{all}");
        let vllm_a = lines
            .iter()
            .find(|l| l.starts_with("vllm-a"))
            .expect("vllm-a");
        // The address fallback makes NAME wide: the model is cut, with an ellipsis.
        assert!(vllm_a.contains("Llama-3.1-8B-Instr… "), "{vllm_a:?}");
        assert!(vllm_a.contains("demo-node-a") && vllm_a.contains("29/2"));
        assert!(vllm_a.trim_end().ends_with("1279"), "{vllm_a:?}");
        assert!(lines[4].starts_with("tgi-a") && lines[4].contains("45/81"));
        assert!(
            lines[23].starts_with("http://127.0.0.1:9464 · "),
            "{:?}",
            lines[23]
        );
        assert!(lines[23].contains("3s ago"), "{:?}", lines[23]);
        assert!(
            lines[23].trim_end().ends_with("? help · q quit"),
            "{:?}",
            lines[23]
        );
        // Without node names anywhere, the NODE column takes no room.
        let mut nameless = sample();
        for e in &mut nameless.engines {
            e.node.clear();
        }
        assert!(!screen(&app(nameless), 80, 24)[2].contains("NODE"));
        // With every engine named, the whole model fits.
        let mut named = sample();
        named.engines[0].name = "vllm-b".into();
        let lines = screen(&app(named), 80, 24);
        assert!(lines[5].starts_with("vllm-b"), "{:?}", lines[5]);
        assert!(
            lines[5].contains("Llama-3.1-8B-Instruct "),
            "{:?}",
            lines[5]
        );
    }

    #[test]
    fn rows_take_the_colour_of_their_severity() {
        let mut a = app(sample());
        assert_eq!(
            colour_of(&a, 80, 24, "vllm-a"),
            Color::Red,
            "a page finding"
        );
        assert_eq!(
            colour_of(&a, 80, 24, "tgi-a"),
            Color::Yellow,
            "a ticket alert"
        );
        assert_eq!(colour_of(&a, 80, 24, "127.0.0.1:38049"), Color::Green);
        press(&mut a, KeyCode::Char('3'));
        assert_eq!(colour_of(&a, 80, 24, "cache_thrash"), Color::Red);
        assert_eq!(
            colour_of(&a, 80, 24, "LLMRequestQueueBackup"),
            Color::Yellow
        );
        a.update(Err("down".into()), NOW);
        assert_eq!(colour_of(&a, 80, 24, "cache_thrash"), Color::DarkGray);
    }

    #[test]
    fn scrolling_reveals_row_17_of_17() {
        let mut a = app(many_alerts());
        press(&mut a, KeyCode::Char('3'));
        press(&mut a, KeyCode::Tab);
        let all = screen(&a, 80, 24).join("\n");
        assert!(
            all.contains("Alert-01") && !all.contains("Alert-17"),
            "{all}"
        );
        for _ in 0..16 {
            press(&mut a, KeyCode::Char('j'));
        }
        let all = screen(&a, 80, 24).join("\n");
        assert!(
            all.contains("Alert-17") && all.contains("row 17 of 17"),
            "{all}"
        );
        assert!(!all.contains("Alert-01"), "scrolled past the first: {all}");
        press(&mut a, KeyCode::Home);
        let all = screen(&a, 80, 24).join("\n");
        assert!(
            all.contains("Alert-01") && all.contains("row 1 of 17"),
            "{all}"
        );
        press(&mut a, KeyCode::PageDown);
        press(&mut a, KeyCode::End);
        let lines = screen(&a, 80, 24);
        let last = lines
            .iter()
            .find(|l| l.contains("Alert-17"))
            .expect("row 17");
        assert!(last.contains("summary 17"), "{last:?}");
    }

    #[test]
    fn the_filter_narrows_and_shows_in_the_footer() {
        let mut a = app(sample());
        press(&mut a, KeyCode::Char('/'));
        for c in "tgi".chars() {
            press(&mut a, KeyCode::Char(c));
        }
        let lines = screen(&a, 80, 24);
        assert!(lines[1].starts_with("Engines (1/3)"), "{:?}", lines[1]);
        assert!(lines[3].starts_with("tgi-a") && !lines[4].contains("vllm"));
        assert!(lines[23].starts_with("/tgi"), "{:?}", lines[23]);
        press(&mut a, KeyCode::Enter);
        let lines = screen(&a, 80, 24);
        assert!(lines[23].starts_with("filter: tgi"), "{:?}", lines[23]);
        assert!(lines[23].contains("q quit"));
        press(&mut a, KeyCode::Char('/'));
        press(&mut a, KeyCode::Char('x'));
        let all = screen(&a, 80, 24).join("\n");
        assert!(all.contains("no row matches the filter"), "{all}");
        press(&mut a, KeyCode::Esc);
        assert!(screen(&a, 80, 24)[1].starts_with("Engines (3)"));
    }

    #[test]
    fn question_mark_shows_every_key() {
        let mut a = app(sample());
        press(&mut a, KeyCode::Char('?'));
        let all = screen(&a, 80, 24).join("\n");
        assert!(all.contains("Keys"), "{all}");
        for (k, what) in KEYS {
            assert!(
                all.contains(k) && all.contains(what),
                "{k} {what} in\n{all}"
            );
        }
        press(&mut a, KeyCode::Esc);
        assert!(!screen(&a, 80, 24).join("\n").contains("Keys"));
    }

    #[test]
    fn enter_shows_the_detail_of_a_finding_and_an_alert() {
        let mut a = app(sample());
        press(&mut a, KeyCode::Char('3'));
        press(&mut a, KeyCode::Enter);
        let all = screen(&a, 80, 24).join("\n");
        for s in [
            "Finding cache_thrash",
            "page · open 1m",
            "Summary: KV cache full on vllm-a",
            "Action: Lower max_num_seqs",
            "vllm-a Llama-3.1-8B-Instruct on demo-node-a at 127.0.0.1:35741",
            "LLMPreemptions [ticket]",
            "KV cache usage (threshold 90%)",
            "vllm-a: now 97%, at the window's start 40%, range 40% to 97%",
            "Esc close",
        ] {
            assert!(all.contains(s), "{s} in\n{all}");
        }
        press(&mut a, KeyCode::Char('q'));
        press(&mut a, KeyCode::Tab);
        press(&mut a, KeyCode::Enter);
        let all = screen(&a, 80, 24).join("\n");
        for s in [
            "Alert LLMRequestQueueBackup",
            "ticket · active 30s",
            "instance=127.0.0.1:42759",
            "summary: 81 requests queued",
        ] {
            assert!(all.contains(s), "{s} in\n{all}");
        }
        press(&mut a, KeyCode::Esc);
        press(&mut a, KeyCode::Char('1'));
        press(&mut a, KeyCode::Enter);
        let all = screen(&a, 80, 24).join("\n");
        assert!(
            all.contains("Engine 127.0.0.1:38049") && all.contains("PRE/s"),
            "{all}"
        );
        press(&mut a, KeyCode::Esc);
        press(&mut a, KeyCode::Char('2'));
        press(&mut a, KeyCode::End);
        press(&mut a, KeyCode::Enter);
        let all = screen(&a, 80, 24).join("\n");
        assert!(
            all.contains("GPU 0 on demo-node-c") && all.contains("TEMP C    61"),
            "{all}"
        );
    }

    #[test]
    fn wide_screens_use_the_width() {
        let mut a = app(many_alerts());
        let lines = screen(&a, 160, 48);
        assert!(lines[2].contains("PRE/s") && lines[2].contains("ITL95"));
        assert!(lines[47].contains("↑↓ move") && lines[47].contains("q quit"));
        assert!(lines[47].contains("every 2s"), "{:?}", lines[47]);
        a.show(View::Gpus);
        let lines = screen(&a, 160, 48);
        for h in [
            "GPU", "NODE", "MODEL", "TENSOR%", "SM MHz", "POWER W", "TEMP C", "FB%",
        ] {
            assert!(lines[2].contains(h), "{h} in {:?}", lines[2]);
        }
        assert!(lines[3].contains("demo-node-a") && lines[3].contains("H100 80GB HBM3"));
        a.show(View::Findings);
        let lines = screen(&a, 160, 48);
        let all = lines.join("\n");
        // Side by side: both titles on one line, every alert visible.
        assert!(
            lines[1].contains("Open findings (1)") && lines[1].contains("Firing alerts (17)"),
            "{all}"
        );
        assert!(
            all.contains("Lower max_num_seqs") && all.contains("Alert-17"),
            "{all}"
        );
    }

    #[test]
    fn empty_data_and_tiny_screens_do_not_panic() {
        let mut a = app(Snapshot::default());
        for v in View::ALL {
            a.show(v);
            for (w, h) in [(80, 24), (160, 48), (20, 5), (1, 1), (0, 0)] {
                screen(&a, w, h);
            }
        }
        a.show(View::Engines);
        let all = screen(&a, 80, 24).join("\n");
        assert!(all.contains("Engines (0)") && all.contains("no llm:* series yet"));
        let mut b = app(many_alerts());
        for code in [
            KeyCode::Char('?'),
            KeyCode::Esc,
            KeyCode::End,
            KeyCode::Enter,
        ] {
            press(&mut b, code);
            for (w, h) in [(20, 5), (3, 2), (40, 4), (1, 1)] {
                for v in View::ALL {
                    b.show(v);
                    screen(&b, w, h);
                }
            }
        }
    }

    #[test]
    fn stale_data_and_errors_are_marked() {
        let mut a = app(sample());
        a.update(
            Err("cannot reach Strata at http://127.0.0.1:9464/".into()),
            NOW,
        );
        let lines = screen(&a, 80, 24);
        assert!(lines[1].contains("STALE"), "{:?}", lines[1]);
        assert!(lines[23].starts_with("ERROR cannot reach Strata"));
        assert!(lines[23].contains("q quit"));
        assert!(lines[3].contains("127.0.0.1:38049"), "the old rows stay");
    }

    #[test]
    fn plain_text_holds_every_view() {
        let text = plain(&app(sample()), NOW, 120);
        for s in [
            "Engines (3)",
            "GPUs (2)",
            "Open findings (1)",
            "Firing alerts (1)",
            "Llama-3.1-8B-Instruct",
            "demo-node-c",
            "cache_thrash",
            "vllm-a",
        ] {
            assert!(text.contains(s), "{s} in\n{text}");
        }
        let empty = plain(&app(Snapshot::default()), NOW, 80);
        assert!(empty.contains("no open findings") && empty.contains("no firing alerts"));
    }

    #[test]
    fn truncation_and_scrolling_keep_in_bounds() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(scrolled(0, 16, 9, 17), 8);
        assert_eq!(scrolled(8, 10, 9, 17), 8, "moves as little as it must");
        assert_eq!(scrolled(8, 3, 9, 17), 3);
        assert_eq!(scrolled(12, 0, 9, 3), 0, "the list shrank");
    }
}
