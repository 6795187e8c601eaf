//! Progress bars on stderr, drawn only when stderr is a terminal: a command run by a script
//! prints nothing there but its summary.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar for one command.
pub(crate) struct Bar(ProgressBar);

impl Bar {
    /// A bar counting bytes, labelled `what`.
    pub(crate) fn bytes(what: &str) -> Bar {
        Bar::styled(
            what,
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
    }

    /// A bar counting `unit`s (files, documents), labelled `what`.
    pub(crate) fn items(what: &str, unit: &str) -> Bar {
        Bar::styled(
            what,
            &format!("{{msg:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}"),
        )
    }

    /// A bar counting `unit`s towards no known total.
    pub(crate) fn counter(what: &str, unit: &str) -> Bar {
        let bar = Bar::styled(what, &format!("{{msg:>10}} {{pos}} {unit} {{per_sec}}"));
        bar.0.unset_length();
        bar
    }

    fn styled(what: &str, template: &str) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(template)
            .expect("the templates are fixed and valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_owned());
        Bar(bar)
    }

    /// The total to reach.
    pub(crate) fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }

    /// `done` more units are done.
    pub(crate) fn inc(&self, done: u64) {
        self.0.inc(done);
    }

    /// Draws the bar at its end, left on screen above the summary.
    pub(crate) fn finish(&self) {
        self.0.finish();
    }
}

impl store_mmap::Progress for Bar {
    fn start(&self, total: u64) {
        self.set_total(total);
    }

    fn advance(&self, done: u64) {
        self.inc(done);
    }
}
