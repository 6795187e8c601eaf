//! Opening and processes: how long a reopen takes by store size (beside LMDB and redb), how
//! much an open after a writer process is killed replays, and what a reader in another
//! process than the writer reads and sees.
//!
//! Every figure is a ratio inside one run: against LMDB's and redb's reopen at the same
//! size, against textstore's own clean reopen, against a reader inside the writer's
//! process.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, Refreshed, StoreOptions};

use crate::corpus::Document;
use crate::engine::{Engine, Reader};
use crate::engines::Textstore;
use crate::error::{Error, Result};

/// Store sizes of the reopen measurement.
pub const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Reopens measured per engine and size; the median is reported.
const ROUNDS: usize = 15;
/// Documents of the stores of the process measurements.
const PROCESS_DOCS: usize = 100_000;
/// The id whose text the writer process rewrites with the time of each commit.
const CLOCK_KEY: &str = "clock";

/// `docs` small documents (60 to 330 bytes), the same for every engine.
pub fn small_docs(docs: usize) -> Vec<Document> {
    (0..docs)
        .map(|i| {
            let words = 8 + (i * 7919) % 40;
            let mut text = format!("document {i}:");
            for w in 0..words {
                text.push_str([" index", " text", " résumé", " store"][(i + w) % 4]);
            }
            Document {
                id: DocId::from_key(&format!("small/{i}")),
                text,
            }
        })
        .collect()
}

/// One engine's median reopen + first get at each size, in milliseconds.
#[derive(Debug, Clone)]
pub struct ReopenRow {
    /// The engine.
    pub engine: &'static str,
    /// Milliseconds by size, in the order of [`SIZES`].
    pub ms: Vec<f64>,
}

/// Measures reopen + first get of every engine at every size. Each store is made by one
/// durable ingest and closed; each reopen is timed from the open call to the first read's
/// bytes consumed, with the engine's files in the page cache (as a restarted service finds
/// them).
pub fn reopen_by_size(scratch: &Path, sizes: &[usize], peers: bool) -> Result<Vec<ReopenRow>> {
    let ours = reopen_row::<Textstore>(scratch, sizes)?;
    if !peers {
        return Ok(vec![ours]);
    }
    #[cfg(feature = "peers")]
    return Ok(vec![
        ours,
        reopen_row::<crate::engines::Lmdb>(scratch, sizes)?,
        reopen_row::<crate::engines::Redb>(scratch, sizes)?,
    ]);
    #[cfg(not(feature = "peers"))]
    Err(Error::Engine {
        engine: "peers",
        operation: "reopen",
        source: "this binary was built without the `peers` feature".into(),
    })
}

fn reopen_row<E: Engine>(scratch: &Path, sizes: &[usize]) -> Result<ReopenRow> {
    let mut ms = Vec::new();
    for &size in sizes {
        let dir = scratch.join(format!(
            "reopen-{}-{size}",
            E::NAME.replace([' ', '(', ')'], "-")
        ));
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let docs = small_docs(size);
        let engine = E::create(&dir)?;
        engine.ingest(&docs)?;
        engine.close()?;
        let probe = &docs[size / 2];
        let mut times = Vec::new();
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let engine = E::open(&dir)?;
            let len = engine.reader()?.read(probe.id, |bytes| bytes.len())?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            if len != Some(probe.text.len()) {
                return Err(Error::WrongResult {
                    engine: E::NAME,
                    what: format!("document {} read as {len:?} bytes after a reopen", probe.id),
                });
            }
            engine.close()?;
        }
        times.sort_by(f64::total_cmp);
        ms.push(times[times.len() / 2]);
        std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    }
    Ok(ReopenRow {
        engine: E::NAME,
        ms,
    })
}

/// When the writer is killed, in multiples of the measurement's `seconds`: each kill follows
/// a clean close, whose index file starts the rewrite cycle afresh, so a kill lands as far
/// into the cycle as the writer ran. An open after a crash reads the journal's changes
/// since the index file, up to 2^18 of them before the next rewrite: kills spread over the
/// cycle, not only at its start, so that the median is a kill at an arbitrary time (the
/// bench's writer reaches the end of the cycle after about 29 s). The median is reported.
const KILL_AFTER: [f64; 3] = [1.0, 4.0, 8.0];

