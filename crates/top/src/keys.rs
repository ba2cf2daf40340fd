//! What the keys do, in the lists and in the overlays (filter, help, detail); [`KEYS`] is
//! what the help overlay lists.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Overlay};
use super::model::View;

/// Every key and what it does, as the help overlay lists them.
pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "select the previous / next row"),
    ("PgUp PgDn", "a page up / down"),
    ("Home End  g G", "the first / last row"),
    (
        "Tab  Shift-Tab",
        "the next / previous pane (every view's lists in turn)",
    ),
    ("1 2 3", "Engines, GPUs, Findings"),
    ("Enter", "the detail of the selected row"),
    ("Esc  q", "close the detail or this help"),
    ("/", "filter rows by text (Enter keeps it, Esc clears it)"),
    ("Esc", "clear the filter"),
    ("s  r", "sort by the next column / reverse the order"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
];

fn ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

impl App {
    /// Applies a key press at `now_ms`; `false` when it is time to quit.
    pub fn key(&mut self, key: KeyEvent, now_ms: i64) -> bool {
        if key.kind == KeyEventKind::Release {
            return true;
        }
        if ctrl_c(&key) {
            return false;
        }
        match &mut self.overlay {
            Overlay::Filter => match key.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.overlay = Overlay::None;
                }
                KeyCode::Enter => self.overlay = Overlay::None,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            },
            Overlay::Help => {
                if matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('q' | '?') | KeyCode::Enter
                ) {
                    self.overlay = Overlay::None;
                }
            }
            Overlay::Detail(d, scroll) => {
                let last = d.lines.len().saturating_sub(1);
                let page = self.page.get().max(1);
                match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => {
                        self.overlay = Overlay::None
                    }
                    KeyCode::Down | KeyCode::Char('j') => *scroll = (*scroll + 1).min(last),
                    KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
                    KeyCode::PageDown => *scroll = (*scroll + page).min(last),
                    KeyCode::PageUp => *scroll = scroll.saturating_sub(page),
                    KeyCode::Home | KeyCode::Char('g') => *scroll = 0,
                    KeyCode::End | KeyCode::Char('G') => *scroll = last,
                    _ => {}
                }
            }
            Overlay::None => return self.list_key(key, now_ms),
        }
        true
    }

    /// A key in the lists.
    fn list_key(&mut self, key: KeyEvent, now_ms: i64) -> bool {
        match key.code {
            KeyCode::Char('q') => return false,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Tab => self.next_pane(true),
            KeyCode::BackTab => self.next_pane(false),
            KeyCode::Char(c @ '1'..='3') => self.show(View::ALL[c as usize - '1' as usize]),
            KeyCode::Char('s') => self.cycle_sort(),
            KeyCode::Char('r') => self.reverse(),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1, now_ms),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1, now_ms),
            KeyCode::PageDown => self.move_by(self.page(), now_ms),
            KeyCode::PageUp => self.move_by(-self.page(), now_ms),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2, now_ms),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2, now_ms),
            KeyCode::Enter => self.open_detail(now_ms),
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            KeyCode::Char('/') => self.overlay = Overlay::Filter,
            _ => {}
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::tests::sample;
    use crate::model::{Pane, Snapshot};
    use std::time::Duration;

    /// Presses `code` (no modifiers); whether the UI goes on.
    pub(crate) fn press(app: &mut App, code: KeyCode) -> bool {
        app.key(KeyEvent::new(code, KeyModifiers::NONE), 1_060_000)
    }

    #[test]
    fn keys_switch_panes_sort_and_quit() {
        let mut app = App::new("u", Duration::from_secs(1), sample(), 0);
        assert!(!app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), 0));
        assert!(!press(&mut app, KeyCode::Char('q')));
        assert!(press(&mut app, KeyCode::Esc), "Esc does not quit");
        for (code, pane) in [
            (KeyCode::Char('2'), Pane::Gpus),
            (KeyCode::Tab, Pane::Findings),
            (KeyCode::Tab, Pane::Alerts),
            (KeyCode::Tab, Pane::Engines),
            (KeyCode::BackTab, Pane::Alerts),
            (KeyCode::Char('3'), Pane::Alerts),
            (KeyCode::Char('1'), Pane::Engines),
        ] {
            assert!(press(&mut app, code));
            assert_eq!(app.focus, pane, "{code:?}");
        }
        press(&mut app, KeyCode::Char('s'));
        press(&mut app, KeyCode::Char('r'));
        assert_eq!(app.table(Pane::Engines, 0).sort, Some((1, true)));
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert!(app.key(release, 0));
    }

    #[test]
    fn selection_stays_in_the_list() {
        let mut app = App::new("u", Duration::from_secs(1), sample(), 0);
        let at = |app: &App| app.selected(Pane::Engines, &app.table(Pane::Engines, 0));
        press(&mut app, KeyCode::Up);
        assert_eq!(at(&app), 0);
        press(&mut app, KeyCode::Char('j'));
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(at(&app), 2);
        press(&mut app, KeyCode::Home);
        assert_eq!(at(&app), 0);
        press(&mut app, KeyCode::End);
        assert_eq!(at(&app), 2);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(at(&app), 0);
        // The selection follows its engine when a refresh reorders the rows.
        press(&mut app, KeyCode::Down);
        let t = app.table(Pane::Engines, 0);
        assert_eq!(t.rows[at(&app)].cells[0].text, "tgi-a");
        let mut s = sample();
        s.engines[1].name = "0-tgi".into();
        app.update(Ok(s), 1);
        let t = app.table(Pane::Engines, 0);
        assert_eq!(
            (at(&app), t.rows[at(&app)].cells[0].text.as_str()),
            (0, "0-tgi")
        );
        app.update(Ok(Snapshot::default()), 1);
        press(&mut app, KeyCode::Down);
        assert_eq!(at(&app), 0, "an empty list");
    }

    #[test]
    fn the_filter_is_typed_kept_and_cleared() {
        let mut app = App::new("u", Duration::from_secs(1), sample(), 0);
        press(&mut app, KeyCode::Char('/'));
        for c in "tgiq".chars() {
            assert!(press(&mut app, KeyCode::Char(c)), "q is text here");
        }
        press(&mut app, KeyCode::Backspace);
        assert_eq!(app.filter, "tgi");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.overlay, Overlay::None);
        assert_eq!(app.table(Pane::Engines, 0).rows.len(), 1);
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.filter, "");
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Char('x'));
        press(&mut app, KeyCode::Esc);
        assert_eq!((app.filter.as_str(), &app.overlay), ("", &Overlay::None));
    }

    #[test]
    fn help_and_detail_open_and_close() {
        let mut app = App::new("u", Duration::from_secs(1), sample(), 0);
        press(&mut app, KeyCode::Char('?'));
        assert_eq!(app.overlay, Overlay::Help);
        assert!(press(&mut app, KeyCode::Char('q')), "q closes help");
        assert_eq!(app.overlay, Overlay::None);
        press(&mut app, KeyCode::Char('3'));
        press(&mut app, KeyCode::Enter);
        let Overlay::Detail(d, 0) = &app.overlay else {
            panic!("a detail: {:?}", app.overlay);
        };
        assert_eq!(d.title, "Finding cache_thrash");
        press(&mut app, KeyCode::Down);
        assert!(matches!(app.overlay, Overlay::Detail(_, 1)));
        press(&mut app, KeyCode::PageDown);
        press(&mut app, KeyCode::End);
        let Overlay::Detail(d, at) = &app.overlay else {
            panic!("still the detail");
        };
        assert_eq!(
            *at,
            d.lines.len() - 1,
            "scrolled to the last line, no further"
        );
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.overlay, Overlay::None);
        app.update(Ok(Snapshot::default()), 1);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.overlay, Overlay::None, "nothing to open");
    }
}
