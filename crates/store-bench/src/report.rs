//! A run's results, and the tables, Markdown and JSON made of them.

use std::fmt::Write as _;

use serde::Serialize;

use crate::limits::PhysicalLimits;
use crate::workload::{Figure, Workload};

/// The engine every ratio is about.
pub const SUBJECT: &str = "textstore";

/// Where and on what a run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs the process may use.
    pub cpus: usize,
    /// The CPU's model name.
    pub cpu: String,
    /// Memory of the machine.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// File system and device of the directory the engines wrote to.
    pub filesystem: String,
    /// Bytes available on that file system when the run began (`None` where it did not
    /// say): appends into a nearly full file system run slower (`crate::disk`).
    pub available_bytes: Option<u64>,
}

impl Machine {
    /// Reads the machine's description from `/proc`; `scratch` is where the engines write,
    /// and `available_bytes` what its file system had available when the run began.
    pub fn describe(scratch: &std::path::Path, available_bytes: Option<u64>) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split(':').nth(1))
                .map(|value| value.trim().to_owned())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let scratch = scratch
            .canonicalize()
            .unwrap_or_else(|_| scratch.to_path_buf());
        let filesystem = read("/proc/mounts")
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let (device, mount, kind) = (parts.next()?, parts.next()?, parts.next()?);
                scratch
                    .starts_with(mount)
                    .then(|| (mount.len(), format!("{kind} on {device}")))
            })
            .max_by_key(|(len, _)| *len)
            .map_or_else(|| "unknown".to_owned(), |(_, fs)| fs);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            filesystem,
            available_bytes,
        }
    }
}

/// What the corpus was.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusSummary {
    /// Where the documents came from.
    pub description: String,
    /// Number of documents.
    pub docs: usize,
    /// Total text bytes.
    pub text_bytes: u64,
    /// Median document size in bytes.
    pub median_bytes: usize,
}

/// An engine's name and settings.
#[derive(Debug, Clone, Serialize)]
pub struct EngineSettings {
    /// The engine's name.
    pub engine: &'static str,
    /// What it ran with.
    pub settings: String,
}

/// One row of a workload's table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// An engine's name, or a physical limit's description.
    pub name: String,
    /// Whether the row is a physical limit rather than an engine.
    pub limit: bool,
    /// The figure; `None` when the workload does not apply.
    pub figure: Option<Figure>,
}

/// One workload's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    /// The workload.
    pub workload: Workload,
    /// Its title.
    pub title: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// textstore's row first, then the other engines, then the physical limits.
    pub rows: Vec<Row>,
}

impl WorkloadResult {
    /// textstore's figure.
    pub fn subject(&self) -> Option<f64> {
        self.value(SUBJECT)
    }

    /// The figure of the row named `name`.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|row| row.name == name)
            .and_then(|row| row.figure.as_ref())
            .map(|figure| figure.value)
    }

    /// How many times textstore's figure is better than the row's (see [`Workload::ratio`]).
    pub fn ratio(&self, row: &Row) -> Option<f64> {
        let reference = row.figure.as_ref()?.value;
        Some(self.workload.ratio(self.subject()?, reference))
    }
}

/// A target the figures are held against.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// The workload.
    pub workload: Workload,
    /// The row textstore is compared with; `None` for an absolute bound on its figure.
    pub reference: Option<String>,
    /// The ratio (or, without a reference, the figure) to reach.
    pub target: f64,
    /// What was measured: the ratio, or textstore's figure.
    pub measured: Option<f64>,
    /// What bounds the goal's ratio, measured in the same run, where something does the
    /// same work with nothing else to do. It moves with the run's noise like every figure.
    pub bound: Option<Bound>,
    /// Whether the goal was met.
    pub met: bool,
}

/// The ratio something that bounds textstore reaches against a goal's reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bound {
    /// What it is.
    pub what: &'static str,
    /// Its ratio to the goal's reference.
    pub ratio: f64,
}