/// What an open after a killed writer found.
#[derive(Debug, Clone)]
pub struct AfterKill {
    /// How long the writer ran before the kill, seconds.
    pub after_secs: f64,
    /// The reopen + first get, ms.
    pub ms: f64,
    /// Frames of the index journal the open took.
    pub journal_frames: u64,
    /// Changes of documents those frames held.
    pub journal_changes: u64,
    /// Bytes of records the open replayed past the last frame.
    pub bytes_replayed: u64,
    /// Commits the writer made before it was killed.
    pub writer_commits: u64,
}

/// The reopens after killed writers, beside the clean reopen.
#[derive(Debug, Clone)]
pub struct KillReopen {
    /// Documents in the store.
    pub docs: usize,
    /// The clean reopen + first get, ms (median).
    pub clean_ms: f64,
    /// Each round's reopen after a kill, in the order run.
    pub rounds: Vec<AfterKill>,
    /// The journal interval the writer ran with.
    pub journal_bytes: u64,
}

impl KillReopen {
    /// The round with the median reopen time.
    pub fn median(&self) -> &AfterKill {
        let mut rounds: Vec<&AfterKill> = self.rounds.iter().collect();
        rounds.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        rounds[rounds.len() / 2]
    }
}

/// Makes a store of `docs` documents and measures its clean reopen; then three times lets
/// a writer process commit continuously, for 1, 4 and 8 times `seconds` (so that the kills
/// spread over the index file's rewrite cycle), kills it with SIGKILL, and measures the
/// reopen after (which closes the store, so each round starts from a clean close).
pub fn kill_reopen(scratch: &Path, docs: usize, exe: &Path, seconds: f64) -> Result<KillReopen> {
    let dir = scratch.join("kill-reopen");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let corpus = small_docs(docs);
    let engine = Textstore::create(&dir)?;
    engine.ingest(&corpus)?;
    engine.close()?;
    let probe = &corpus[docs / 2];
    let reopen = || -> Result<(f64, store_mmap::RecoveryReport, u64)> {
        let start = Instant::now();
        let store = open_store(&dir)?;
        let got = store
            .read_with(probe.id, str::len)
            .map_err(Error::engine("textstore", "read_with"))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        check(got == Some(probe.text.len()), "the probe after a reopen")?;
        let report = store.recovery().clone();
        let last_seq = store.last_seq();
        store.close().map_err(Error::engine("textstore", "close"))?;
        Ok((ms, report, last_seq))
    };
    let mut clean: Vec<f64> = (0..ROUNDS)
        .map(|_| reopen().map(|(ms, _, _)| ms))
        .collect::<Result<_>>()?;
    clean.sort_by(f64::total_cmp);
    let (_, _, mut seq_before) = reopen()?;
    let mut rounds = Vec::with_capacity(KILL_AFTER.len());
    for after in KILL_AFTER {
        let after_secs = seconds * after;
        let mut writer = spawn_writer(exe, &dir, after_secs * 2.0, None)?;
        std::thread::sleep(Duration::from_secs_f64(after_secs));
        writer.kill().map_err(Error::io(exe))?;
        writer.wait().map_err(Error::io(exe))?;
        let (ms, report, seq_after) = reopen()?;
        rounds.push(AfterKill {
            after_secs,
            ms,
            journal_frames: report.journal_frames,
            journal_changes: report.journal_changes,
            bytes_replayed: report.bytes_replayed,
            writer_commits: seq_after - seq_before,
        });
        seq_before = seq_after;
    }
    std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    Ok(KillReopen {
        docs,
        clean_ms: clean[clean.len() / 2],
        rounds,
        journal_bytes: store_mmap::DEFAULT_JOURNAL_BYTES,
    })
}

/// A reader inside the writer's process against one in another process, and how soon each
/// sees a commit.
#[derive(Debug, Clone)]
pub struct ProcessReads {
    /// Gets per second of a reader thread in the writer's process, on the writer's handle:
    /// the median of [`READ_ROUNDS`] windows.
    pub inside_gets_per_sec: f64,
    /// Gets per second of a reader thread in another process, on a read-only handle that a
    /// second thread refreshes every 10 ms: the median of [`READ_ROUNDS`] windows.
    pub outside_gets_per_sec: f64,
    /// The median of the rounds' ratios, outside over inside, each from two windows run
    /// back to back (their order alternating from round to round).
    pub gets_ratio: f64,
    /// Median time from a commit's submission to its text read by a thread inside the
    /// writer's process that reads it in a loop (no refresh needed), microseconds.
    pub inside_visible_us: f64,
    /// The same for a thread in another process that refreshes and reads in a loop.
    pub outside_visible_us: f64,
    /// Median time from a commit's submission to its return in the writer, microseconds.
    pub commit_us: f64,
}

