//! Stats that any exporter can read without knowing the layer that keeps them.

/// Takes the figures of a stats snapshot, one at a time. A metrics exporter implements it;
/// names are full metric names (`textstore_documents`), unique across every layer's stats.
pub trait StatsVisitor {
    /// A value that goes up and down: documents, bytes, a depth, a ratio.
    fn gauge(&mut self, name: &'static str, help: &'static str, value: f64);

    /// A count that only grows while the handle is open: hits, chunks scrubbed.
    fn counter(&mut self, name: &'static str, help: &'static str, value: u64);
}

/// A stats snapshot of some layer that shows its figures to a [`StatsVisitor`].
pub trait VisitStats {
    /// Shows every figure to `visitor`.
    fn visit(&self, visitor: &mut dyn StatsVisitor);
}

/// Every figure of a snapshot, collected in the order it shows them: for tests and for
/// exporters that keep what they were shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures(pub Vec<Figure>);

/// One figure a [`StatsVisitor`] was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The metric name.
    pub name: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// Its value.
    pub value: f64,
    /// Whether it only grows (a counter) rather than going up and down (a gauge).
    pub counter: bool,
}

impl Figures {
    /// The figures `stats` shows.
    pub fn of(stats: &dyn VisitStats) -> Figures {
        let mut figures = Figures::default();
        stats.visit(&mut figures);
        figures
    }

    /// The value of the figure named `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|f| f.name == name).map(|f| f.value)
    }
}

impl StatsVisitor for Figures {
    fn gauge(&mut self, name: &'static str, help: &'static str, value: f64) {
        self.0.push(Figure {
            name,
            help,
            value,
            counter: false,
        });
    }

    fn counter(&mut self, name: &'static str, help: &'static str, value: u64) {
        self.0.push(Figure {
            name,
            help,
            value: value as f64,
            counter: true,
        });
    }
}
