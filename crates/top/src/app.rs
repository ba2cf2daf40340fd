//! The state of the UI: the latest data, and what the keys change — the view, the focused
//! pane, each pane's sort, selection and scroll position, the filter, and the overlay (help
//! or a detail) on top.

use std::cell::Cell;
use std::time::Duration;

use super::detail::Detail;
use super::model::{Pane, Snapshot, Table, View, table};

/// What covers the lists, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Nothing: the lists take keys.
    None,
    /// The `/` filter is being typed.
    Filter,
    /// The key help.
    Help,
    /// A detail of the selected row, scrolled by this many lines.
    Detail(Box<Detail>, usize),
}

/// The state of the UI: the latest data, where it came from and how it is shown.
#[derive(Debug, Clone)]
pub struct App {
    /// The Strata being read.
    pub url: String,
    /// The refresh interval.
    pub interval: Duration,
    /// The pane that takes the movement keys (its view is the one shown).
    pub focus: Pane,
    /// The sorted column and reversal per pane.
    sort: [(usize, bool); 4],
    /// The selected row per pane (an index into the sorted, filtered rows)...
    selected: [usize; 4],
    /// ... and its id, followed when a refresh or the filter moves it.
    anchor: [Option<String>; 4],
    /// The first row shown per pane (kept by the renderer so the selection stays visible).
    pub(crate) offset: [Cell<usize>; 4],
    /// Rows that fit in the focused pane when last drawn (the page of PgUp/PgDn).
    pub(crate) page: Cell<usize>,
    /// The substring rows must hold (`/`), empty for all.
    pub filter: String,
    /// What covers the lists.
    pub overlay: Overlay,
    /// The latest data read (kept, marked stale, when a refresh fails).
    pub snapshot: Snapshot,
    /// When the last refresh succeeded (Unix ms).
    pub refreshed_ms: i64,
    /// Why the latest refresh failed, while it does.
    pub error: Option<String>,
}

impl App {
    /// A UI on `snapshot`, read from `url` at `now_ms`; findings and alerts sort by
    /// severity first.
    pub fn new(url: &str, interval: Duration, snapshot: Snapshot, now_ms: i64) -> App {
        App {
            url: url.to_string(),
            interval,
            focus: Pane::Engines,
            sort: [(0, false), (0, false), (1, false), (1, false)],
            selected: [0; 4],
            anchor: Default::default(),
            offset: Default::default(),
            page: Cell::new(10),
            filter: String::new(),
            overlay: Overlay::None,
            snapshot,
            refreshed_ms: now_ms,
            error: None,
        }
    }

    /// The view shown.
    pub fn view(&self) -> View {
        self.focus.view()
    }

    /// Shows `view`, focusing its first pane.
    pub fn show(&mut self, view: View) {
        if self.view() != view {
            self.focus = view.panes()[0];
        }
    }

    /// Focuses the next (or previous) pane, through every view's panes in turn.
    pub fn next_pane(&mut self, forward: bool) {
        let n = Pane::ALL.len();
        let step = if forward { 1 } else { n - 1 };
        self.focus = Pane::ALL[(self.focus.index() + step) % n];
    }

    /// Takes a refresh's result: new data, or the error (the old data stays, stale).
    pub fn update(&mut self, result: Result<Snapshot, String>, now_ms: i64) {
        match result {
            Ok(s) => {
                self.snapshot = s;
                self.refreshed_ms = now_ms;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Whether the data shown is stale (the latest refresh failed).
    pub fn stale(&self) -> bool {
        self.error.is_some()
    }

    /// Sorts the focused pane by its next column.
    pub fn cycle_sort(&mut self) {
        let columns = table(&self.snapshot, self.focus, 0).columns.len();
        let s = &mut self.sort[self.focus.index()];
        *s = ((s.0 + 1) % columns, s.1);
    }

    /// Reverses the focused pane's order.
    pub fn reverse(&mut self) {
        let s = &mut self.sort[self.focus.index()];
        s.1 = !s.1;
    }

    /// The table of `pane` as shown: sorted as chosen, filtered.
    pub fn table(&self, pane: Pane, now_ms: i64) -> Table {
        let (column, reversed) = self.sort[pane.index()];
        table(&self.snapshot, pane, now_ms)
            .sorted(column, reversed)
            .filtered(&self.filter)
    }

    /// The selected row of `pane` in its table `t`: where the selected item is now, else
    /// the same position (the last row when the list shrank).
    pub fn selected(&self, pane: Pane, t: &Table) -> usize {
        let i = pane.index();
        let at = self.selected[i].min(t.rows.len().saturating_sub(1));
        match &self.anchor[i] {
            // Still there (rows with equal ids keep their place).
            Some(id) if t.rows.get(at).is_some_and(|r| r.id == *id) => at,
            Some(id) => t.rows.iter().position(|r| r.id == *id).unwrap_or(at),
            None => at,
        }
    }

    /// Moves the focused pane's selection by `delta` rows, kept within the list.
    pub fn move_by(&mut self, delta: isize, now_ms: i64) {
        let t = self.table(self.focus, now_ms);
        let at = self.selected(self.focus, &t) as isize;
        let to = (at + delta).clamp(0, t.rows.len().saturating_sub(1) as isize) as usize;
        let i = self.focus.index();
        self.selected[i] = to;
        self.anchor[i] = t.rows.get(to).map(|r| r.id.clone());
    }

    /// A page of rows, as last drawn.
    pub fn page(&self) -> isize {
        self.page.get().max(1) as isize
    }

    /// Opens the detail of the focused pane's selected row, if it has rows.
    pub fn open_detail(&mut self, now_ms: i64) {
        let t = self.table(self.focus, now_ms);
        if let Some(row) = t.rows.get(self.selected(self.focus, &t)) {
            let d = Detail::of(&self.snapshot, self.focus, &t, row, now_ms);
            self.overlay = Overlay::Detail(Box::new(d), 0);
        }
    }
}
