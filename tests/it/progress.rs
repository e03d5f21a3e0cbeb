//! The live progress display on a real terminal (a pseudo-terminal from util-linux `script`,
//! sized 80 columns): long gate names and long verdicts stay within the width instead of
//! wrapping and breaking the redraw.

use std::process::Command;

use crate::common::*;

/// A terminal of `cols` columns, as far as indicatif drives one: printable characters with
/// automatic wrapping, CR, LF, cursor up/down and line clearing. Every row's content is kept
/// when it is cleared or overwritten, so rows of frames drawn over later are checked too.
struct Screen {
    cols: usize,
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// The last column was written: the next printable character goes to the next row.
    pending_wrap: bool,
    /// Every row content ever shown, right-trimmed.
    seen: Vec<String>,
}

impl Screen {
    fn new(cols: usize) -> Self {
        Screen {
            cols,
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            pending_wrap: false,
            seen: Vec::new(),
        }
    }

    fn keep(&mut self, row: usize) {
        if let Some(r) = self.rows.get(row) {
            let text: String = r.iter().collect();
            let text = text.trim_end().to_string();
            if !text.is_empty() {
                self.seen.push(text);
            }
        }
    }

    fn goto_row(&mut self, row: usize) {
        self.row = row;
        while self.rows.len() <= row {
            self.rows.push(Vec::new());
        }
        self.pending_wrap = false;
    }

    fn put(&mut self, c: char) {
        if self.pending_wrap {
            self.goto_row(self.row + 1);
            self.col = 0;
        }
        let r = &mut self.rows[self.row];
        while r.len() <= self.col {
            r.push(' ');
        }
        r[self.col] = c;
        if self.col + 1 == self.cols {
            self.pending_wrap = true;
        } else {
            self.col += 1;
        }
    }

    fn feed(&mut self, text: &str) {
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\r' => {
                    self.col = 0;
                    self.pending_wrap = false;
                }
                '\n' => self.goto_row(self.row + 1),
                '\x1b' => {
                    if it.peek() != Some(&'[') {
                        it.next();
                        continue;
                    }
                    it.next();
                    let mut param = String::new();
                    let mut fin = ' ';
                    for d in it.by_ref() {
                        if ('@'..='~').contains(&d) {
                            fin = d;
                            break;
                        }
                        param.push(d);
                    }
                    let n: usize = param.parse().unwrap_or(1).max(1);
                    match fin {
                        'A' => self.goto_row(self.row.saturating_sub(n)),
                        'B' => self.goto_row(self.row + n),
                        'K' => {
                            self.keep(self.row);
                            let col = if param == "2" { 0 } else { self.col };
                            self.rows[self.row].truncate(col);
                        }
                        _ => {}
                    }
                }
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
        for row in 0..self.rows.len() {
            self.keep(row);
        }
    }
}

/// Run relgate on a pseudo-terminal of `cols` columns; returns everything it drew.
fn on_terminal(p: &Project, cols: u16, args: &str) -> String {
    let inner = format!("stty cols {cols} rows 40 && exec {BIN} {args}");
    let out = Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .current_dir(p.path())
        .env("TERM", "xterm")
        .env_remove("RELGATE_OPERATOR")
        .output()
        .expect("util-linux script (bsdutils) runs relgate on a pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_progress_display_fits_an_80_column_terminal_with_long_gate_names() {
    let long = "integration-tests-against-the-staging-database-in-eu-west-1";
    let other = "end-to-end-browser-tests-of-the-customer-self-service-portal";
    let gates = format!(
        "  {long}:\n    kind: regression\n    run: sleep 1\n  {other}:\n    kind: regression\n    run: exit 3\n    junit: [build/none-*.xml]\n  after-both-of-the-long-ones-with-a-long-name-too:\n    kind: regression\n    needs: [{long}, {other}]\n    run: \"true\"\n"
    );
    let p = project_with(&gates);
    let drawn = on_terminal(&p, 80, "run 1.0.0 --dry-run");
    // What follows the display (the refusal lines, the decision) is plain text that a terminal
    // wraps; the display ends where the first of them starts.
    let display = match drawn.match_indices("relgate: ").nth(1) {
        Some((at, _)) => &drawn[..at],
        None => &drawn[..],
    };
    let mut screen = Screen::new(80);
    screen.feed(display);
    let ids = [long, other, "after-both-of-the-long-ones", "sign"];
    let mut gate_rows = 0;
    for row in &screen.seen {
        // Header lines, and the run's notes (each a line of its own, which must fit too: a
        // longer one would leave a continuation row that matches nothing here).
        if ["relgate: ", "subject ", "record  "]
            .iter()
            .any(|h| row.starts_with(h))
            || row.trim_start().starts_with("note: ")
        {
            continue;
        }
        // A gate row: two columns (spinner or blank), then the gate's id. A row starting
        // anywhere else is the tail of a line that did not fit and wrapped.
        let rest: String = row.chars().skip(2).collect();
        assert!(
            ids.iter()
                .any(|id| rest.starts_with(&id[..id.len().min(12)])),
            "a line wrapped on an 80-column terminal; this row continues it: {row:?}\nevery row shown:\n{}",
            screen.seen.join("\n")
        );
        gate_rows += 1;
    }
    assert!(
        gate_rows >= 4,
        "no gate rows were drawn:\n{}",
        screen.seen.join("\n")
    );
    assert!(
        screen
            .seen
            .iter()
            .any(|r| r.contains("integration-tests-against")),
        "the display names the gate"
    );
}
