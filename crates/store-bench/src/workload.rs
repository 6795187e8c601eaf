//! The workloads, and how one engine runs each of them.
//!
//! Every figure measures only what it names: documents to write and ids to read are drawn
//! before the clock starts, stores are created and removed outside the timed region, and
//! every read is checked against the corpus (a missing document or a wrong length is an
//! error, so an engine cannot look fast by doing nothing).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use store_mmap::DocId;

use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};
use crate::measure::{Latencies, Percentiles, Throughput, combine_threads, run_for, time_each};
use crate::plan::{CHOICES, Plan};

/// A workload, in the order a run measures them: each starts from the state the ones
/// before it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Every document of the corpus in one commit, into a new store.
    BulkIngest,
    /// Close, then open and read one document.
    ReopenFirstGet,
    /// Disk space after the bulk ingest, over the text bytes.
    SpaceFresh,
    /// Gets of uniformly chosen documents, reading the engine's memory where it allows.
    GetUniform,
    /// The same, copying each text into a buffer the reader reuses.
    GetUniformCopy,
    /// Gets of Zipf-chosen documents (exponent 0.99), without copying.
    GetZipf,
    /// The same, copying.
    GetZipfCopy,
    /// 64 to 256 bytes out of uniformly chosen documents.
    Substring,
    /// One document per durable commit.
    DurablePut,
    /// Durable single puts from [`PUT_THREADS`] threads at once: what group commit gives.
    DurablePutThreads,
    /// 100 documents per durable commit.
    BatchedPut,
    /// Two threads getting uniformly chosen documents while a third does durable puts.
    ReadersDuringWriter,
    /// The same with the writer paced at [`PACED_PUTS_PER_SEC`], a rate every engine's
    /// writer sustains: every engine's readers then share the machine with the same writes,
    /// where the unpaced workload gives a faster writer more of it.
    ReadersDuringPacedWriter,
    /// 100 documents per durable commit in a store in steady state: measured after the
    /// engine rewrote [`Settings::steady_bytes`](crate::plan::Settings::steady_bytes) of
    /// documents, in commits of [`STEADY_BATCH_DOCS`], so that it reclaims the space of old versions as a store that
    /// keeps writing does (textstore compacts the segments those rewrites left dead, and
    /// writes its next segments over the files it keeps as spares; a B-tree reuses its freed
    /// pages). Measured after every other workload on the ingested store, which it grows;
    /// not for the engines without a steady state ([`crate::Engine::HAS_STEADY_STATE`]).
    BatchedPutSteady,
    /// Disk space after a new bulk ingest and overwriting every other document, over the
    /// text bytes.
    SpaceOverwritten,
    /// Disk space after the engine's compaction, over the text bytes, with the engine open;
    /// its note gives the space once the engine is closed too.
    SpaceCompacted,
}

impl Workload {
    /// Every workload, in the order a run measures them.
    pub const ALL: [Workload; 16] = [
        Workload::BulkIngest,
        Workload::ReopenFirstGet,
        Workload::SpaceFresh,
        Workload::GetUniform,
        Workload::GetUniformCopy,
        Workload::GetZipf,
        Workload::GetZipfCopy,
        Workload::Substring,
        Workload::DurablePut,
        Workload::DurablePutThreads,
        Workload::BatchedPut,
        Workload::ReadersDuringWriter,
        Workload::ReadersDuringPacedWriter,
        Workload::BatchedPutSteady,
        Workload::SpaceOverwritten,
        Workload::SpaceCompacted,
    ];

    /// Its title in reports.
    pub fn title(self) -> &'static str {
        match self {
            Workload::BulkIngest => "bulk ingest, one commit",
            Workload::ReopenFirstGet => "reopen + first get",
            Workload::SpaceFresh => "space amplification after ingest",
            Workload::GetUniform => "uniform gets, zero-copy",
            Workload::GetUniformCopy => "uniform gets, copy-out",
            Workload::GetZipf => "zipf(0.99) gets, zero-copy",
            Workload::GetZipfCopy => "zipf(0.99) gets, copy-out",
            Workload::Substring => "64-256 B substring extraction",
            Workload::DurablePut => "durable single puts",
            Workload::DurablePutThreads => "durable single puts from 8 threads",
            Workload::BatchedPut => "durable batched puts (100 per commit)",
            Workload::BatchedPutSteady => "durable batched puts (100 per commit), steady state",
            Workload::ReadersDuringWriter => "2 readers during a durable writer",
            Workload::ReadersDuringPacedWriter => {
                "2 readers during a durable writer paced at 1000 puts/s"
            }
            Workload::SpaceOverwritten => "space amplification after overwriting half",
            Workload::SpaceCompacted => "space amplification after compaction",
        }
    }

    /// The unit of its figure.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::BulkIngest | Workload::BatchedPut | Workload::BatchedPutSteady => "docs/s",
            Workload::ReopenFirstGet => "ms",
            Workload::SpaceFresh | Workload::SpaceOverwritten | Workload::SpaceCompacted => {
                "× text bytes"
            }
            Workload::GetUniform
            | Workload::GetUniformCopy
            | Workload::GetZipf
            | Workload::GetZipfCopy
            | Workload::Substring
            | Workload::ReadersDuringWriter
            | Workload::ReadersDuringPacedWriter => "ops/s",
            Workload::DurablePut | Workload::DurablePutThreads => "puts/s",
        }
    }

    /// Whether a run measures it in rounds, engines taking turns round by round
    /// ([`Settings::rounds`](crate::plan::Settings::rounds)): the reads, which leave every
    /// store as they found it, and the durable writes, whose stores only grow by the versions each round writes. A write
    /// workload's limit is measured in every round too, right before the engines' turns.
    /// The bulk ingest and the reopen repeat within one turn instead (each round needs a
    /// store of its own), and the space workloads measure a state, not a rate.
    pub fn in_rounds(self) -> bool {
        matches!(
            self,
            Workload::GetUniform
                | Workload::GetUniformCopy
                | Workload::GetZipf
                | Workload::GetZipfCopy
                | Workload::Substring
                | Workload::DurablePut
                | Workload::DurablePutThreads
                | Workload::BatchedPut
                | Workload::BatchedPutSteady
                | Workload::ReadersDuringWriter
                | Workload::ReadersDuringPacedWriter
        )
    }

    /// Whether a larger figure is better (throughput), or a smaller one (time, space).
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Workload::ReopenFirstGet
                | Workload::SpaceFresh
                | Workload::SpaceOverwritten
                | Workload::SpaceCompacted
        )
    }

    /// How many times better `figure` is than `reference`: above 1 when `figure` is better,
    /// whichever direction "better" is for this workload.
    pub fn ratio(self, figure: f64, reference: f64) -> f64 {
        if self.higher_is_better() {
            figure / reference
        } else {
            reference / figure
        }
    }
}

