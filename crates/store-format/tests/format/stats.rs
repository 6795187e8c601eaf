use store_format::{Figure, Figures, StatsVisitor, VisitStats};

/// A snapshot with one figure of each kind.
struct Snapshot;

impl VisitStats for Snapshot {
    fn visit(&self, visitor: &mut dyn StatsVisitor) {
        visitor.gauge("textstore_documents", "Live documents.", 12.0);
        visitor.counter("textstore_hits_total", "Cache hits.", 7);
    }
}

/// `Figures` keeps what a snapshot shows, in order and by kind, and finds a figure by name.
#[test]
fn figures_keep_what_a_snapshot_shows() {
    let figures = Figures::of(&Snapshot);
    assert_eq!(
        figures.0,
        [
            Figure {
                name: "textstore_documents",
                help: "Live documents.",
                value: 12.0,
                counter: false,
            },
            Figure {
                name: "textstore_hits_total",
                help: "Cache hits.",
                value: 7.0,
                counter: true,
            },
        ]
    );
    assert_eq!(figures.get("textstore_hits_total"), Some(7.0));
    assert_eq!(figures.get("textstore_documents"), Some(12.0));
    assert_eq!(figures.get("textstore_misses_total"), None);
}