/// The bound of a read goal against another engine: the `HashMap` hands out its memory and
/// does nothing else, so a target well above its ratio is beyond any engine that serves the
/// same bytes (textstore's reads have measured 0.75–1.13× the `HashMap`'s).
const MEMORY_BOUND_NAME: &str = "the in-memory HashMap";

/// The bound of group commit's goal: the disk's flushes grouped by the simplest group commit
/// from the same threads, against one thread's writes of the same texts, both into written
/// space (the two limit rows of the puts).
const GROUPED_BOUND_NAME: &str = "the disk's grouped flushes against one thread's";

/// The bound of the single puts' goal against written space: the same writes into space a
/// thread zeroes just ahead of them, which is what a file that grows gets without reusing
/// space it wrote before (textstore zeroes its segments' space ahead so).
const ZEROED_AHEAD_BOUND_NAME: &str = "the same writes into space zeroed just ahead of them";

/// The bound of the batched puts' goal: the batches' texts written and flushed into
/// preallocated space, as an appending store writes them (zeroing ahead of commits this
/// large costs as much as it saves: docs/PERFORMANCE.md, "Experiments that did not pay").
const APPENDED_BATCHES_BOUND_NAME: &str = "the same batches' texts alone, into preallocated space";

/// The bound of the ingest's goal against the sequential write: the corpus's texts written
/// alone from where they lie in memory, with no header, checksum or index, against the
/// sequential write's one buffer hot in cache.
const TEXTS_WRITE_BOUND_NAME: &str = "the corpus's texts alone, written from memory";

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command that ran.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// The corpus.
    pub corpus: CorpusSummary,
    /// The engines and their settings.
    pub engines: Vec<EngineSettings>,
    /// The machine's limits, measured in the run.
    pub limits: PhysicalLimits,
    /// The figures, workload by workload.
    pub results: Vec<WorkloadResult>,
    /// The goals and whether they were met.
    pub goals: Vec<Goal>,
}

/// The goals the project holds textstore to, as (workload, reference, ratio at least).
///
/// The readers' goal beside a writer is judged where every engine's writer does the same
/// work, paced at [`crate::workload::PACED_PUTS_PER_SEC`]: beside writers that run as fast
/// as they can, textstore's readers share two cores with a writer committing 2–3.5 times
/// LMDB's puts, which compares the writers, not the readers (the writer's own goal is
/// judged there).
const RATIO_GOALS: &[(Workload, &str, f64)] = &[
    (Workload::GetUniform, "LMDB (heed)", 1.3),
    (Workload::GetUniform, MEMORY_BOUND, 0.8),
    (Workload::GetZipf, "LMDB (heed)", 1.3),
    (Workload::Substring, "LMDB (heed)", 1.5),
    (Workload::ReadersDuringPacedWriter, "LMDB (heed)", 1.3),
    (Workload::BulkIngest, "LMDB (heed)", 1.5),
    (Workload::BulkIngest, SEQ_WRITE_LIMIT, 0.7),
    (Workload::DurablePut, WRITTEN_FDATASYNC_LIMIT, 0.95),
    (Workload::DurablePut, "fjall", 1.0),
    (Workload::BatchedPut, "LMDB (heed)", 5.0),
];

/// The engine that bounds the reads: the in-memory `HashMap`.
const MEMORY_BOUND: &str = "HashMap";

/// The workloads in which the [`MEMORY_BOUND`] does the same work as textstore, so that its
/// ratio to an engine bounds textstore's: the reads (beside a writer, the writers are paced
/// to the same rate, and the `HashMap`'s puts, which write nothing to disk, leave its readers
/// at least as much of the machine).
const MEMORY_BOUNDED: &[Workload] = &[
    Workload::GetUniform,
    Workload::GetZipf,
    Workload::Substring,
    Workload::ReadersDuringPacedWriter,
];

/// The writer beside two readers: at least this many times LMDB's writer's puts per second.
const WRITER_GOAL: f64 = 1.5;
/// The engine whose writer the writer goal compares with.
const WRITER_GOAL_REFERENCE: &str = "LMDB (heed)";

