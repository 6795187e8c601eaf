//! A whole run: the physical limits, then each workload on every engine in turn.
//!
//! Engines take turns workload by workload (every engine's bulk ingest, then every engine's
//! reopen, ...), so that a drift of the machine's speed over the run spreads over all
//! engines instead of favouring the ones measured first. Before each engine's turn the scratch
//! file system is synced and the run waits for the engines' background work to end, so that
//! no engine pays for the write-back or the compactions of the one before.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::corpus::Corpus;
use crate::engines::{FilePerDoc, MemoryMap, Textstore};
use crate::error::{Error, Result};
use crate::limits::{
    FlushLimits, GroupedFlushes, LimitSettings, PhysicalLimits, SizedFlushes, Space,
};
use crate::plan::{Plan, Settings};
use crate::report::{
    BATCH_FDATASYNC_LIMIT, BATCH_PREALLOCATED_LIMIT, CorpusSummary, EngineSettings,
    FDATASYNC_LIMIT, GROUPED_FDATASYNC_LIMIT, Machine, Report, Row, SEQ_WRITE_LIMIT,
    TEXTS_WRITE_LIMIT, WRITTEN_FDATASYNC_LIMIT, WorkloadResult, ZEROED_AHEAD_FDATASYNC_LIMIT,
};
use crate::workload::{
    EngineSubject, Figure, PUT_THREADS, Subject, Workload, median_round, rounds_note, take_median,
};

/// Which engines a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSet {
    /// textstore and the in-memory upper bound.
    Bounds,
    /// Those, one file per document, and the peers of the `peers` feature.
    Peers,
}

/// What a run measures and where.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The engines.
    pub engines: EngineSet,
    /// How long each workload runs.
    pub settings: Settings,
    /// How much of each physical limit to measure.
    pub limits: LimitSettings,
    /// The directory the engines write to (on the disk to measure); it is emptied first.
    pub scratch: PathBuf,
    /// The command line, for the report.
    pub command: String,
}

/// A step of a run, for progress output.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Steps done before this one.
    pub done: usize,
    /// Steps in the run.
    pub total: usize,
    /// The engine, or `"machine"` for the limits.
    pub engine: &'a str,
    /// What it is doing.
    pub what: &'a str,
}

fn subjects(engines: EngineSet, scratch: &Path) -> Result<Vec<Box<dyn Subject>>> {
    fn subject<E: crate::Engine + 'static>(scratch: &Path) -> Box<dyn Subject> {
        let dir = scratch.join(E::NAME.replace([' ', '(', ')'], "-"));
        Box::new(EngineSubject::<E>::new(dir))
    }
    let mut all = vec![subject::<Textstore>(scratch), subject::<MemoryMap>(scratch)];
    if engines == EngineSet::Peers {
        all.push(subject::<FilePerDoc>(scratch));
        #[cfg(feature = "peers")]
        {
            use crate::engines::{Fjall, Lmdb, Redb, Sqlite};
            all.push(subject::<Lmdb>(scratch));
            all.push(subject::<Redb>(scratch));
            all.push(subject::<Fjall>(scratch));
            all.push(subject::<Sqlite>(scratch));
        }
        #[cfg(not(feature = "peers"))]
        return Err(Error::Engine {
            engine: "peers",
            operation: "run",
            source: "this binary was built without the `peers` feature; \
                     `cargo xtask bench` builds it with the feature, and `--no-peers` skips them"
                .into(),
        });
    }
    Ok(all)
}

/// Writes back every dirty page of the scratch file system, so that what one engine left to
/// the kernel's write-back does not land in the next engine's timed window; then waits for
/// the engines' own background work (a compaction, a flush of a memtable) to end.
pub(crate) fn settle(scratch: &Path, quiet_max: Duration) -> Result<()> {
    let dir = std::fs::File::open(scratch).map_err(Error::io(scratch))?;
    rustix::fs::syncfs(&dir).map_err(|err| Error::io(scratch)(err.into()))?;
    if quiet_max.is_zero() {
        return Ok(());
    }
    let waited = quiet(quiet_max);
    if waited > QUIET_WINDOW * QUIET_WINDOWS as u32 * 2 {
        eprintln!(
            "textstore-bench: waited {:.1} s for the engines' background work to end",
            waited.as_secs_f64()
        );
    }
    Ok(())
}

