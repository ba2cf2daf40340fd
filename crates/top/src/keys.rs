//! What the keys do: q / Ctrl-C quit, tab / shift-tab / 1-2-3 switch views, s cycles the
//! sort column, r reverses the order.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::model::{App, View};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Show this view.
    Show(View),
    /// The next (or, with `false`, previous) view.
    Next(bool),
    /// Sort by the next column.
    Sort,
    /// Reverse the order.
    Reverse,
}

/// The action of a key press, if any (releases and repeats of other keys do nothing).
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    Some(match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Action::Quit,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Tab => Action::Next(true),
        KeyCode::BackTab => Action::Next(false),
        KeyCode::Char(c @ '1'..='3') => Action::Show(View::ALL[c as usize - '1' as usize]),
        KeyCode::Char('s') => Action::Sort,
        KeyCode::Char('r') => Action::Reverse,
        _ => return None,
    })
}

impl App {
    /// Applies `action`; `false` when it is time to quit.
    pub fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::Quit => return false,
            Action::Show(v) => self.view = v,
            Action::Next(forward) => {
                let n = View::ALL.len();
                let step = if forward { 1 } else { n - 1 };
                self.view = View::ALL[(self.view.index() + step) % n];
            }
            Action::Sort => self.cycle_sort(),
            Action::Reverse => self.reverse(),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Snapshot;
    use std::time::Duration;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Action> {
        action(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn keys_switch_views_sort_and_quit() {
        let none = KeyModifiers::NONE;
        let mut app = App::new("u", Duration::from_secs(1), Snapshot::default(), 0);
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Action::Quit)
        );
        assert_eq!(press(KeyCode::Char('q'), none), Some(Action::Quit));
        assert_eq!(press(KeyCode::Char('c'), none), None);
        assert!(!app.apply(Action::Quit));
        for (code, view) in [
            (KeyCode::Char('2'), View::Gpus),
            (KeyCode::Tab, View::Findings),
            (KeyCode::Tab, View::Engines),
            (KeyCode::BackTab, View::Findings),
            (KeyCode::Char('1'), View::Engines),
        ] {
            assert!(app.apply(press(code, none).expect("bound")));
            assert_eq!(app.view, view, "{code:?}");
        }
        assert!(app.apply(press(KeyCode::Char('s'), none).expect("s")));
        assert!(app.apply(press(KeyCode::Char('r'), none).expect("r")));
        assert_eq!(app.tables(0)[0].sort, Some((1, true)));
        let mut release = KeyEvent::new(KeyCode::Char('q'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(action(release), None);
    }
}