/// Rounds of the reads across processes: one window inside the writer's process and one
/// outside each, so that the machine's drift (the page cache, the disk, the writer's
/// checkpoints) falls on both sides of each ratio alike.
pub const READ_ROUNDS: usize = 3;

/// Runs a writer process committing durable puts with a reader thread inside it, and
/// another with a reader in this process, [`READ_ROUNDS`] times each, alternating.
pub fn process_reads(scratch: &Path, exe: &Path, seconds: f64) -> Result<ProcessReads> {
    let dir = scratch.join("process-reads");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let corpus = small_docs(PROCESS_DOCS);
    let engine = Textstore::create(&dir)?;
    engine.ingest(&corpus)?;
    engine.close()?;

    // Inside: the writer process reads too, and prints what it measured; once with a
    // getting thread, once with only the thread that watches for new commits.
    let inside = |role: Role| -> Result<(f64, f64)> {
        let child = spawn_writer(exe, &dir, seconds, Some(role))?;
        let output = child.wait_with_output().map_err(Error::io(exe))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        check(
            output.status.success(),
            "the writer process with a reader inside",
        )?;
        let field = |name: &str| -> Result<f64> {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
                .ok_or_else(|| Error::WrongResult {
                    engine: "textstore",
                    what: format!("the writer process printed no {name:?}: {stdout}"),
                })
        };
        Ok((field("figure")?, field("commit_us")?))
    };
    let (inside_visible_us, commit_us) = inside(Role::Watch)?;

    // Outside: the same writer, and the reader here, in the same two roles.
    let outside = |role: Role| -> Result<f64> {
        let mut writer = spawn_writer(exe, &dir, seconds, None)?;
        let reader =
            ConcurrentStore::open_read_only(&dir, StoreOptions::new(), WriterOptions::default())
                .map_err(Error::engine("textstore", "open_read_only"))?;
        let refresh = match role {
            Role::Get => Refresh::Every(Duration::from_millis(10)),
            Role::Watch => Refresh::Every(Duration::ZERO),
        };
        let figure = measure_reads(&reader, &corpus, seconds, role, refresh)?;
        writer.wait().map_err(Error::io(exe))?;
        reader
            .close()
            .map_err(Error::engine("textstore", "close"))?;
        Ok(figure)
    };
    let outside_visible_us = outside(Role::Watch)?;
    let mut insides = Vec::with_capacity(READ_ROUNDS);
    let mut outsides = Vec::with_capacity(READ_ROUNDS);
    let mut ratios = Vec::with_capacity(READ_ROUNDS);
    for round in 0..READ_ROUNDS {
        let (inside_gets, outside_gets) = if round % 2 == 0 {
            let inside_gets = inside(Role::Get)?.0;
            (inside_gets, outside(Role::Get)?)
        } else {
            let outside_gets = outside(Role::Get)?;
            (inside(Role::Get)?.0, outside_gets)
        };
        ratios.push(outside_gets / inside_gets);
        insides.push(inside_gets);
        outsides.push(outside_gets);
    }
    let inside_gets_per_sec = median(&mut insides);
    let outside_gets_per_sec = median(&mut outsides);
    let gets_ratio = median(&mut ratios);
    std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    Ok(ProcessReads {
        inside_gets_per_sec,
        outside_gets_per_sec,
        gets_ratio,
        inside_visible_us,
        outside_visible_us,
        commit_us,
    })
}

/// What a measuring thread does; on a writer process's command line, `--inside get` or
/// `--inside watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Gets random documents, consuming their bytes: the figure is gets per second.
    Get,
    /// Reads the clock document in a loop: the figure is the median delay, in
    /// microseconds, from a version's submission to its first read.
    Watch,
}