/// Group commit's goal: durable puts from 8 threads at least this many times one thread's.
const PUT_THREADS_GOAL: f64 = 4.0;

/// The name of the reference of the group-commit goal: textstore's own single-thread row.
const ONE_THREAD: &str = "textstore, durable single puts from one thread";

/// The largest fresh space amplification the project accepts.
const FRESH_SPACE_GOAL: f64 = 1.03;

/// Name of the row of the sequential write: one buffer, hot in cache, written to a new file
/// and synced ([`crate::PhysicalLimits::seq_write_bytes_per_sec`]).
pub const SEQ_WRITE_LIMIT: &str = "limit: sequential write + fsync of the text";
/// Name of the row of the corpus's texts written alone, from memory, to a new file and
/// synced ([`crate::PhysicalLimits::texts_write_bytes_per_sec`]).
pub const TEXTS_WRITE_LIMIT: &str = "limit: the corpus's texts alone, written + fsync";
/// Name of the 4 KiB append + fdatasync row.
pub const FDATASYNC_LIMIT: &str = "limit: 4 KiB append + fdatasync";
/// Name of the row of writes of the durable puts' texts + fdatasync into space already
/// written.
pub const WRITTEN_FDATASYNC_LIMIT: &str =
    "limit: the puts' texts, each written + fdatasync into written space";
/// Name of the row of the durable puts' texts written + fdatasync into space a thread zeroes
/// just ahead of them ([`crate::Space::ZeroedAhead`]).
pub const ZEROED_AHEAD_FDATASYNC_LIMIT: &str =
    "limit: the puts' texts, each written + fdatasync into space zeroed just ahead";
/// The name of the limit row of the durable puts from threads: the same threads' texts
/// grouped by the simplest group commit into written space ([`crate::GroupedFlushes`]).
pub const GROUPED_FDATASYNC_LIMIT: &str =
    "limit: the threads' texts, grouped into one write + fdatasync into written space";
/// The name of the batched puts' limit row: the batches' texts, in their order and sizes,
/// each written into already-written space and flushed.
pub const BATCH_FDATASYNC_LIMIT: &str =
    "limit: the batches' texts, each written + fdatasync into written space";
/// The name of the batched puts' other limit row: the same writes into preallocated,
/// unwritten space, as an appending store makes them.
pub const BATCH_PREALLOCATED_LIMIT: &str =
    "limit: the batches' texts, each written + fdatasync into preallocated space";