/// A window in which the process uses less than [`QUIET_CPU`] of CPU and the disks write
/// less than [`QUIET_WRITES`] is quiet.
const QUIET_WINDOW: Duration = Duration::from_millis(50);
/// Quiet windows in a row that end a wait.
const QUIET_WINDOWS: usize = 3;
/// CPU time of the whole process in a quiet window: what the engines' idle threads use.
const QUIET_CPU: Duration = Duration::from_millis(5);
/// Bytes the disks write in a quiet window: what the machine's other processes write.
const QUIET_WRITES: u64 = 1 << 20;

/// Waits until the engines' threads have been idle and the disks quiet for
/// [`QUIET_WINDOWS`] windows in a row, or `max` (an engine whose background work never ends
/// is then measured beside it); returns how long it waited. Each engine stays open from one
/// workload to the next, and the threads it runs in the background (fjall's compactions and
/// flushes, textstore's checkpoints) would otherwise run inside the next engine's timed
/// window.
fn quiet(max: Duration) -> Duration {
    quiet_by(max, || (process_cpu(), disk_writes()))
}

/// [`quiet`], with `sample` telling the process's CPU time and the disks' bytes written.
fn quiet_by(max: Duration, mut sample: impl FnMut() -> (Duration, u64)) -> Duration {
    let started = Instant::now();
    let mut quiet_windows = 0;
    let mut last = sample();
    while quiet_windows < QUIET_WINDOWS && started.elapsed() < max {
        std::thread::sleep(QUIET_WINDOW);
        let now = sample();
        let cpu = now.0.saturating_sub(last.0);
        let written = now.1.saturating_sub(last.1);
        quiet_windows = if cpu < QUIET_CPU && written < QUIET_WRITES {
            quiet_windows + 1
        } else {
            0
        };
        last = now;
    }
    started.elapsed()
}

/// CPU time this process has used, all its threads together.
fn process_cpu() -> Duration {
    let at = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(at.tv_sec as u64, at.tv_nsec as u32)
}

/// Bytes written to the block devices since boot, from `/proc/diskstats` (a partition's
/// writes count again beside its disk's: a quiet window is then one with under half of
/// [`QUIET_WRITES`] written); 0 where that file cannot be read.
fn disk_writes() -> u64 {
    let Ok(stats) = std::fs::read_to_string("/proc/diskstats") else {
        return 0;
    };
    stats
        .lines()
        .filter_map(|line| line.split_whitespace().nth(9)?.parse::<u64>().ok())
        .sum::<u64>()
        * 512
}