/// How a reader keeps up with the writer.
#[derive(Clone, Copy)]
enum Refresh {
    /// It reads the writer's own handle: nothing to do.
    Never,
    /// A thread refreshes the handle this often.
    Every(Duration),
}

/// For `seconds`, one thread in `role` (see [`Role`]) and, with `refresh`, the refreshing
/// done on that thread between reads. Returns the role's figure.
fn measure_reads(
    store: &ConcurrentStore,
    corpus: &[Document],
    seconds: f64,
    role: Role,
    refresh: Refresh,
) -> Result<f64> {
    let stop = &AtomicBool::new(false);
    let clock = DocId::from_key(CLOCK_KEY);
    std::thread::scope(|scope| -> Result<f64> {
        let refresher = match (role, refresh) {
            (Role::Get, Refresh::Every(period)) => Some(scope.spawn(move || -> Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(period);
                    store
                        .refresh()
                        .map_err(Error::engine("textstore", "refresh"))?;
                }
                Ok(())
            })),
            _ => None,
        };
        let getter = (role == Role::Get).then(|| {
            scope.spawn(|| -> Result<f64> {
                let mut state = XORSHIFT_SEED;
                let mut gets = 0u64;
                let mut sum = 0u64;
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let doc = &corpus[(xorshift(&mut state) % corpus.len() as u64) as usize];
                    let bytes = store
                        .read_with(doc.id, |text| text.bytes().map(u64::from).sum::<u64>())
                        .map_err(Error::engine("textstore", "read_with"))?;
                    sum = sum.wrapping_add(bytes.unwrap_or(0));
                    gets += 1;
                }
                std::hint::black_box(sum);
                Ok(gets as f64 / start.elapsed().as_secs_f64())
            })
        });
        let watcher = (role == Role::Watch).then(|| {
            scope.spawn(|| -> Result<f64> {
                let mut delays = Vec::new();
                let mut last = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Refresh::Every(_) = refresh {
                        let _: Refreshed = store
                            .refresh()
                            .map_err(Error::engine("textstore", "refresh"))?;
                    }
                    let stamp = store
                        .read_with(clock, |text| text.parse::<u64>().ok())
                        .map_err(Error::engine("textstore", "read_with"))?
                        .flatten();
                    if let Some(stamp) = stamp.filter(|&stamp| stamp > last) {
                        last = stamp;
                        delays.push(monotonic_ns().saturating_sub(stamp) as f64 / 1e3);
                    }
                }
                delays.sort_by(f64::total_cmp);
                Ok(delays.get(delays.len() / 2).copied().unwrap_or(f64::NAN))
            })
        });
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        if let Some(refresher) = refresher {
            refresher.join().expect("the refresh thread panicked")?;
        }
        let figure = match (getter, watcher) {
            (Some(getter), _) => getter.join().expect("the reader thread panicked")?,
            (None, Some(watcher)) => watcher.join().expect("the watcher thread panicked")?,
            (None, None) => unreachable!("a role has a thread"),
        };
        Ok(figure)
    })
}

/// Where a reader's choices start.
const XORSHIFT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The next of a reader's uniform choices: Marsaglia's xorshift64 (13, 7, 17), a few
/// instructions a draw, so that the draws cost the reader little beside its gets, the same
/// in every process.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The writer process: durable single puts of random documents and of the clock document
/// (its text: the monotonic time of its submission), for `seconds`; with `inside`, a thread
/// in that role on its own handle measures what [`process_reads`] compares, and the process
/// prints its figure.
pub fn writer_process(dir: &Path, seconds: f64, inside: Option<Role>) -> Result<()> {
    let store = open_store(dir)?;
    let clock = DocId::from_key(CLOCK_KEY);
    let stop = AtomicBool::new(false);
    let corpus = if inside.is_some() {
        small_docs(PROCESS_DOCS)
    } else {
        Vec::new()
    };
    let (reads, commit_us) = std::thread::scope(|scope| -> Result<_> {
        let reader = inside.map(|role| {
            let (store, corpus) = (&store, &corpus);
            scope.spawn(move || measure_reads(store, corpus, seconds, role, Refresh::Never))
        });
        let start = Instant::now();
        let mut commits = Vec::new();
        let mut i = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            i += 1;
            let submitted = Instant::now();
            let (id, text) = if i.is_multiple_of(2) {
                (clock, monotonic_ns().to_string())
            } else {
                let n = i % PROCESS_DOCS as u64;
                (
                    DocId::from_key(&format!("small/{n}")),
                    format!("document {n}: rewritten {i}"),
                )
            };
            store
                .put(id, text)
                .and_then(|ticket| ticket.wait())
                .map_err(Error::engine("textstore", "put"))?;
            commits.push(submitted.elapsed().as_secs_f64() * 1e6);
        }
        stop.store(true, Ordering::Relaxed);
        commits.sort_by(f64::total_cmp);
        let commit_us = commits.get(commits.len() / 2).copied().unwrap_or(f64::NAN);
        let reads = match reader {
            Some(reader) => Some(reader.join().expect("the reader thread panicked")?),
            None => None,
        };
        Ok((reads, commit_us))
    })?;
    if let Some(figure) = reads {
        println!("figure {figure}\ncommit_us {commit_us}");
    }
    store.close().map_err(Error::engine("textstore", "close"))
}