impl Report {
    /// Evaluates the goals whose figures the run measured.
    pub fn evaluate_goals(results: &[WorkloadResult]) -> Vec<Goal> {
        let find = |workload| results.iter().find(|result| result.workload == workload);
        let mut goals = Vec::new();
        for &(workload, reference, target) in RATIO_GOALS {
            let Some(result) = find(workload) else {
                continue;
            };
            let Some(row) = result.rows.iter().find(|row| row.name == reference) else {
                continue;
            };
            let measured = result.ratio(row);
            let theirs = row.figure.as_ref().map(|f| f.value);
            let bound = if MEMORY_BOUNDED.contains(&workload) && reference != MEMORY_BOUND {
                theirs
                    .zip(result.value(MEMORY_BOUND))
                    .map(|(theirs, bound)| Bound {
                        what: MEMORY_BOUND_NAME,
                        ratio: workload.ratio(bound, theirs),
                    })
            } else if workload == Workload::BatchedPut && reference != BATCH_PREALLOCATED_LIMIT {
                theirs
                    .zip(result.value(BATCH_PREALLOCATED_LIMIT))
                    .map(|(theirs, bound)| Bound {
                        what: APPENDED_BATCHES_BOUND_NAME,
                        ratio: workload.ratio(bound, theirs),
                    })
            } else if reference == SEQ_WRITE_LIMIT {
                theirs
                    .zip(result.value(TEXTS_WRITE_LIMIT))
                    .map(|(theirs, bound)| Bound {
                        what: TEXTS_WRITE_BOUND_NAME,
                        ratio: workload.ratio(bound, theirs),
                    })
            } else if reference == WRITTEN_FDATASYNC_LIMIT {
                theirs
                    .zip(result.value(ZEROED_AHEAD_FDATASYNC_LIMIT))
                    .map(|(theirs, bound)| Bound {
                        what: ZEROED_AHEAD_BOUND_NAME,
                        ratio: workload.ratio(bound, theirs),
                    })
            } else {
                None
            };
            goals.push(Goal {
                workload,
                reference: Some(reference.to_owned()),
                target,
                measured,
                bound,
                met: measured.is_some_and(|ratio| ratio >= target),
            });
        }
        if let (Some(threads), Some(one)) = (
            find(Workload::DurablePutThreads),
            find(Workload::DurablePut),
        ) && let (Some(ours), Some(our_one)) = (threads.subject(), one.subject())
        {
            let measured = ours / our_one;
            let bound = threads
                .value(GROUPED_FDATASYNC_LIMIT)
                .zip(one.value(WRITTEN_FDATASYNC_LIMIT))
                .map(|(grouped, single)| Bound {
                    what: GROUPED_BOUND_NAME,
                    ratio: grouped / single,
                });
            goals.push(Goal {
                workload: Workload::DurablePutThreads,
                reference: Some(ONE_THREAD.to_owned()),
                target: PUT_THREADS_GOAL,
                measured: Some(measured),
                bound,
                met: measured >= PUT_THREADS_GOAL,
            });
        }
        // The writer beside the readers, against LMDB's writer in the same workload.
        let writer = |name: &str| {
            find(Workload::ReadersDuringWriter)?
                .rows
                .iter()
                .find(|row| row.name == name)?
                .figure
                .as_ref()?
                .writer_per_sec
        };
        if let (Some(ours), Some(theirs)) = (writer(SUBJECT), writer(WRITER_GOAL_REFERENCE)) {
            let measured = ours / theirs;
            goals.push(Goal {
                workload: Workload::ReadersDuringWriter,
                reference: Some(format!("{WRITER_GOAL_REFERENCE}'s writer, for the writer")),
                target: WRITER_GOAL,
                measured: Some(measured),
                bound: None,
                met: measured >= WRITER_GOAL,
            });
        }
        if let Some(result) = find(Workload::SpaceFresh) {
            let measured = result.subject();
            goals.push(Goal {
                workload: Workload::SpaceFresh,
                reference: None,
                target: FRESH_SPACE_GOAL,
                measured,
                bound: None,
                met: measured.is_some_and(|value| value <= FRESH_SPACE_GOAL),
            });
        }
        goals
    }