/// One engine's result for one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The figure, in the workload's unit.
    pub value: f64,
    /// Per-operation latencies, where the workload has operations.
    pub latency: Option<Percentiles>,
    /// Other things measured alongside (bandwidth, the writer's rate, a compaction's time).
    pub note: Option<String>,
    /// The writer's puts per second, in the workload of readers beside a writer.
    pub writer_per_sec: Option<f64>,
}

impl Figure {
    pub(crate) fn of(value: f64) -> Figure {
        Figure {
            value,
            latency: None,
            note: None,
            writer_per_sec: None,
        }
    }

    fn with_latency(mut self, latencies: &Latencies) -> Figure {
        self.latency = latencies.percentiles();
        self
    }

    fn with_note(mut self, note: String) -> Figure {
        self.note = Some(note);
        self
    }
}

/// An engine, or the directory it lives in, under measurement.
pub trait Subject {
    /// The engine's name.
    fn name(&self) -> &'static str;

    /// The engine's settings, once it exists.
    fn settings(&self) -> Option<String>;

    /// Runs one workload; `None` if it does not apply to the engine.
    fn run(&mut self, workload: Workload, plan: &Plan<'_>) -> Result<Option<Figure>>;

    /// Closes the engine.
    fn close(self: Box<Self>) -> Result<()>;
}

/// An [`Engine`] with its directory.
#[derive(Debug)]
pub struct EngineSubject<E> {
    dir: PathBuf,
    engine: Option<E>,
    /// The text bytes rewritten before the batched puts in steady state, once done.
    rewritten_bytes: Option<u64>,
}

impl<E: Engine> EngineSubject<E> {
    /// An engine to be created in `dir` (made if missing) by the bulk ingest.
    pub fn new(dir: PathBuf) -> EngineSubject<E> {
        EngineSubject {
            dir,
            engine: None,
            rewritten_bytes: None,
        }
    }

    fn engine(&self) -> Result<&E> {
        self.engine.as_ref().ok_or_else(not_ingested::<E>)
    }
}

impl<E: Engine> Subject for EngineSubject<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }

    fn settings(&self) -> Option<String> {
        self.engine.as_ref().map(E::settings)
    }

    fn run(&mut self, workload: Workload, plan: &Plan<'_>) -> Result<Option<Figure>> {
        if workload == Workload::BulkIngest {
            let mut rounds = Vec::new();
            for _ in 0..plan.settings.ingest_rounds.max(1) {
                if let Some(engine) = self.engine.take() {
                    engine.close()?;
                    std::fs::remove_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
                }
                let (engine, took) = bulk_ingest::<E>(&self.dir, plan)?;
                self.engine = Some(engine);
                rounds.push(took);
            }
            return Ok(Some(ingest_figure(plan, &rounds)));
        }
        let persistent_only = matches!(
            workload,
            Workload::ReopenFirstGet
                | Workload::SpaceFresh
                | Workload::SpaceOverwritten
                | Workload::SpaceCompacted
        );
        if persistent_only && !E::PERSISTENT {
            return Ok(None);
        }
        if workload == Workload::BatchedPutSteady && !E::HAS_STEADY_STATE {
            return Ok(None);
        }
        let figure = match workload {
            Workload::BulkIngest => unreachable!("handled above"),
            Workload::ReopenFirstGet => {
                let engine = self.engine.take().ok_or_else(not_ingested::<E>)?;
                let (engine, figure) = reopen(engine, &self.dir, plan)?;
                self.engine = Some(engine);
                figure
            }
            Workload::SpaceFresh => space(&self.dir, plan)?,
            Workload::GetUniform => gets(self.engine()?, plan, &plan.uniform, Access::ZeroCopy)?,
            Workload::GetUniformCopy => gets(self.engine()?, plan, &plan.uniform, Access::Copy)?,
            Workload::GetZipf => gets(self.engine()?, plan, &plan.zipf, Access::ZeroCopy)?,
            Workload::GetZipfCopy => gets(self.engine()?, plan, &plan.zipf, Access::Copy)?,
            Workload::Substring => substring(self.engine()?, plan)?,
            Workload::DurablePut => durable_puts(self.engine()?, plan)?,
            Workload::DurablePutThreads => durable_puts_from_threads(self.engine()?, plan)?,
            Workload::BatchedPut => batched_puts(self.engine()?, plan)?,
            Workload::BatchedPutSteady => {
                let rewritten = match self.rewritten_bytes {
                    Some(bytes) => bytes,
                    None => *self.rewritten_bytes.insert(rewrite(
                        self.engine()?,
                        plan,
                        plan.settings.steady_bytes,
                    )?),
                };
                let figure = batched_puts(self.engine()?, plan)?;
                let note = figure.note.clone().unwrap_or_default();
                figure.with_note(format!(
                    "{note}; after rewriting {:.1} MiB",
                    rewritten as f64 / (1 << 20) as f64
                ))
            }
            Workload::ReadersDuringWriter => readers_during_writer(self.engine()?, plan, None)?,
            Workload::ReadersDuringPacedWriter => {
                readers_during_writer(self.engine()?, plan, Some(PACED_PUTS_PER_SEC))?
            }
            Workload::SpaceOverwritten => {
                // The workloads before wrote as many versions as each engine could in their
                // time: start again from the corpus, so that every engine holds the same
                // versions when its space is measured.
                if let Some(engine) = self.engine.take() {
                    engine.close()?;
                }
                std::fs::remove_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
                let (engine, _) = bulk_ingest::<E>(&self.dir, plan)?;
                overwrite_half(&engine, plan)?;
                self.engine = Some(engine);
                space(&self.dir, plan)?
            }
            Workload::SpaceCompacted => {
                let engine = self.engine.as_mut().ok_or_else(not_ingested::<E>)?;
                let start = Instant::now();
                if !engine.compact()? {
                    return Ok(None);
                }
                let took = start.elapsed();
                let figure = space(&self.dir, plan)?;
                // The files a compaction replaced may stay until the engine closes (fjall
                // keeps its old tables while the keyspace is open), so the space once
                // closed is given beside; the engine is opened again for what follows.
                if let Some(engine) = self.engine.take() {
                    engine.close()?;
                }
                let closed = space(&self.dir, plan)?.value;
                self.engine = Some(E::open(&self.dir)?);
                let on_disk = figure.note.clone().unwrap_or_default();
                figure.with_note(format!(
                    "{on_disk}; {closed:.3} once closed; compaction took {:.0} ms",
                    took.as_secs_f64() * 1e3
                ))
            }
        };
        Ok(Some(figure))
    }

    fn close(self: Box<Self>) -> Result<()> {
        match self.engine {
            Some(engine) => engine.close(),
            None => Ok(()),
        }
    }
}