fn open_store(dir: &Path) -> Result<ConcurrentStore> {
    ConcurrentStore::open(dir, StoreOptions::new(), WriterOptions::default())
        .map_err(Error::engine("textstore", "open"))
}

fn spawn_writer(exe: &Path, dir: &Path, seconds: f64, inside: Option<Role>) -> Result<Child> {
    let mut command = Command::new(exe);
    command
        .arg("writer-process")
        .arg("--store")
        .arg(dir)
        .arg("--seconds")
        .arg(seconds.to_string())
        .stdout(if inside.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit());
    if let Some(role) = inside {
        let value = clap::ValueEnum::to_possible_value(&role).expect("no role is skipped");
        command.arg("--inside").arg(value.get_name());
    }
    command.spawn().map_err(Error::io(exe))
}

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::WrongResult {
            engine: "textstore",
            what: format!("{what} failed"),
        })
    }
}

/// Nanoseconds of `CLOCK_MONOTONIC`: one clock for every process of the machine.
fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The figures of this module as plain text, with their ratios and goals.
pub fn to_text(
    sizes: &[usize],
    reopen: &[ReopenRow],
    kill: Option<&KillReopen>,
    reads: Option<&ProcessReads>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "reopen + first get, clean close (ms, median of {ROUNDS})"
    );
    let _ = write!(out, "  {:<14}", "engine");
    for size in sizes {
        let _ = write!(out, "{:>12}", format!("{size} docs"));
    }
    let largest_over_smallest = match (sizes.last(), sizes.first()) {
        (Some(&last), Some(&first)) => format!("{} / {}", count(last), count(first)),
        _ => String::new(),
    };
    let _ = writeln!(out, "{largest_over_smallest:>14}");
    for row in reopen {
        let _ = write!(out, "  {:<14}", row.engine);
        for ms in &row.ms {
            let _ = write!(out, "{ms:>12.3}");
        }
        let flat = row.ms.last().zip(row.ms.first()).map(|(l, f)| l / f);
        let _ = writeln!(out, "{:>13.2}×", flat.unwrap_or(f64::NAN));
    }
    let ours = reopen.iter().find(|row| row.engine == Textstore::NAME);
    for peer in reopen.iter().filter(|row| row.engine != Textstore::NAME) {
        if let Some(ours) = ours {
            let ratios: Vec<String> = ours
                .ms
                .iter()
                .zip(&peer.ms)
                .map(|(o, p)| format!("{:.2}×", o / p))
                .collect();
            let _ = writeln!(
                out,
                "  textstore's time / {}'s: {}  (goal: at most 2× at every size)",
                peer.engine,
                ratios.join(", ")
            );
        }
    }
    if let Some(kill) = kill {
        let median = kill.median();
        let rounds: Vec<String> = kill
            .rounds
            .iter()
            .map(|round| {
                format!(
                    "{:.1}× after {:.0} s ({} changes)",
                    round.ms / kill.clean_ms,
                    round.after_secs,
                    round.journal_changes
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "reopen after SIGKILL of a writer committing continuously, {} docs: {:.3} ms ({:.1}× the clean {:.3} ms, the median of {} kills spread over the index file's rewrite cycle: {}; goal at most 20×); it took {} journal frames ({} changes) and replayed {} bytes past the last (journal interval {} bytes); the writer made {} commits",
            kill.docs,
            median.ms,
            median.ms / kill.clean_ms,
            kill.clean_ms,
            kill.rounds.len(),
            rounds.join(", "),
            median.journal_frames,
            median.journal_changes,
            median.bytes_replayed,
            kill.journal_bytes,
            median.writer_commits
        );
    }
    if let Some(reads) = reads {
        let _ = writeln!(
            out,
            "a reader process while a writer process commits: {:.0} gets/s, {:.2}× the same reader inside the writer's process ({:.0} gets/s; medians of {READ_ROUNDS} alternating rounds, the ratio the median of the rounds' ratios; goal at least 0.9×)",
            reads.outside_gets_per_sec, reads.gets_ratio, reads.inside_gets_per_sec
        );
        let _ = writeln!(
            out,
            "commit submitted -> visible: {:.0} µs in another process (refreshing in a loop) against {:.0} µs inside the writer's process ({:.2}×); a commit itself takes {:.0} µs",
            reads.outside_visible_us,
            reads.inside_visible_us,
            reads.outside_visible_us / reads.inside_visible_us,
            reads.commit_us
        );
    }
    out
}

/// `n` as the reopen table's header names it: `10k`, `1M`, `1500`.
fn count(n: usize) -> String {
    match n {
        0 => "0".to_owned(),
        n if n.is_multiple_of(1_000_000) => format!("{}M", n / 1_000_000),
        n if n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The path of the running executable, to start the writer process with.
pub fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(Error::io(Path::new("/proc/self/exe")))
}

/// The median of `values` (the upper one of an even count), sorting them.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(after_secs: f64, ms: f64, journal_changes: u64) -> AfterKill {
        AfterKill {
            after_secs,
            ms,
            journal_frames: journal_changes / 100,
            journal_changes,
            bytes_replayed: 7,
            writer_commits: journal_changes * 2,
        }
    }

    /// The line of `text` that starts with `start`.
    fn line<'t>(text: &'t str, start: &str) -> &'t str {
        text.lines()
            .find(|line| line.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in {text}"))
    }

    /// Each figure of the text comes from its field: the reopen by size and its flatness,
    /// textstore's time over each peer's at each size, the kill round of the median time
    /// against the clean reopen, and the reads' ratios.
    #[test]
    fn the_text_gives_each_figure_and_its_ratios() {
        let sizes = [1_000, 20_000, 3_000_000];
        let reopen = [
            ReopenRow {
                engine: Textstore::NAME,
                ms: vec![0.2, 0.3, 0.5],
            },
            ReopenRow {
                engine: "LMDB (heed)",
                ms: vec![0.1, 0.6, 2.0],
            },
        ];
        let kill = KillReopen {
            docs: 5_000,
            clean_ms: 0.5,
            rounds: vec![
                after(1.0, 9.0, 900),
                after(4.0, 3.0, 300),
                after(8.0, 6.0, 600),
            ],
            journal_bytes: 16_384,
        };
        let reads = ProcessReads {
            inside_gets_per_sec: 1_000.0,
            outside_gets_per_sec: 900.0,
            gets_ratio: 0.85,
            inside_visible_us: 200.0,
            outside_visible_us: 1_000.0,
            commit_us: 150.0,
        };
        let text = to_text(&sizes, &reopen, Some(&kill), Some(&reads));
        let header = line(&text, "engine");
        assert!(header.contains("1000 docs") && header.contains("3000000 docs"));
        assert!(header.ends_with("3M / 1k"), "{header}");
        assert!(
            line(&text, "textstore ").ends_with("0.200       0.300       0.500         2.50×"),
            "{text}"
        );
        assert!(line(&text, "LMDB").ends_with("20.00×"), "{text}");
        assert!(
            line(
                &text,
                "textstore's time / LMDB (heed)'s: 2.00×, 0.50×, 0.25×"
            )
            .ends_with("(goal: at most 2× at every size)"),
            "{text}"
        );
        assert_eq!(kill.median().ms, 6.0);
        let four = KillReopen {
            rounds: vec![
                after(1.0, 4.0, 1),
                after(2.0, 1.0, 2),
                after(3.0, 3.0, 3),
                after(4.0, 2.0, 4),
            ],
            ..kill.clone()
        };
        assert_eq!(four.median().ms, 3.0, "the upper of the middle two");
        let killed = line(&text, "reopen after SIGKILL");
        for part in [
            "5000 docs: 6.000 ms (12.0× the clean 0.500 ms",
            "the median of 3 kills",
            "18.0× after 1 s (900 changes), 6.0× after 4 s (300 changes), 12.0× after 8 s (600 changes)",
            "it took 6 journal frames (600 changes) and replayed 7 bytes",
            "(journal interval 16384 bytes); the writer made 1200 commits",
        ] {
            assert!(killed.contains(part), "{part:?} not in {killed}");
        }
        assert!(
            line(&text, "a reader process").contains(
                "900 gets/s, 0.85× the same reader inside the writer's process (1000 gets/s"
            ),
            "{text}"
        );
        assert!(
            line(&text, "commit submitted").contains(
                "1000 µs in another process (refreshing in a loop) against 200 µs inside the writer's process (5.00×); a commit itself takes 150 µs"
            ),
            "{text}"
        );

        let alone = to_text(&sizes, &reopen[..1], None, None);
        assert_eq!(alone.lines().count(), 3, "{alone}");
    }

    /// The reader's draws are Marsaglia's xorshift64 from its seed, and spread over a
    /// corpus.
    #[test]
    fn the_readers_draws_are_xorshift64_and_cover_the_corpus() {
        let mut state = XORSHIFT_SEED;
        let first: Vec<u64> = (0..3).map(|_| xorshift(&mut state)).collect();
        assert_eq!(
            first,
            [
                0xdc1b_77ae_0bf3_4dad,
                0x64f0_eeb9_026e_6076,
                0x7b07_ce91_e590_6136
            ]
        );
        let mut seen = [false; 1_000];
        for _ in 0..20_000 {
            seen[(xorshift(&mut state) % 1_000) as usize] = true;
        }
        assert!(seen.iter().all(|&seen| seen));
    }

    /// Nanoseconds since boot, rising with the time that passes.
    #[test]
    fn the_monotonic_clock_counts_nanoseconds_since_boot() {
        let before = monotonic_ns();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let after = monotonic_ns();
        assert!(
            before >= 1_000_000_000,
            "{before}: booted less than a second ago"
        );
        let passed = after - before;
        assert!(
            (2_000_000..1_000_000_000).contains(&passed),
            "{passed} ns for 2 ms"
        );
    }

    #[test]
    fn counts_are_named_in_thousands_and_millions_where_they_are_whole() {
        let named: Vec<String> = [0, 999, 1_000, 1_500, 10_000, 1_000_000, 2_500_000]
            .into_iter()
            .map(count)
            .collect();
        assert_eq!(named, ["0", "999", "1k", "1500", "10k", "1M", "2500k"]);
    }

    #[test]
    fn the_median_is_the_upper_middle_value() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(&mut [5.0]), 5.0);
    }

    /// The small documents are 60 to 330 bytes, each under an id of its own, the same on
    /// every call.
    #[test]
    fn small_documents_are_small_distinct_and_the_same_each_time() {
        let docs = small_docs(500);
        assert_eq!(docs.len(), 500);
        let ids: std::collections::HashSet<DocId> = docs.iter().map(|doc| doc.id).collect();
        assert_eq!(ids.len(), 500);
        for doc in &docs {
            assert!((60..=330).contains(&doc.text.len()), "{}", doc.text);
        }
        let sizes: std::collections::HashSet<usize> =
            docs.iter().map(|doc| doc.text.len()).collect();
        assert!(sizes.len() > 20, "{sizes:?}");
        assert_eq!(small_docs(500)[123].text, docs[123].text);
        assert_eq!(docs[0].id, DocId::from_key("small/0"));
    }

    /// One row for textstore alone, a time for each size, each store removed after.
    #[test]
    fn the_reopen_is_timed_at_each_size() {
        let dir = tempfile::tempdir().unwrap();
        let rows = reopen_by_size(dir.path(), &[10, 300], false).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].engine, Textstore::NAME);
        assert_eq!(rows[0].ms.len(), 2);
        // Milliseconds: a store of a few hundred documents opens in well under a second
        // and in more than a microsecond.
        assert!(
            rows[0].ms.iter().all(|&ms| (0.001..500.0).contains(&ms)),
            "{rows:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