    /// The report as plain-text tables for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "corpus: {} documents, {:.1} MiB of text, median {} B; {}",
            self.corpus.docs,
            mib(self.corpus.text_bytes),
            self.corpus.median_bytes,
            self.corpus.description
        );
        let _ = writeln!(
            out,
            "ratio: how many times textstore's figure is better than the row's (above 1: textstore is better)\n"
        );
        for result in &self.results {
            let _ = writeln!(out, "{} ({})", result.title, result.unit);
            let _ = writeln!(
                out,
                "  {:<40} {:>14} {:>10} {:>10} {:>9}",
                "", "figure", "p50 µs", "p99 µs", "ratio"
            );
            for row in &result.rows {
                let (figure, p50, p99) = cells(row.figure.as_ref());
                let ratio = ratio_cell(result, row);
                let _ = writeln!(
                    out,
                    "  {:<40} {figure:>14} {p50:>10} {p99:>10} {ratio:>9}",
                    row.name
                );
            }
            out.push('\n');
        }
        let _ = writeln!(out, "goals:");
        for goal in &self.goals {
            let _ = writeln!(out, "  {}", goal_line(goal));
        }
        out
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# textstore benchmark report\n");
        let _ = writeln!(out, "- command: `{}`", self.command);
        let free = m.available_bytes.map_or_else(String::new, |bytes| {
            format!(
                " ({:.1} GiB available at the start)",
                bytes as f64 / f64::from(1 << 30)
            )
        });
        let _ = writeln!(
            out,
            "- machine: {} CPUs ({}), {} memory, Linux {}, engines on {}{free}",
            m.cpus, m.cpu, m.memory, m.kernel, m.filesystem
        );
        let _ = writeln!(
            out,
            "- corpus: {} documents, {:.1} MiB of text, median {} B; {}",
            self.corpus.docs,
            mib(self.corpus.text_bytes),
            self.corpus.median_bytes,
            self.corpus.description
        );
        let l = &self.limits;
        let flushes = l.flushes.map_or_else(String::new, |f| {
            format!(
                "; {:.0} appends of 4 KiB + fdatasync per second, {:.0} writes of the durable puts' texts (mean {:.0} B) + fdatasync into written space",
                f.append_fdatasync_per_sec, f.written.per_sec, f.written.mean_bytes,
            )
        });
        let zeroed_ahead = l.zeroed_ahead.map_or_else(String::new, |z| {
            format!(", {:.0} into space zeroed just ahead", z.per_sec)
        });
        let batches = l.batch_flushes.map_or_else(String::new, |b| {
            format!(
                ", {:.0} writes of the batched puts' batches (mean {:.0} B) + fdatasync into written space",
                b.per_sec, b.mean_bytes,
            )
        });
        let batches_preallocated = l.batch_preallocated.map_or_else(String::new, |b| {
            format!(", {:.0} into preallocated space", b.per_sec)
        });
        let _ = writeln!(
            out,
            "- limits: sequential write {:.0} MiB/s with fsync (the fastest round), the corpus's texts alone {:.0} MiB/s{flushes}{zeroed_ahead}{batches}{batches_preallocated}; memory copy {:.1} GiB/s",
            l.seq_write_bytes_per_sec / f64::from(1 << 20),
            l.texts_write_bytes_per_sec / f64::from(1 << 20),
            l.memcpy_bytes_per_sec / f64::from(1 << 30)
        );
        let _ = writeln!(
            out,
            "\nA ratio is how many times textstore's figure is better than the row's: above 1, textstore is better (higher throughput, or less time or space).\n"
        );
        let _ = writeln!(out, "## Goals\n\n| goal | measured | met |\n|---|---|---|");
        for goal in &self.goals {
            let (text, measured) = goal_cells(goal);
            let _ = writeln!(
                out,
                "| {text} | {measured} | {} |",
                if goal.met { "yes" } else { "**no**" }
            );
        }
        for result in &self.results {
            let _ = writeln!(out, "\n## {} ({})\n", result.title, result.unit);
            let _ = writeln!(
                out,
                "| | figure | p50 µs | p99 µs | ratio | |\n|---|--:|--:|--:|--:|---|"
            );
            for row in &result.rows {
                let (figure, p50, p99) = cells(row.figure.as_ref());
                let note = row
                    .figure
                    .as_ref()
                    .and_then(|f| f.note.as_deref())
                    .unwrap_or("");
                let _ = writeln!(
                    out,
                    "| {} | {figure} | {p50} | {p99} | {} | {note} |",
                    row.name,
                    ratio_cell(result, row)
                );
            }
        }
        let _ = writeln!(out, "\n## Engine settings\n");
        for engine in &self.engines {
            let _ = writeln!(out, "- **{}**: {}", engine.engine, engine.settings);
        }
        out
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// A figure with thousands separators, or three significant decimals below 10.
pub fn format_value(value: f64) -> String {
    if value.abs() < 10.0 {
        return format!("{value:.3}");
    }
    let digits = format!("{:.0}", value.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cells(figure: Option<&Figure>) -> (String, String, String) {
    let Some(figure) = figure else {
        return ("n/a".to_owned(), String::new(), String::new());
    };
    let (p50, p99) = figure
        .latency
        .map(|l| (format!("{:.2}", l.p50_us), format!("{:.2}", l.p99_us)))
        .unwrap_or_default();
    (format_value(figure.value), p50, p99)
}

fn ratio_cell(result: &WorkloadResult, row: &Row) -> String {
    if row.name == SUBJECT {
        return String::new();
    }
    result
        .ratio(row)
        .map(|ratio| format!("{ratio:.2}×"))
        .unwrap_or_default()
}

fn goal_cells(goal: &Goal) -> (String, String) {
    match &goal.reference {
        Some(reference) => (
            format!("{}: ≥ {}× {reference}", goal.workload.title(), goal.target),
            goal.measured.map_or("n/a".to_owned(), |ratio| {
                let bound = goal.bound.as_ref().map_or(String::new(), |bound| {
                    format!(" ({}: {:.2}×)", bound.what, bound.ratio)
                });
                format!("{ratio:.2}×{bound}")
            }),
        ),
        None => (
            format!("{}: ≤ {}", goal.workload.title(), goal.target),
            goal.measured
                .map_or("n/a".to_owned(), |value| format!("{value:.3}")),
        ),
    }
}

fn goal_line(goal: &Goal) -> String {
    let (text, measured) = goal_cells(goal);
    format!(
        "{} {text}: measured {measured}",
        if goal.met { "met    " } else { "NOT MET" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(workload: Workload, rows: &[(&str, f64, Option<f64>)]) -> WorkloadResult {
        WorkloadResult {
            workload,
            title: workload.title(),
            unit: workload.unit(),
            rows: rows
                .iter()
                .map(|&(name, value, writer_per_sec)| Row {
                    name: name.to_owned(),
                    limit: false,
                    figure: Some(Figure {
                        writer_per_sec,
                        ..Figure::of(value)
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn the_readers_goal_is_judged_beside_paced_writers_and_the_writers_beside_unpaced_ones() {
        // Unpaced, textstore's readers make 1.1× LMDB's beside a writer 3× as fast; paced,
        // they make 1.4×.
        let results = [
            result(
                Workload::ReadersDuringWriter,
                &[
                    (SUBJECT, 110.0, Some(3000.0)),
                    ("LMDB (heed)", 100.0, Some(1000.0)),
                ],
            ),
            result(
                Workload::ReadersDuringPacedWriter,
                &[
                    (SUBJECT, 140.0, Some(1000.0)),
                    ("LMDB (heed)", 100.0, Some(1000.0)),
                ],
            ),
        ];
        let goals = Report::evaluate_goals(&results);
        let readers: Vec<&Goal> = goals.iter().filter(|goal| goal.target == 1.3).collect();
        assert_eq!(readers.len(), 1, "{goals:?}");
        assert_eq!(readers[0].workload, Workload::ReadersDuringPacedWriter);
        assert_eq!(readers[0].measured, Some(1.4));
        assert!(readers[0].met);
        let writer = goals
            .iter()
            .find(|goal| goal.target == WRITER_GOAL)
            .expect("the writer's goal");
        assert_eq!(writer.workload, Workload::ReadersDuringWriter);
        assert_eq!(writer.measured, Some(3.0));
    }

    #[test]
    fn the_writer_s_and_the_space_goals_are_met_at_their_line_and_not_past_it() {
        let met = |workload: Workload, rows: &[(&str, f64, Option<f64>)], target: f64| {
            Report::evaluate_goals(&[result(workload, rows)])
                .into_iter()
                .find(|goal| goal.workload == workload && goal.target == target)
                .expect("the goal")
                .met
        };
        let writer = |ours: f64| {
            let rows = [
                (SUBJECT, 100.0, Some(ours)),
                (WRITER_GOAL_REFERENCE, 100.0, Some(1000.0)),
            ];
            met(Workload::ReadersDuringWriter, &rows, WRITER_GOAL)
        };
        assert!(writer(WRITER_GOAL * 1000.0));
        assert!(!writer(WRITER_GOAL * 1000.0 - 1.0));
        let space = |value: f64| {
            met(
                Workload::SpaceFresh,
                &[(SUBJECT, value, None)],
                FRESH_SPACE_GOAL,
            )
        };
        assert!(space(FRESH_SPACE_GOAL));
        assert!(!space(FRESH_SPACE_GOAL + 0.001));
    }

    #[test]
    fn sizes_are_shown_in_mebibytes_and_figures_in_thousands_or_decimals() {
        assert_eq!(mib(3 << 19), 1.5);
        assert_eq!(mib(0), 0.0);
        for (value, shown) in [
            (0.158, "0.158"),
            (9.9994, "9.999"),
            (10.0, "10"),
            (-2.5, "-2.500"),
            (12.6, "13"),
            (100.0, "100"),
            (1000.0, "1,000"),
            (593_686.0, "593,686"),
            (1_234_567.0, "1,234,567"),
            (-1234.0, "-1,234"),
        ] {
            assert_eq!(format_value(value), shown, "{value}");
        }
    }

    #[test]
    fn group_commit_s_goal_reports_the_disk_s_grouped_flushes_beside_it() {
        let limits = |grouped: Option<f64>| {
            let mut rows = vec![
                (SUBJECT, 0.0, None),
                (WRITTEN_FDATASYNC_LIMIT, 1000.0, None),
            ];
            rows.extend(grouped.map(|g| (GROUPED_FDATASYNC_LIMIT, g, None)));
            rows
        };
        let goal = |grouped| {
            let mut one = limits(None);
            one[0].1 = 900.0;
            let mut threads = limits(grouped);
            threads[0].1 = 2700.0;
            let results = [
                result(Workload::DurablePut, &one),
                result(Workload::DurablePutThreads, &threads),
            ];
            Report::evaluate_goals(&results)
                .into_iter()
                .find(|g| g.workload == Workload::DurablePutThreads)
                .expect("group commit's goal")
        };
        let measured = goal(Some(3500.0));
        assert_eq!(measured.measured, Some(3.0));
        assert!(!measured.met);
        assert_eq!(
            measured.bound,
            Some(Bound {
                what: GROUPED_BOUND_NAME,
                ratio: 3.5
            })
        );
        assert_eq!(
            goal_line(&measured),
            "NOT MET durable single puts from 8 threads: ≥ 4× textstore, durable single puts \
             from one thread: measured 3.00× (the disk's grouped flushes against one \
             thread's: 3.50×)"
        );
        // Without the grouped limit, no bound.
        assert_eq!(goal(None).bound, None);
    }

    /// A goal against a limit row, and the row that bounds it.
    struct BoundedGoal {
        workload: Workload,
        /// textstore's figure.
        subject: f64,
        /// The goal's limit row and its figure.
        reference: (&'static str, f64),
        /// An engine with a goal of its own in the same workload, which no row bounds.
        other: (&'static str, f64),
        /// The row that bounds the goal, and its figure.
        bound_row: (&'static str, f64),
        /// The ratio measured against the reference, and the bound's.
        measured: f64,
        bound: Bound,
        line: &'static str,
    }

    /// The goal reports its bound beside it; the goal against the other engine has none,
    /// and neither has a run without the bound's row.
    fn check_bounded_goal(case: &BoundedGoal) {
        let goals = |with_bound: bool| {
            let mut rows = vec![
                (SUBJECT, case.subject, None),
                (case.reference.0, case.reference.1, None),
                (case.other.0, case.other.1, None),
            ];
            if with_bound {
                rows.push((case.bound_row.0, case.bound_row.1, None));
            }
            Report::evaluate_goals(&[result(case.workload, &rows)])
        };
        let all = goals(true);
        let find = |name: &str| {
            all.iter()
                .find(|g| g.reference.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no goal against {name}: {all:?}"))
        };
        let goal = find(case.reference.0);
        assert_eq!(goal.measured, Some(case.measured));
        assert!(!goal.met);
        assert_eq!(goal.bound.as_ref(), Some(&case.bound));
        assert_eq!(goal_line(goal), case.line);
        assert_eq!(find(case.other.0).bound, None);
        assert!(goals(false).iter().all(|g| g.bound.is_none()));
    }

    #[test]
    fn a_goal_against_a_limit_reports_what_bounds_it_beside_it() {
        check_bounded_goal(&BoundedGoal {
            workload: Workload::DurablePut,
            subject: 880.0,
            reference: (WRITTEN_FDATASYNC_LIMIT, 1000.0),
            other: ("fjall", 500.0),
            bound_row: (ZEROED_AHEAD_FDATASYNC_LIMIT, 900.0),
            measured: 0.88,
            bound: Bound {
                what: ZEROED_AHEAD_BOUND_NAME,
                ratio: 0.9,
            },
            line: "NOT MET durable single puts: ≥ 0.95× limit: the puts' texts, each written + \
                   fdatasync into written space: measured 0.88× (the same writes into space \
                   zeroed just ahead of them: 0.90×)",
        });
        check_bounded_goal(&BoundedGoal {
            workload: Workload::BulkIngest,
            subject: 650.0,
            reference: (SEQ_WRITE_LIMIT, 1000.0),
            other: ("LMDB (heed)", 200.0),
            bound_row: (TEXTS_WRITE_LIMIT, 750.0),
            measured: 0.65,
            bound: Bound {
                what: TEXTS_WRITE_BOUND_NAME,
                ratio: 0.75,
            },
            line: "NOT MET bulk ingest, one commit: ≥ 0.7× limit: sequential write + fsync of \
                   the text: measured 0.65× (the corpus's texts alone, written from memory: \
                   0.75×)",
        });
    }

    #[test]
    fn a_read_goal_against_another_engine_reports_the_in_memory_bound_beside_it() {
        let results = [
            result(
                Workload::GetUniform,
                &[
                    (SUBJECT, 110.0, None),
                    (MEMORY_BOUND, 120.0, None),
                    ("LMDB (heed)", 100.0, None),
                ],
            ),
            result(
                Workload::BatchedPut,
                &[
                    (SUBJECT, 400.0, None),
                    (MEMORY_BOUND, 9000.0, None),
                    ("LMDB (heed)", 100.0, None),
                ],
            ),
        ];
        let goals = Report::evaluate_goals(&results);
        let goal = |workload, reference: &str| {
            goals
                .iter()
                .find(|g| g.workload == workload && g.reference.as_deref() == Some(reference))
                .unwrap_or_else(|| panic!("{workload:?} against {reference}: {goals:?}"))
        };
        let gets = goal(Workload::GetUniform, "LMDB (heed)");
        assert_eq!(
            gets.bound,
            Some(Bound {
                what: MEMORY_BOUND_NAME,
                ratio: 1.2
            })
        );
        assert!(!gets.met);
        assert_eq!(
            goal_line(gets),
            "NOT MET uniform gets, zero-copy: ≥ 1.3× LMDB (heed): measured 1.10× \
             (the in-memory HashMap: 1.20×)"
        );
        // Against the bound itself, and where the bound does other work (its puts are not
        // durable), there is none.
        assert_eq!(goal(Workload::GetUniform, MEMORY_BOUND).bound, None);
        assert_eq!(goal(Workload::BatchedPut, "LMDB (heed)").bound, None);
    }

    #[test]
    fn the_batched_goal_reports_the_preallocated_limit_beside_it() {
        let results = [result(
            Workload::BatchedPut,
            &[
                (SUBJECT, 400.0, None),
                ("LMDB (heed)", 100.0, None),
                (BATCH_FDATASYNC_LIMIT, 1200.0, None),
                (BATCH_PREALLOCATED_LIMIT, 650.0, None),
            ],
        )];
        let goals = Report::evaluate_goals(&results);
        let batched = goals
            .iter()
            .find(|g| g.workload == Workload::BatchedPut)
            .expect("the batched goal");
        assert_eq!(batched.measured, Some(4.0));
        assert_eq!(
            batched.bound,
            Some(Bound {
                what: APPENDED_BATCHES_BOUND_NAME,
                ratio: 6.5
            })
        );
        assert_eq!(
            goal_line(batched),
            "NOT MET durable batched puts (100 per commit): ≥ 5× LMDB (heed): measured 4.00× \
             (the same batches' texts alone, into preallocated space: 6.50×)"
        );
    }
}