fn not_ingested<E: Engine>() -> Error {
    Error::WrongResult {
        engine: E::NAME,
        what: "a workload ran before the bulk ingest created the engine".to_owned(),
    }
}

/// Ingests the corpus into a new store in `dir`; returns the engine and the seconds the
/// ingest took.
fn bulk_ingest<E: Engine>(dir: &Path, plan: &Plan<'_>) -> Result<(E, f64)> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let engine = E::create(dir)?;
    let start = Instant::now();
    engine.ingest(plan.corpus.docs())?;
    Ok((engine, start.elapsed().as_secs_f64()))
}

/// The round of median figure among one engine's `rounds` of a workload, with every
/// round's figure in its note, in the order they ran.
pub fn median_round(rounds: Vec<Figure>) -> Option<Figure> {
    if rounds.len() < 2 {
        return rounds.into_iter().next();
    }
    let values: Vec<f64> = rounds.iter().map(|f| f.value).collect();
    let mut median = take_median(rounds, |f| f.value)?;
    let rounds_note = rounds_note(&values);
    median.note = Some(match median.note.take() {
        Some(note) => format!("{note}; {rounds_note}"),
        None => rounds_note,
    });
    Some(median)
}

/// The item of median `key` among `items`; of an even number, the lower of the middle two,
/// so that a slow window counts as much as a fast one.
pub(crate) fn take_median<T>(items: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    let count = items.len();
    let mut sorted = items;
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    (count > 0).then(|| sorted.swap_remove((count - 1) / 2))
}

/// What a median round's note says of the rounds: how many, and each one's figure in the
/// order they ran.
pub(crate) fn rounds_note(values: &[f64]) -> String {
    let all: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    format!("median of {} rounds: {}", values.len(), all.join(", "))
}

/// The fastest of the ingest rounds that took `rounds` seconds, with every round's rate.
fn ingest_figure(plan: &Plan<'_>, rounds: &[f64]) -> Figure {
    let fastest = rounds.iter().copied().fold(f64::INFINITY, f64::min);
    let docs = plan.corpus.len() as f64;
    let mib = plan.corpus.text_bytes() as f64 / (1 << 20) as f64;
    let all: Vec<String> = rounds.iter().map(|s| format!("{:.0}", mib / s)).collect();
    Figure::of(docs / fastest).with_note(format!(
        "{:.0} MiB/s of text; fastest of {} rounds, MiB/s: {}",
        mib / fastest,
        rounds.len(),
        all.join(", ")
    ))
}