/// Runs every workload on every engine of `options` over `corpus`, calling `progress` before
/// each step.
pub fn run(
    corpus: &Corpus,
    options: &RunOptions,
    progress: &mut dyn FnMut(Step<'_>),
) -> Result<Report> {
    if corpus.is_empty() {
        return Err(Error::WrongResult {
            engine: "runner",
            what: "the corpus has no document".to_owned(),
        });
    }
    let scratch = &options.scratch;
    if scratch.exists() {
        std::fs::remove_dir_all(scratch).map_err(Error::io(scratch))?;
    }
    std::fs::create_dir_all(scratch).map_err(Error::io(scratch))?;
    let available_at_start = crate::disk::available_bytes(scratch).ok();
    let mut subjects = subjects(options.engines, scratch)?;
    let rounds = |workload: Workload| {
        if workload.in_rounds() {
            options.settings.rounds.max(1)
        } else {
            1
        }
    };
    let total = 1 + subjects.len() * Workload::ALL.into_iter().map(rounds).sum::<usize>();
    progress(Step {
        done: 0,
        total,
        engine: "machine",
        what: "physical limits",
    });
    let plan = Plan::new(corpus, options.settings);
    let texts: Vec<&[u8]> = corpus
        .docs()
        .iter()
        .map(|doc| doc.text.as_bytes())
        .collect();
    let mut limits = PhysicalLimits::measure(scratch, options.limits, &texts)?;
    let mean_bytes = corpus.text_bytes() as f64 / corpus.len() as f64;
    let put_texts = plan.put_texts(options.limits.fdatasync_max);
    let batch_texts = plan.batch_texts(options.settings.batch_max);
    let thread_put_texts =
        plan.thread_put_texts(PUT_THREADS, options.limits.grouped_writes_per_thread);

    let mut results = Vec::new();
    let mut done = 1;
    for workload in Workload::ALL {
        let mut figures: Vec<Vec<Figure>> = subjects.iter().map(|_| Vec::new()).collect();
        let mut flush_rounds = Vec::new();
        let mut batch_flush_rounds = Vec::new();
        let mut batch_preallocated_rounds = Vec::new();
        let mut grouped_flush_rounds = Vec::new();
        for _ in 0..rounds(workload) {
            // The limit of a round's durable writes, measured right before them.
            let limit_of_round = matches!(
                workload,
                Workload::DurablePut | Workload::DurablePutThreads | Workload::BatchedPut
            );
            if limit_of_round {
                settle(scratch, options.settings.quiet_max)?;
            }
            match workload {
                Workload::DurablePut => {
                    flush_rounds.push(FlushLimits::measure(scratch, options.limits, &put_texts)?);
                }
                Workload::DurablePutThreads => grouped_flush_rounds.push(GroupedFlushes::measure(
                    scratch,
                    options.limits,
                    &thread_put_texts,
                )?),
                Workload::BatchedPut => {
                    let measure =
                        |space| SizedFlushes::measure(scratch, options.limits, &batch_texts, space);
                    batch_flush_rounds.push(measure(Space::Written)?);
                    batch_preallocated_rounds.push(measure(Space::Preallocated)?);
                }
                _ => {}
            }
            for (subject, figures) in subjects.iter_mut().zip(&mut figures) {
                progress(Step {
                    done,
                    total,
                    engine: subject.name(),
                    what: workload.title(),
                });
                done += 1;
                settle(scratch, options.settings.quiet_max)?;
                figures.extend(subject.run(workload, &plan)?);
            }
        }
        if !flush_rounds.is_empty() {
            let zeroed_ahead = flush_rounds.iter().map(|f| f.zeroed_ahead).collect();
            (limits.zeroed_ahead_rounds, limits.zeroed_ahead) =
                rounds_and_median(zeroed_ahead, |z| z.per_sec);
            (limits.flush_rounds, limits.flushes) =
                rounds_and_median(flush_rounds, |f| f.written.per_sec);
        }
        if !grouped_flush_rounds.is_empty() {
            (limits.grouped_flush_rounds, limits.grouped_flushes) =
                rounds_and_median(grouped_flush_rounds, |g| g.per_sec);
        }
        if !batch_flush_rounds.is_empty() {
            (limits.batch_flush_rounds, limits.batch_flushes) =
                rounds_and_median(batch_flush_rounds, |b| b.per_sec);
            (limits.batch_preallocated_rounds, limits.batch_preallocated) =
                rounds_and_median(batch_preallocated_rounds, |b| b.per_sec);
        }
        let mut rows: Vec<Row> = subjects
            .iter()
            .zip(figures)
            .map(|(subject, figures)| Row {
                name: subject.name().to_owned(),
                limit: false,
                figure: median_round(figures),
            })
            .collect();
        rows.extend(limit_rows(workload, &limits, mean_bytes, &options.settings));
        results.push(WorkloadResult {
            workload,
            title: workload.title(),
            unit: workload.unit(),
            rows,
        });
    }
    let engines = subjects
        .iter()
        .map(|subject| EngineSettings {
            engine: subject.name(),
            settings: subject.settings().unwrap_or_default(),
        })
        .collect();
    for subject in subjects {
        subject.close()?;
    }
    let goals = Report::evaluate_goals(&results);
    Ok(Report {
        command: options.command.clone(),
        machine: Machine::describe(scratch, available_at_start),
        corpus: CorpusSummary {
            description: corpus.description().to_owned(),
            docs: corpus.len(),
            text_bytes: corpus.text_bytes(),
            median_bytes: corpus.median_bytes(),
        },
        engines,
        limits,
        results,
        goals,
    })
}

/// A limit's rounds: every round's rate in the order they ran, and the median round.
fn rounds_and_median<T>(rounds: Vec<T>, rate: impl Fn(&T) -> f64) -> (Vec<f64>, Option<T>) {
    (
        rounds.iter().map(&rate).collect(),
        take_median(rounds, rate),
    )
}

/// The physical limits a workload's figure is bounded by, in the workload's unit.
fn limit_rows(
    workload: Workload,
    limits: &PhysicalLimits,
    mean_bytes: f64,
    settings: &Settings,
) -> Vec<Row> {
    let row = |name: &str, value: f64, latency| Row {
        name: name.to_owned(),
        limit: true,
        figure: Some(Figure {
            value,
            latency,
            note: None,
            writer_per_sec: None,
        }),
    };
    // A limit measured in rounds notes every round's figure, as the engines' rows do.
    let noted = |mut row: Row, rounds: &[f64]| {
        if let Some(figure) = row.figure.as_mut().filter(|_| rounds.len() > 1) {
            figure.note = Some(rounds_note(rounds));
        }
        row
    };
    match workload {
        Workload::BulkIngest => vec![
            row(
                SEQ_WRITE_LIMIT,
                limits.seq_write_bytes_per_sec / mean_bytes,
                None,
            ),
            row(
                TEXTS_WRITE_LIMIT,
                limits.texts_write_bytes_per_sec / mean_bytes,
                None,
            ),
        ],
        Workload::DurablePut | Workload::DurablePutThreads => limits
            .flushes
            .iter()
            .flat_map(|flushes| {
                [
                    row(
                        FDATASYNC_LIMIT,
                        flushes.append_fdatasync_per_sec,
                        flushes.append_fdatasync_latency,
                    ),
                    noted(
                        row(
                            WRITTEN_FDATASYNC_LIMIT,
                            flushes.written.per_sec,
                            flushes.written.latency,
                        ),
                        &limits.flush_rounds,
                    ),
                ]
            })
            .chain(limits.zeroed_ahead.map(|zeroed| {
                noted(
                    row(ZEROED_AHEAD_FDATASYNC_LIMIT, zeroed.per_sec, zeroed.latency),
                    &limits.zeroed_ahead_rounds,
                )
            }))
            .chain(
                limits
                    .grouped_flushes
                    .filter(|_| workload == Workload::DurablePutThreads)
                    .map(|grouped| {
                        noted(
                            row(GROUPED_FDATASYNC_LIMIT, grouped.per_sec, grouped.latency),
                            &limits.grouped_flush_rounds,
                        )
                    }),
            )
            .collect(),
        Workload::BatchedPut | Workload::BatchedPutSteady => {
            let docs = settings.batch_docs as f64;
            let batch_row = |name: &str, batches: &SizedFlushes, rounds: &[f64]| {
                noted(
                    row(name, batches.per_sec * docs, batches.latency),
                    &rounds.iter().map(|b| b * docs).collect::<Vec<_>>(),
                )
            };
            limits
                .batch_flushes
                .iter()
                .map(|b| batch_row(BATCH_FDATASYNC_LIMIT, b, &limits.batch_flush_rounds))
                .chain(limits.batch_preallocated.iter().map(|b| {
                    batch_row(
                        BATCH_PREALLOCATED_LIMIT,
                        b,
                        &limits.batch_preallocated_rounds,
                    )
                }))
                .collect()
        }
        Workload::GetUniformCopy | Workload::GetZipfCopy => vec![row(
            "limit: memory copy of a mean-sized text",
            limits.memcpy_bytes_per_sec / mean_bytes,
            None,
        )],
        _ => Vec::new(),
    }
}

/// Prints a step to stderr with the time since the run started.
pub fn print_step(started: Instant) -> impl FnMut(Step<'_>) {
    move |step| {
        eprintln!(
            "[{:>3}/{}] {:>6.1}s  {}: {}",
            step.done + 1,
            step.total,
            started.elapsed().as_secs_f64(),
            step.engine,
            step.what
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// The disks' writes count a write of this process once it is flushed, in bytes.
    #[test]
    fn the_disks_writes_count_a_flushed_write_in_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let before = disk_writes();
        let mut file = std::fs::File::create(dir.path().join("written")).unwrap();
        file.write_all(&vec![7u8; 8 << 20]).unwrap();
        file.sync_all().unwrap();
        let written = disk_writes() - before;
        assert!(written >= 8 << 20, "{written} bytes");
    }

    /// Samples that grow by `steps` (CPU time, bytes written) from one window to the
    /// next, counting how many were taken.
    fn samples(steps: Vec<(Duration, u64)>, taken: &mut usize) -> impl FnMut() -> (Duration, u64) {
        let mut at = (Duration::ZERO, 0);
        let mut steps = steps.into_iter();
        move || {
            *taken += 1;
            if *taken > 1 {
                let (cpu, written) = steps.next().unwrap_or((QUIET_CPU, 0));
                at = (at.0 + cpu, at.1 + written);
            }
            at
        }
    }

    /// A wait ends after three quiet windows in a row: windows in which the process used
    /// under 5 ms of CPU and the disks wrote under 1 MiB. Either at its bound breaks the
    /// run; past the bound of time, the wait ends however busy the windows are.
    #[test]
    fn the_wait_ends_after_three_quiet_windows_in_a_row() {
        let (idle, busy_cpu, busy_disk) = (
            (Duration::ZERO, 0),
            (QUIET_CPU, 0),
            (Duration::ZERO, QUIET_WRITES),
        );
        let under = (QUIET_CPU - Duration::from_nanos(1), QUIET_WRITES - 1);
        for (steps, windows) in [
            (vec![idle, idle, idle], 3),
            (vec![under, under, under], 3),
            (vec![busy_cpu, idle, idle, busy_disk, idle, idle, idle], 7),
            (vec![idle, idle, busy_cpu, idle, idle, idle], 6),
        ] {
            let mut taken = 0;
            let waited = quiet_by(Duration::from_secs(60), samples(steps.clone(), &mut taken));
            assert_eq!(taken, 1 + windows, "{steps:?}");
            assert!(waited >= QUIET_WINDOW * windows as u32, "{waited:?}");
        }
        // Every window busy: the wait ends at its bound.
        let mut taken = 0;
        let waited = quiet_by(QUIET_WINDOW * 4, samples(Vec::new(), &mut taken));
        assert!(waited >= QUIET_WINDOW * 4, "{waited:?}");
        assert!((2..10).contains(&taken), "{taken}");
    }

    #[test]
    fn the_wait_for_quiet_lasts_while_a_thread_of_the_process_works() {
        let busy = Duration::from_millis(400);
        let worker = std::thread::spawn(move || {
            let started = Instant::now();
            let mut spins = 0_u64;
            while started.elapsed() < busy {
                spins = std::hint::black_box(spins + 1);
            }
        });
        let waited = quiet(Duration::from_secs(10));
        worker.join().unwrap();
        // Quiet needs three idle windows after the work ends.
        assert!(waited >= busy, "waited {waited:?} beside {busy:?} of work");
    }
}