fn reopen<E: Engine>(mut engine: E, dir: &Path, plan: &Plan<'_>) -> Result<(E, Figure)> {
    let first = plan.uniform[0];
    let mut times = Vec::new();
    for _ in 0..plan.settings.reopen_rounds.max(1) {
        engine.close()?;
        let start = Instant::now();
        engine = E::open(dir)?;
        let len = engine.reader()?.read(plan.id(first), |bytes| bytes.len())?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        check_len::<E>(plan, first, len)?;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let all: Vec<String> = times.iter().map(|ms| format!("{ms:.2}")).collect();
    let figure = Figure::of(median).with_note(format!("rounds, ms: {}", all.join(", ")));
    Ok((engine, figure))
}

fn check_len<E: Engine>(plan: &Plan<'_>, index: u32, len: Option<usize>) -> Result<()> {
    let expected = plan.lens[index as usize] as usize;
    match len {
        Some(len) if len == expected => Ok(()),
        Some(len) => Err(Error::WrongResult {
            engine: E::NAME,
            what: format!(
                "document {} read as {len} bytes, expected {expected}",
                plan.id(index)
            ),
        }),
        None => Err(Error::WrongResult {
            engine: E::NAME,
            what: format!("document {} is missing", plan.id(index)),
        }),
    }
}

/// Allocated bytes of every file under `dir`, as `du` counts them: preallocated but unused
/// space counts, holes in sparse files do not.
pub fn allocated_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(|err| Error::Io {
            path: err.path().unwrap_or(dir).to_path_buf(),
            source: err.into(),
        })?;
        if entry.file_type().is_file() {
            let meta = entry.metadata().map_err(|err| Error::Io {
                path: entry.path().to_path_buf(),
                source: err.into(),
            })?;
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

fn space(dir: &Path, plan: &Plan<'_>) -> Result<Figure> {
    let allocated = allocated_bytes(dir)?;
    let text = plan.corpus.text_bytes();
    Ok(
        Figure::of(allocated as f64 / text as f64).with_note(format!(
            "{:.1} MiB on disk for {:.1} MiB of text",
            allocated as f64 / (1 << 20) as f64,
            text as f64 / (1 << 20) as f64
        )),
    )
}

#[derive(Debug, Clone, Copy)]
enum Access {
    ZeroCopy,
    Copy,
}

/// Reads every byte of `bytes` (a sum): what each engine's read does with what it returns,
/// so that every engine does the same work.
///
/// Out of line, so that every engine runs the same machine code: inlined into each
/// engine's read, the same sum compiled to different loops (unrolled four times in
/// textstore's read and eight times in the `HashMap`'s, in a zipf loop over the synthetic
/// corpus), and textstore's reads measured 0.72-0.75x the `HashMap`'s against 0.89-0.93x
/// with this one function.
#[inline(never)]
fn consume(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// One read of document `index`, returning its length; `buf` is the copy-out buffer.
fn read_one<R: Reader>(
    reader: &mut R,
    plan: &Plan<'_>,
    index: u32,
    access: Access,
    buf: &mut Vec<u8>,
) -> Result<Option<usize>> {
    let id = plan.id(index);
    match access {
        // Every byte is read, the same way for every engine, as a caller of a get reads the
        // text: an engine that hands out a slice nobody reads does not count as faster.
        Access::ZeroCopy => reader.read(id, |bytes| {
            black_box(consume(bytes));
            bytes.len()
        }),
        Access::Copy => reader.read(id, |bytes| {
            buf.clear();
            buf.extend_from_slice(bytes);
            black_box(&buf);
            buf.len()
        }),
    }
}

fn gets<E: Engine>(engine: &E, plan: &Plan<'_>, choices: &[u32], access: Access) -> Result<Figure> {
    let mut reader = engine.reader()?;
    let mut buf = Vec::new();
    let mut read = |i: usize| -> Result<()> {
        let index = choices[i % choices.len()];
        let len = read_one(&mut reader, plan, index, access, &mut buf)?;
        check_len::<E>(plan, index, len)
    };
    let throughput = run_for(plan.settings.read_time, &mut read)?;
    let (_, latencies) = time_each(plan.settings.latency_time, usize::MAX, |i| {
        read(i + throughput.ops as usize)
    })?;
    Ok(Figure::of(throughput.per_sec()).with_latency(&latencies))
}

fn substring<E: Engine>(engine: &E, plan: &Plan<'_>) -> Result<Figure> {
    let mut reader = engine.reader()?;
    let mut extract = |i: usize| -> Result<()> {
        let (index, range) = &plan.substrings[i % plan.substrings.len()];
        let expected = range.len();
        let len = reader.extract(plan.id(*index), range.clone(), |text| {
            black_box(consume(text.as_bytes()));
            text.len()
        })?;
        if len == Some(expected) {
            Ok(())
        } else {
            Err(Error::WrongResult {
                engine: E::NAME,
                what: format!(
                    "bytes {range:?} of document {} read as {len:?} bytes",
                    plan.id(*index)
                ),
            })
        }
    };
    let throughput = run_for(plan.settings.read_time, &mut extract)?;
    let (_, latencies) = time_each(plan.settings.latency_time, usize::MAX, |i| {
        extract(i + throughput.ops as usize)
    })?;
    Ok(Figure::of(throughput.per_sec()).with_latency(&latencies))
}

fn durable_puts<E: Engine>(engine: &E, plan: &Plan<'_>) -> Result<Figure> {
    let settings = &plan.settings;
    let (throughput, latencies) =
        time_each(settings.durable_put_time, settings.durable_put_max, |i| {
            let (id, text) = plan.write(i);
            engine.put(id, text)
        })?;
    Ok(Figure::of(throughput.per_sec()).with_latency(&latencies))
}

/// Threads of [`Workload::DurablePutThreads`].
pub const PUT_THREADS: usize = 8;

/// Each thread waits for its own durable put before it sends the next, as a service's
/// request handlers do; the figure is every thread's puts over the longest thread's time.
fn durable_puts_from_threads<E: Engine>(engine: &E, plan: &Plan<'_>) -> Result<Figure> {
    let settings = &plan.settings;
    let results: Vec<Result<(Throughput, Latencies)>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..PUT_THREADS)
            .map(|t| {
                scope.spawn(move || {
                    time_each(settings.durable_put_time, settings.durable_put_max, |i| {
                        let (id, text) = plan.write_of_thread(t, PUT_THREADS, i);
                        engine.put(id, text)
                    })
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a put thread panicked"))
            .collect()
    });
    let (throughput, latencies) = combine_threads(results)?;
    Ok(Figure::of(throughput.per_sec()).with_latency(&latencies))
}

/// Documents per commit of the rewrites before the batched puts in steady state: commits of
/// a few megabytes, which every engine makes at close to its bulk rate.
pub const STEADY_BATCH_DOCS: usize = 1000;

/// Rewrites documents, [`STEADY_BATCH_DOCS`] per durable commit, until `bytes` of text are
/// written; returns the bytes written.
fn rewrite<E: Engine>(engine: &E, plan: &Plan<'_>, bytes: u64) -> Result<u64> {
    let mut batch = Vec::with_capacity(STEADY_BATCH_DOCS);
    let mut written = 0u64;
    let mut i = 0;
    while written < bytes {
        batch.clear();
        for _ in 0..STEADY_BATCH_DOCS {
            let (id, text) = plan.write(i);
            written += text.len() as u64;
            batch.push((id, text));
            i += 1;
        }
        engine.put_batch(&batch)?;
    }
    Ok(written)
}

fn batched_puts<E: Engine>(engine: &E, plan: &Plan<'_>) -> Result<Figure> {
    let settings = &plan.settings;
    let mut batch = Vec::with_capacity(settings.batch_docs);
    let (throughput, latencies) = time_each(settings.batch_time, settings.batch_max, |i| {
        batch.clear();
        batch.extend((0..settings.batch_docs).map(|j| plan.write(i * settings.batch_docs + j)));
        engine.put_batch(&batch)
    })?;
    let docs = throughput.per_sec() * settings.batch_docs as f64;
    Ok(Figure::of(docs)
        .with_latency(&latencies)
        .with_note(format!("{:.0} commits/s", throughput.per_sec())))
}

/// The writer's rate in [`Workload::ReadersDuringPacedWriter`]: below every engine's durable
/// single puts beside two readers on the reference machine (the slowest there, redb, made
/// 1,197 and 1,600 a second on the two corpora; LMDB 2,721 and 3,146). An engine that cannot
/// keep the pace runs behind it, and the figure's note gives the rate it made.
pub const PACED_PUTS_PER_SEC: f64 = 1000.0;

/// Readers beside a writer doing durable single puts, as fast as it can or at `pace` puts a
/// second.
fn readers_during_writer<E: Engine>(
    engine: &E,
    plan: &Plan<'_>,
    pace: Option<f64>,
) -> Result<Figure> {
    let settings = &plan.settings;
    let stop = AtomicBool::new(false);
    let puts = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> Result<Duration> {
            let start = Instant::now();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(rate) = pace {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                let (id, text) = plan.write(i);
                engine.put(id, text)?;
                puts.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok(start.elapsed())
        });
        let readers: Vec<_> = (0..settings.readers)
            .map(|r| {
                scope.spawn(move || -> Result<(Throughput, Latencies)> {
                    let mut reader = engine.reader()?;
                    let mut buf = Vec::new();
                    let offset = r * (CHOICES / settings.readers.max(1));
                    let mut read = |i: usize| -> Result<()> {
                        let index = plan.uniform[(offset + i) % plan.uniform.len()];
                        let len = read_one(&mut reader, plan, index, Access::ZeroCopy, &mut buf)?;
                        check_len::<E>(plan, index, len)
                    };
                    let throughput = run_for(settings.readers_time, &mut read)?;
                    let (_, latencies) = time_each(settings.latency_time, usize::MAX, |i| {
                        read(i + throughput.ops as usize)
                    })?;
                    Ok((throughput, latencies))
                })
            })
            .collect();
        let mut rate = 0.0;
        let mut latencies = Latencies::default();
        let mut failure = None;
        for reader in readers {
            match reader.join().expect("a reader thread panicked") {
                Ok((throughput, times)) => {
                    rate += throughput.per_sec();
                    latencies.merge(&times);
                }
                Err(err) => failure = failure.or(Some(err)),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let wrote_for = writer.join().expect("the writer thread panicked")?;
        if let Some(err) = failure {
            return Err(err);
        }
        let put_rate = puts.load(Ordering::Relaxed) as f64 / wrote_for.as_secs_f64();
        let mut figure = Figure::of(rate)
            .with_latency(&latencies)
            .with_note(format!("writer: {put_rate:.0} puts/s"));
        figure.writer_per_sec = Some(put_rate);
        Ok(figure)
    })
}

/// Overwrites every other document with its second version, 500 to a commit.
fn overwrite_half<E: Engine>(engine: &E, plan: &Plan<'_>) -> Result<()> {
    let docs = plan.corpus.docs();
    let half: Vec<(DocId, &str)> = (0..docs.len())
        .step_by(2)
        .map(|i| (docs[i].id, plan.rewrites[i].as_str()))
        .collect();
    for chunk in half.chunks(500) {
        engine.put_batch(chunk)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;
    use crate::plan::Settings;

    use std::sync::{LazyLock, Mutex};

    /// A corpus and plan for the tests that run workloads: drawing the plan's choices takes
    /// seconds in a debug build, so they share one.
    static CORPUS: LazyLock<Corpus> = LazyLock::new(|| Corpus::synthetic(60, 11));
    static PLAN: LazyLock<Plan<'static>> = LazyLock::new(|| Plan::new(&CORPUS, Settings::smoke(2)));

    /// An engine in memory that records what it is asked: each commit's documents and
    /// texts, in order, and each read's id.
    #[derive(Default)]
    struct Recorder {
        docs: Mutex<std::collections::HashMap<DocId, String>>,
        commits: Mutex<Vec<Vec<(DocId, String)>>>,
        /// Each read's id, with the thread that read it.
        reads: Mutex<Vec<(std::thread::ThreadId, DocId)>>,
    }

    impl Recorder {
        fn commit(&self, docs: &[(DocId, &str)]) {
            let mut map = self.docs.lock().unwrap();
            for &(id, text) in docs {
                map.insert(id, text.to_owned());
            }
            self.commits.lock().unwrap().push(
                docs.iter()
                    .map(|&(id, text)| (id, text.to_owned()))
                    .collect(),
            );
        }

        fn commits(&self) -> Vec<Vec<(DocId, String)>> {
            std::mem::take(&mut *self.commits.lock().unwrap())
        }

        fn reads(&self) -> Vec<DocId> {
            self.reads_by_thread().into_iter().flatten().collect()
        }

        /// The ids read, thread by thread, in the order each thread read them.
        fn reads_by_thread(&self) -> Vec<Vec<DocId>> {
            let mut threads: Vec<(std::thread::ThreadId, Vec<DocId>)> = Vec::new();
            for (thread, id) in std::mem::take(&mut *self.reads.lock().unwrap()) {
                match threads.iter_mut().find(|(t, _)| *t == thread) {
                    Some((_, ids)) => ids.push(id),
                    None => threads.push((thread, vec![id])),
                }
            }
            threads.into_iter().map(|(_, ids)| ids).collect()
        }
    }

    impl Engine for Recorder {
        type Reader<'a> = &'a Recorder;

        const NAME: &'static str = "recorder";
        const PERSISTENT: bool = false;

        fn create(_dir: &Path) -> Result<Self> {
            Ok(Recorder::default())
        }

        fn open(dir: &Path) -> Result<Self> {
            Err(Error::engine("recorder", "open")(format!(
                "keeps nothing in {} to open",
                dir.display()
            )))
        }

        fn settings(&self) -> String {
            "records what it is asked".to_owned()
        }

        fn put(&self, id: DocId, text: &str) -> Result<()> {
            self.commit(&[(id, text)]);
            Ok(())
        }

        fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
            self.commit(docs);
            Ok(())
        }

        fn reader(&self) -> Result<Self::Reader<'_>> {
            Ok(self)
        }

        fn compact(&mut self) -> Result<bool> {
            Ok(false)
        }

        fn close(self) -> Result<()> {
            Ok(())
        }
    }

    impl Reader for &Recorder {
        const ENGINE: &'static str = "recorder";

        fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
            self.reads
                .lock()
                .unwrap()
                .push((std::thread::current().id(), id));
            let docs = self.docs.lock().unwrap();
            Ok(docs.get(&id).map(|text| f(text.as_bytes())))
        }
    }

    /// A recorder holding the corpus.
    fn ingested() -> Recorder {
        let recorder = Recorder::default();
        recorder.ingest(CORPUS.docs()).unwrap();
        recorder.commits();
        recorder
    }

    /// Every engine writes what the limits beside it write: the durable puts the plan's
    /// writes one to a commit, the batched puts its batches, each thread its own writes in
    /// order; and the rewrites before the steady state whole batches of the plan's writes.
    #[test]
    fn the_write_workloads_commit_the_plans_writes_in_order() {
        let plan = &*PLAN;
        let texts = |commits: &[Vec<(DocId, String)>]| -> Vec<Vec<Vec<u8>>> {
            commits
                .iter()
                .map(|c| c.iter().map(|(_, t)| t.clone().into_bytes()).collect())
                .collect()
        };
        let recorder = ingested();

        durable_puts(&recorder, plan).unwrap();
        let commits = recorder.commits();
        assert!(!commits.is_empty() && commits.len() <= plan.settings.durable_put_max);
        let expected: Vec<Vec<Vec<u8>>> = plan
            .put_texts(commits.len())
            .into_iter()
            .map(|t| vec![t.to_vec()])
            .collect();
        assert_eq!(texts(&commits), expected);

        let figure = batched_puts(&recorder, plan).unwrap();
        let commits = recorder.commits();
        assert!(!commits.is_empty() && commits.len() <= plan.settings.batch_max);
        let expected: Vec<Vec<Vec<u8>>> = plan
            .batch_texts(commits.len())
            .into_iter()
            .map(|b| b.into_iter().map(<[u8]>::to_vec).collect())
            .collect();
        assert_eq!(texts(&commits), expected);
        // Documents a second: each commit's documents, at the commits' rate its note gives.
        let note = figure.note.as_deref().unwrap();
        let commits_per_sec: f64 = note.split_once(" commits/s").unwrap().0.parse().unwrap();
        let docs = commits_per_sec * plan.settings.batch_docs as f64;
        assert!(
            (figure.value / docs - 1.0).abs() < 0.01,
            "{} from {note}",
            figure.value
        );

        durable_puts_from_threads(&recorder, plan).unwrap();
        let commits = recorder.commits();
        let owner: std::collections::HashMap<DocId, usize> = (0..PUT_THREADS)
            .flat_map(|t| {
                (0..plan.settings.durable_put_max)
                    .map(move |i| (plan.write_of_thread(t, PUT_THREADS, i).0, t))
            })
            .collect();
        let mut by_thread = vec![Vec::new(); PUT_THREADS];
        for commit in &commits {
            assert_eq!(commit.len(), 1);
            let (id, text) = &commit[0];
            let thread = owner[id];
            by_thread[thread].push(text.clone().into_bytes());
        }
        for (t, written) in by_thread.iter().enumerate() {
            assert!(!written.is_empty(), "thread {t} wrote nothing");
            let expected: Vec<Vec<u8>> = plan.thread_put_texts(PUT_THREADS, written.len())[t]
                .iter()
                .map(|t| t.to_vec())
                .collect();
            assert_eq!(*written, expected, "thread {t}");
        }

        let bytes = 100_000;
        let written = rewrite(&recorder, plan, bytes).unwrap();
        let commits = recorder.commits();
        let texts_written: Vec<(DocId, String)> = commits.concat();
        assert!(commits.iter().all(|c| c.len() == STEADY_BATCH_DOCS));
        assert_eq!(
            written,
            texts_written
                .iter()
                .map(|(_, t)| t.len() as u64)
                .sum::<u64>()
        );
        // Whole commits, the last of which passed the bytes asked.
        let before_last: u64 = commits[..commits.len() - 1]
            .iter()
            .flatten()
            .map(|(_, t)| t.len() as u64)
            .sum();
        assert!(
            before_last < bytes && written >= bytes,
            "{before_last} {written}"
        );
        for (i, (id, text)) in texts_written.iter().enumerate() {
            assert_eq!((*id, text.as_str()), plan.write(i), "write {i}");
        }
    }

    /// The reads read the plan's choices in order, each checked against the corpus: a
    /// missing document or a wrong length is an error naming it.
    #[test]
    fn the_read_workloads_read_the_plans_choices_and_check_them() {
        let plan = &*PLAN;
        let recorder = ingested();
        for (choices, access) in [
            (&plan.uniform, Access::ZeroCopy),
            (&plan.zipf, Access::Copy),
        ] {
            gets(&recorder, plan, choices, access).unwrap();
            let reads = recorder.reads();
            assert!(reads.len() > 10, "{}", reads.len());
            let expected: Vec<DocId> = (0..reads.len())
                .map(|i| plan.id(choices[i % choices.len()]))
                .collect();
            assert_eq!(reads, expected);
        }
        substring(&recorder, plan).unwrap();
        let reads = recorder.reads();
        assert!(reads.len() > 10, "{}", reads.len());
        let expected: Vec<DocId> = (0..reads.len())
            .map(|i| plan.id(plan.substrings[i % plan.substrings.len()].0))
            .collect();
        assert_eq!(reads, expected);

        let index = plan.uniform[0];
        let len = plan.lens[index as usize] as usize;
        assert!(check_len::<Recorder>(plan, index, Some(len)).is_ok());
        let id = plan.id(index);
        let wrong = check_len::<Recorder>(plan, index, Some(len + 1)).unwrap_err();
        assert_eq!(
            wrong.to_string(),
            format!(
                "recorder: document {id} read as {} bytes, expected {len}",
                len + 1
            )
        );
        let missing = check_len::<Recorder>(plan, index, None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains(&format!("document {id} is missing")),
            "{missing}"
        );
    }

    /// Beside the readers, each reading its own stretch of the plan's uniform choices, the
    /// writer commits the plan's writes in order, at no more than its pace, and the figure's
    /// writer rate is its puts over its time.
    #[test]
    fn readers_beside_a_paced_writer_read_their_choices_and_the_writer_its_writes() {
        let plan = &*PLAN;
        let recorder = ingested();
        let pace = 1000.0;
        let start = Instant::now();
        let figure = readers_during_writer(&recorder, plan, Some(pace)).unwrap();
        let called_for = start.elapsed().as_secs_f64();
        let readers = recorder.reads_by_thread();
        assert_eq!(readers.len(), plan.settings.readers);
        let stretch = CHOICES / plan.settings.readers;
        let mut offsets: Vec<usize> = readers
            .iter()
            .map(|reads| {
                let from = |offset: usize| -> Vec<DocId> {
                    (0..reads.len())
                        .map(|i| plan.id(plan.uniform[offset + i]))
                        .collect()
                };
                (0..plan.settings.readers)
                    .map(|r| r * stretch)
                    .find(|&offset| *reads == from(offset))
                    .unwrap_or_else(|| panic!("a reader read {reads:?}"))
            })
            .collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [0, stretch]);

        let commits = recorder.commits();
        assert!(!commits.is_empty());
        for (i, commit) in commits.iter().enumerate() {
            let (id, text) = plan.write(i);
            assert_eq!(commit.as_slice(), [(id, text.to_owned())], "write {i}");
        }
        // The writer ran at least as long as the readers read, and no longer than the call;
        // paced, it put at most one more than its time allows.
        let rate = figure.writer_per_sec.unwrap();
        let puts = commits.len() as f64;
        let read_for = (plan.settings.readers_time + plan.settings.latency_time).as_secs_f64();
        assert!(
            rate >= puts / called_for && rate <= puts / read_for,
            "{rate} puts/s for {puts} puts"
        );
        assert!(
            rate <= pace + 1.0 / read_for,
            "{rate} puts/s paced at {pace}"
        );
        assert_eq!(
            figure.note.as_deref(),
            Some(format!("writer: {rate:.0} puts/s").as_str())
        );
    }

    /// Space is what the file system allocated, in bytes: a file of 1 MiB written whole
    /// counts 1 MiB, and the figure is that over the corpus's text.
    #[test]
    fn space_counts_the_bytes_the_files_take() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file"), vec![7u8; 1 << 20]).unwrap();
        assert_eq!(allocated_bytes(dir.path()).unwrap(), 1 << 20);
        let figure = space(dir.path(), &PLAN).unwrap();
        let text = CORPUS.text_bytes() as f64;
        assert!(
            (figure.value - (1 << 20) as f64 / text).abs() < 1e-9,
            "{}",
            figure.value
        );
        assert_eq!(
            figure.note.as_deref(),
            Some(
                format!(
                    "1.0 MiB on disk for {:.1} MiB of text",
                    text / (1 << 20) as f64
                )
                .as_str()
            )
        );
    }

    /// The limits write what the engines write: the texts of the durable puts, of each
    /// thread's puts and of the batches, in the order the engines write them; threads write
    /// disjoint documents.
    #[test]
    fn the_limits_texts_are_the_engines_writes() {
        let plan = &*PLAN;
        let text = |i: usize| plan.write(i).1.as_bytes();
        assert_eq!(plan.put_texts(3), [text(0), text(1), text(2)]);
        assert_eq!(plan.put_texts(0), [text(0)]);
        assert!(text(0) != text(1) && !text(0).is_empty());
        let docs = plan.settings.batch_docs;
        let batches = plan.batch_texts(3);
        assert_eq!(batches.len(), 3);
        for (b, batch) in batches.iter().enumerate() {
            let expected: Vec<&[u8]> = (0..docs).map(|j| text(b * docs + j)).collect();
            assert_eq!(*batch, expected, "batch {b}");
        }
        // More writes per thread than the thread has documents of its own: it writes them
        // again, and never another thread's.
        let (threads, per_thread) = (4, 30);
        let written = plan.thread_put_texts(threads, per_thread);
        let mut owner = std::collections::HashMap::new();
        for (t, texts) in written.iter().enumerate() {
            assert_eq!(texts.len(), per_thread);
            for (i, text) in texts.iter().enumerate() {
                let (id, expected) = plan.write_of_thread(t, threads, i);
                assert_eq!(*text, expected.as_bytes());
                assert_eq!(*owner.entry(id).or_insert(t), t, "{id}");
            }
        }
        assert_eq!(
            owner.len(),
            60,
            "each thread writes its 15 of the 60 documents"
        );
    }

    /// Each workload's figure is in the unit its title promises in the report.
    #[test]
    fn every_workload_has_the_unit_of_what_it_counts() {
        let expected: &[(&str, &[Workload])] = &[
            (
                "docs/s",
                &[
                    Workload::BulkIngest,
                    Workload::BatchedPut,
                    Workload::BatchedPutSteady,
                ],
            ),
            ("ms", &[Workload::ReopenFirstGet]),
            (
                "× text bytes",
                &[
                    Workload::SpaceFresh,
                    Workload::SpaceOverwritten,
                    Workload::SpaceCompacted,
                ],
            ),
            (
                "ops/s",
                &[
                    Workload::GetUniform,
                    Workload::GetUniformCopy,
                    Workload::GetZipf,
                    Workload::GetZipfCopy,
                    Workload::Substring,
                    Workload::ReadersDuringWriter,
                    Workload::ReadersDuringPacedWriter,
                ],
            ),
            (
                "puts/s",
                &[Workload::DurablePut, Workload::DurablePutThreads],
            ),
        ];
        let listed: usize = expected.iter().map(|(_, workloads)| workloads.len()).sum();
        assert_eq!(listed, Workload::ALL.len());
        for (unit, workloads) in expected {
            for workload in *workloads {
                assert_eq!(workload.unit(), *unit, "{workload:?}");
            }
        }
    }

    #[test]
    fn a_workload_in_rounds_reports_the_median_round_and_every_rounds_figure() {
        let figure = |value: f64| Figure::of(value);
        let median = median_round(vec![figure(3.0), figure(1.0), figure(2.0)]).unwrap();
        assert_eq!(median.value, 2.0);
        assert_eq!(median.note.as_deref(), Some("median of 3 rounds: 3, 1, 2"));

        // Of two, the lower: a slow window counts as much as a fast one.
        let median = median_round(vec![figure(5.0), figure(4.0)]).unwrap();
        assert_eq!(median.value, 4.0);

        // A note of the round's own stays, before the rounds'.
        let noted = figure(7.0).with_note("writer: 9 puts/s".to_owned());
        let median = median_round(vec![figure(6.0), noted, figure(8.0)]).unwrap();
        assert_eq!(
            median.note.as_deref(),
            Some("writer: 9 puts/s; median of 3 rounds: 6, 7, 8")
        );

        // One round is reported as it is; none is no figure.
        assert_eq!(median_round(vec![figure(1.0)]), Some(figure(1.0)));
        assert_eq!(median_round(Vec::new()), None);
        assert_eq!(take_median(vec![3.0], |v| *v), Some(3.0));
        assert_eq!(take_median(Vec::<f64>::new(), |v| *v), None);
    }

    /// The bulk ingest reports its fastest round in documents a second, and every round's
    /// rate in MiB of text a second.
    #[test]
    fn the_ingest_reports_its_fastest_round_and_every_rounds_rate() {
        let plan = &*PLAN;
        let mib = CORPUS.text_bytes() as f64 / (1 << 20) as f64;
        let figure = ingest_figure(plan, &[2.0, 0.5, 4.0]);
        assert_eq!(figure.value, CORPUS.len() as f64 / 0.5);
        assert_eq!(
            figure.note.as_deref(),
            Some(
                format!(
                    "{:.0} MiB/s of text; fastest of 3 rounds, MiB/s: {:.0}, {:.0}, {:.0}",
                    mib / 0.5,
                    mib / 2.0,
                    mib / 0.5,
                    mib / 4.0
                )
                .as_str()
            )
        );
    }
}
