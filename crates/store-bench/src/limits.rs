//! The machine's physical limits, measured in the same run as the engines so that each
//! engine's figure can be read as a fraction of what the hardware allows.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::measure::{Percentiles, combine_threads, time_each};

/// What the disk and the memory of the machine can do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhysicalLimits {
    /// Bytes per second written sequentially in 1 MiB writes to a new file, including the
    /// `fsync` at the end: the fastest of [`LimitSettings::seq_write_rounds`]. The write-back
    /// of every 8 MiB written starts as the next is written, as an engine's large commit
    /// may do (textstore's does), so that the disk works while the writes go on.
    pub seq_write_bytes_per_sec: f64,
    /// Bytes per second of the corpus's texts written to a new file in their order, from
    /// where they lie in memory, gathered into `pwritev`s of about 1 MiB, with the same
    /// write-back and `fsync` as `seq_write_bytes_per_sec`: the fastest of as many rounds.
    /// What writing these texts costs with no store around them, and so the bound of the
    /// ingest's goal against the sequential write, which writes one buffer hot in cache.
    pub texts_write_bytes_per_sec: f64,
    /// Bytes per second copied from one 64 MiB buffer to another.
    pub memcpy_bytes_per_sec: f64,
    /// The flush limits, which a run measures in each round of the durable puts they
    /// bound, right before the engines' turns (`None` until then): the disk's flush rate
    /// drifts by up to a fifth over a run. The median round by the rate of `written`.
    pub flushes: Option<FlushLimits>,
    /// Every round's rate of `flushes.written`, in the order they ran.
    pub flush_rounds: Vec<f64>,
    /// The median round of the flush limits' `zeroed_ahead` (`None` until measured).
    pub zeroed_ahead: Option<SizedFlushes>,
    /// Every round's rate of `flushes.zeroed_ahead`, in the order they ran.
    pub zeroed_ahead_rounds: Vec<f64>,
    /// The batches' texts written and flushed, which a run measures in each round of the
    /// batched puts (`None` until then): the median round.
    pub batch_flushes: Option<SizedFlushes>,
    /// Every round's rate of `batch_flushes`, in the order they ran.
    pub batch_flush_rounds: Vec<f64>,
    /// The batches' texts written and flushed into preallocated, unwritten space, which a
    /// run measures in each round of the batched puts beside `batch_flushes` (`None` until
    /// then): the median round.
    pub batch_preallocated: Option<SizedFlushes>,
    /// Every round's rate of `batch_preallocated`, in the order they ran.
    pub batch_preallocated_rounds: Vec<f64>,
    /// The puts' texts from several threads at once, grouped by the simplest group commit,
    /// which a run measures in each round of the durable puts from threads (`None` until
    /// then): the median round.
    pub grouped_flushes: Option<GroupedFlushes>,
    /// Every round's rate of `grouped_flushes`, in the order they ran.
    pub grouped_flush_rounds: Vec<f64>,
}

/// Writes of given texts, one after another, each followed by `fdatasync`, into one kind of
/// [`Space`]. Each write sends its texts from where they lie in memory, gathered into one
/// `pwritev`, as an engine's commit reads the texts its caller hands it: at a hundred texts
/// a write, scattered as the workloads' are, reading them cost about a tenth of the rate on
/// the reference machine, which a buffer hot in cache would leave out (docs/PERFORMANCE.md,
/// "Where a batched commit's time goes").
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SizedFlushes {
    /// Writes per second.
    pub per_sec: f64,
    /// Their mean size.
    pub mean_bytes: f64,
    /// Their latencies.
    pub latency: Option<Percentiles>,
}

/// Where the writes of [`SizedFlushes`] land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Space written before the first write (zeros, synced), so that no flush carries
    /// metadata: the most durable commits of those sizes a second the disk allows.
    Written,
    /// Preallocated space that a thread zeroes [`ZERO_STEP_BYTES`] at a time, up to
    /// [`ZERO_LEAD_BYTES`] ahead of the writes, sending each step to the disk
    /// (`sync_file_range`) without flushing it: what a file that grows allows when it
    /// zeroes its space ahead, as textstore does for small commits. The zeros go to the
    /// disk as the writes do, so on a disk whose flushes slow with the bytes written since
    /// the last one this is below [`Space::Written`].
    ZeroedAhead,
    /// Space `fallocate` reserved and left unwritten, whose flushes also record the extents
    /// they convert: what a file that grows allows without zeroing, as textstore does for
    /// large commits, whose zeros would double the bytes.
    Preallocated,
}

impl SizedFlushes {
    /// Measures `writes` (each the texts one write gathers), in order, into `space` of a
    /// scratch file in `dir`, for at most [`LimitSettings::fdatasync_time`].
    ///
    /// # Panics
    /// If `writes` is empty.
    pub fn measure<'t, W: AsRef<[&'t [u8]]>>(
        dir: &Path,
        settings: LimitSettings,
        writes: &[W],
        space: Space,
    ) -> Result<SizedFlushes> {
        assert!(!writes.is_empty(), "no write to measure");
        let len: u64 = writes
            .iter()
            .map(|write| gathered_len(write.as_ref()))
            .sum();
        let (per_sec, latency) = match space {
            Space::Written => {
                let path = dir.join("written-fdatasync");
                let file = written_file(&path, len)?;
                let measured = timed_writes(&file, &path, settings, writes, |_| Ok(()));
                remove_scratch(file, &path, measured)?
            }
            Space::ZeroedAhead => {
                zeroed_ahead_fdatasync(&dir.join("zeroed-ahead-fdatasync"), settings, writes)?
            }
            Space::Preallocated => {
                let path = dir.join("preallocated-fdatasync");
                let file = preallocated_file(&path, len)?;
                let measured = timed_writes(&file, &path, settings, writes, |_| Ok(()));
                remove_scratch(file, &path, measured)?
            }
        };
        Ok(SizedFlushes {
            per_sec,
            mean_bytes: len as f64 / writes.len() as f64,
            latency,
        })
    }
}

/// Bytes zeroed at a time ahead of the writes into [`Space::ZeroedAhead`], and how far
/// ahead of them: textstore's zeroing thread's step and lead, the best of the steps and
/// leads measured for it (docs/PERFORMANCE.md, "Zeroing in other steps").
pub const ZERO_STEP_BYTES: u64 = 256 << 10;
/// See [`ZERO_STEP_BYTES`].
pub const ZERO_LEAD_BYTES: u64 = 1 << 20;

/// Durable writes from several threads at once into written space, each thread waiting for
/// its write before it sends the next, grouped by the simplest group commit: a thread queues
/// its text and sleeps; one committing thread takes every write queued, writes their texts
/// with one `pwritev` after the group before and one `fdatasync`, then wakes their threads.
/// It checks nothing, indexes nothing and copies nothing but the texts: the most durable
/// writes a second that many submitters get from the disk, so that group commit's figure
/// can be read beside what the disk gives the same threads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroupedFlushes {
    /// Submitting threads.
    pub threads: usize,
    /// Writes per second, all threads', over the longest thread's time.
    pub per_sec: f64,
    /// Writes per `fdatasync`.
    pub mean_group: f64,
    /// From a write's queueing to its thread's wake-up.
    pub latency: Option<Percentiles>,
}

impl GroupedFlushes {
    /// Measures the writes of `texts[t]`, in order (from the first again when it has fewer
    /// than [`LimitSettings::grouped_writes_per_thread`]), from thread `t` of `texts.len()`,
    /// with a scratch file in `dir`, each thread for at most
    /// [`LimitSettings::fdatasync_time`] and [`LimitSettings::grouped_writes_per_thread`]
    /// writes.
    ///
    /// # Panics
    /// If `texts` or one of its threads' texts is empty.
    pub fn measure(
        dir: &Path,
        settings: LimitSettings,
        texts: &[Vec<&[u8]>],
    ) -> Result<GroupedFlushes> {
        assert!(
            !texts.is_empty() && texts.iter().all(|t| !t.is_empty()),
            "no write to measure"
        );
        let path = dir.join("grouped-fdatasync");
        let per_thread = settings.grouped_writes_per_thread.max(1);
        let len: u64 = texts
            .iter()
            .map(|thread| {
                (0..per_thread)
                    .map(|i| thread[i % thread.len()].len() as u64)
                    .sum::<u64>()
            })
            .sum();
        let file = written_file(&path, len)?;
        let measured = grouped_writes(&file, &path, settings, texts);
        remove_scratch(file, &path, measured)
    }
}

/// The writes of [`GroupedFlushes::measure`], from the start of `file`.
fn grouped_writes(
    file: &File,
    path: &Path,
    settings: LimitSettings,
    texts: &[Vec<&[u8]>],
) -> Result<GroupedFlushes> {
    let per_thread = settings.grouped_writes_per_thread.max(1);
    let group = GroupCommit {
        queue: Mutex::new(Queue {
            writes: Vec::new(),
            submitters: texts.len(),
        }),
        queued: Condvar::new(),
    };
    let (committed, submitted) = std::thread::scope(|scope| {
        let committer = scope.spawn(|| group.commit(file, path));
        let threads: Vec<_> = texts
            .iter()
            .map(|thread_texts| {
                let group = &group;
                scope.spawn(move || {
                    let waiter = Arc::new(Waiter::default());
                    let thread = time_each(settings.fdatasync_time, per_thread, |i| {
                        group.submit(&waiter, thread_texts[i % thread_texts.len()])
                    });
                    group.leave();
                    thread
                })
            })
            .collect();
        let submitted: Vec<_> = threads
            .into_iter()
            .map(|thread| thread.join().expect("a submitting thread panicked"))
            .collect();
        let committed = committer.join().expect("the committing thread panicked");
        (committed, submitted)
    });
    let groups = committed?;
    let (writes, latencies) = combine_threads(submitted)?;
    Ok(GroupedFlushes {
        threads: texts.len(),
        per_sec: writes.per_sec(),
        mean_group: writes.ops as f64 / groups.max(1) as f64,
        latency: latencies.percentiles(),
    })
}

/// The queue of [`GroupedFlushes`]: writes waiting for the committing thread.
struct GroupCommit<'t> {
    queue: Mutex<Queue<'t>>,
    queued: Condvar,
}

struct Queue<'t> {
    /// Each queued write's text and its thread's waiter.
    writes: Vec<(&'t [u8], Arc<Waiter>)>,
    /// Threads still submitting: the committing thread stops when none is left and the
    /// queue is empty.
    submitters: usize,
}

/// Where a submitting thread sleeps until its write is durable.
#[derive(Default)]
struct Waiter {
    /// `Some(true)` once durable, `Some(false)` if the write or its flush failed.
    done: Mutex<Option<bool>>,
    woken: Condvar,
}

impl<'t> GroupCommit<'t> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<'t>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a write of `text` and sleeps until it is durable.
    fn submit(&self, waiter: &Arc<Waiter>, text: &'t [u8]) -> Result<()> {
        *waiter.done.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.lock().writes.push((text, Arc::clone(waiter)));
        self.queued.notify_one();
        let mut done = waiter.done.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match *done {
                Some(true) => return Ok(()),
                Some(false) => {
                    return Err(Error::WrongResult {
                        engine: "limit",
                        what: "a grouped write or its fdatasync failed".to_owned(),
                    });
                }
                None => done = waiter.woken.wait(done).unwrap_or_else(|p| p.into_inner()),
            }
        }
    }

    /// A submitting thread is done.
    fn leave(&self) {
        self.lock().submitters -= 1;
        self.queued.notify_one();
    }

    /// Commits groups until every submitter left; returns how many. After a failure it
    /// goes on failing what is queued, so that no submitter sleeps for ever.
    fn commit(&self, file: &File, path: &Path) -> Result<u64> {
        let (mut offset, mut groups, mut failure) = (0_u64, 0_u64, None);
        let mut texts: Vec<&[u8]> = Vec::new();
        loop {
            let writes = {
                let mut queue = self.lock();
                while queue.writes.is_empty() && queue.submitters > 0 {
                    queue = self.queued.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
                if queue.writes.is_empty() {
                    return failure.map_or(Ok(groups), Err);
                }
                std::mem::take(&mut queue.writes)
            };
            if failure.is_none() {
                texts.clear();
                texts.extend(writes.iter().map(|&(text, _)| text));
                let flushed = write_pieces_at(file, path, &texts, offset)
                    .and_then(|end| file.sync_data().map(|()| end).map_err(Error::io(path)));
                groups += 1;
                match flushed {
                    Ok(end) => offset = end,
                    Err(err) => failure = Some(err),
                }
            }
            for (_, waiter) in writes {
                *waiter.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure.is_none());
                waiter.woken.notify_one();
            }
        }
    }
}

/// What the disk's flushes allow: the bounds of durable single puts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlushLimits {
    /// 4 KiB appends to a file, each followed by `fdatasync`, per second.
    pub append_fdatasync_per_sec: f64,
    /// Latencies of those appends.
    pub append_fdatasync_latency: Option<Percentiles>,
    /// The durable puts' texts, in their order and sizes, each written and flushed into
    /// written space: the most durable commits of those texts a second the disk allows.
    pub written: SizedFlushes,
    /// The same texts written and flushed into space zeroed just ahead of them
    /// ([`Space::ZeroedAhead`]): what the disk allows a file that grows.
    pub zeroed_ahead: SizedFlushes,
}

/// How much of each limit to measure.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// Bytes written for the sequential bandwidth.
    pub seq_write_bytes: usize,
    /// Times the sequential bandwidth is measured; the fastest is kept, as the fastest
    /// round of an ingest is (see `Settings::ingest_rounds`).
    pub seq_write_rounds: usize,
    /// Longest time spent on appends with `fdatasync`.
    pub fdatasync_time: Duration,
    /// Most appends with `fdatasync`.
    pub fdatasync_max: usize,
    /// Most writes of each thread in [`GroupedFlushes`].
    pub grouped_writes_per_thread: usize,
    /// Times the 64 MiB buffer is copied.
    pub memcpy_rounds: usize,
}

impl PhysicalLimits {
    /// Measures the bandwidths, the texts' write with `texts` (the corpus's, in order), with
    /// scratch files in `dir` (on the disk the engines use); the flush limits come later
    /// ([`FlushLimits::measure`]).
    pub fn measure(dir: &Path, settings: LimitSettings, texts: &[&[u8]]) -> Result<PhysicalLimits> {
        let (mut seq_write_bytes_per_sec, mut texts_write_bytes_per_sec) = (0.0_f64, 0.0_f64);
        let chunk = vec![0x5a_u8; SEQ_WRITE_CHUNK_BYTES];
        let chunks = settings.seq_write_bytes.div_ceil(SEQ_WRITE_CHUNK_BYTES);
        let hot = vec![chunk.as_slice(); chunks];
        for _ in 0..settings.seq_write_rounds.max(1) {
            let round = timed_sequential_write(&dir.join("seq-write"), &hot)?;
            seq_write_bytes_per_sec = seq_write_bytes_per_sec.max(round);
            let round = timed_sequential_write(&dir.join("texts-write"), texts)?;
            texts_write_bytes_per_sec = texts_write_bytes_per_sec.max(round);
        }
        Ok(PhysicalLimits {
            seq_write_bytes_per_sec,
            texts_write_bytes_per_sec,
            memcpy_bytes_per_sec: memcpy(settings.memcpy_rounds),
            flushes: None,
            flush_rounds: Vec::new(),
            zeroed_ahead: None,
            zeroed_ahead_rounds: Vec::new(),
            batch_flushes: None,
            batch_flush_rounds: Vec::new(),
            batch_preallocated: None,
            batch_preallocated_rounds: Vec::new(),
            grouped_flushes: None,
            grouped_flush_rounds: Vec::new(),
        })
    }
}

impl FlushLimits {
    /// Measures the flush limits, with scratch files in `dir`. `put_texts` are the texts
    /// the durable puts write, in order (the first `fdatasync_max` are used, again from the
    /// first if there are fewer).
    ///
    /// # Panics
    /// If `put_texts` is empty.
    pub fn measure(
        dir: &Path,
        settings: LimitSettings,
        put_texts: &[&[u8]],
    ) -> Result<FlushLimits> {
        let (append_rate, append_latency) =
            append_fdatasync(&dir.join("append-fdatasync"), settings)?;
        let writes: Vec<[&[u8]; 1]> = put_texts
            .iter()
            .map(|&text| [text])
            .cycle()
            .take(settings.fdatasync_max.max(1))
            .collect();
        Ok(FlushLimits {
            append_fdatasync_per_sec: append_rate,
            append_fdatasync_latency: append_latency,
            written: SizedFlushes::measure(dir, settings, &writes, Space::Written)?,
            zeroed_ahead: SizedFlushes::measure(dir, settings, &writes, Space::ZeroedAhead)?,
        })
    }
}

/// The writes of the sequential bandwidth: 1 MiB each.
const SEQ_WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Slices per `writev` or `pwritev`: Linux's `IOV_MAX`.
const MAX_SLICES: usize = 1024;

/// Writes `pieces` in order to a new file at `path` ([`write_in_order`]), `fsync`s it and
/// removes it; returns the bytes per second of the write and the sync.
fn timed_sequential_write(path: &Path, pieces: &[&[u8]]) -> Result<f64> {
    let start = Instant::now();
    let file = File::create(path).map_err(Error::io(path))?;
    let written = write_in_order(&file, path, pieces)?;
    file.sync_all().map_err(Error::io(path))?;
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(path).map_err(Error::io(path))?;
    Ok(written as f64 / elapsed.as_secs_f64())
}

/// Writes `pieces` one after another from the start of `file`, gathered into `pwritev`s of
/// about [`SEQ_WRITE_CHUNK_BYTES`] (at most [`MAX_SLICES`] pieces each), starting the
/// write-back of every 8 MiB as the next is written, as an engine's large commit may
/// (textstore's does), so that the disk works while the writes go on. Returns the bytes
/// written.
fn write_in_order(file: &File, path: &Path, pieces: &[&[u8]]) -> Result<u64> {
    use store_mmap::Storage;
    const WRITE_BEHIND: u64 = 8 << 20;
    let (mut written, mut behind) = (0_u64, 0_u64);
    let (mut first, mut gathered) = (0, 0);
    for (i, piece) in pieces.iter().enumerate() {
        gathered += piece.len();
        let end = i + 1;
        if gathered < SEQ_WRITE_CHUNK_BYTES && end - first < MAX_SLICES && end < pieces.len() {
            continue;
        }
        written = write_pieces_at(file, path, &pieces[first..end], written)?;
        (first, gathered) = (end, 0);
        if written - behind >= WRITE_BEHIND {
            store_mmap::OsStorage
                .start_write_back(file, path, behind, written - behind)
                .map_err(Error::io(path))?;
            behind = written;
        }
    }
    Ok(written)
}

/// 4 KiB appends of one buffer, hot in cache, each followed by `fdatasync`.
fn append_fdatasync(path: &Path, settings: LimitSettings) -> Result<(f64, Option<Percentiles>)> {
    let file = scratch_file(path)?;
    let block = [0xa5_u8; 4096];
    let blocks = vec![[&block[..]]; settings.fdatasync_max.max(1)];
    let measured = timed_writes(&file, path, settings, &blocks, |_| Ok(()));
    remove_scratch(file, path, measured)
}

/// `writes` one after another from the start of `file` (each the texts of one `pwritev`),
/// each followed by `fdatasync`, for at most [`LimitSettings::fdatasync_time`].
/// `before_write(end)` runs before each write, inside its timing, with the end of the bytes
/// it covers: the zeroed-ahead loop waits there for its zeros.
fn timed_writes<'t, W: AsRef<[&'t [u8]]>>(
    file: &File,
    path: &Path,
    settings: LimitSettings,
    writes: &[W],
    mut before_write: impl FnMut(u64) -> Result<()>,
) -> Result<(f64, Option<Percentiles>)> {
    let mut offset = 0u64;
    let (throughput, latencies) = time_each(settings.fdatasync_time, writes.len(), |i| {
        let pieces = writes[i].as_ref();
        before_write(offset + gathered_len(pieces))?;
        offset = write_pieces_at(file, path, pieces, offset)?;
        file.sync_data().map_err(Error::io(path))
    })?;
    Ok((throughput.per_sec(), latencies.percentiles()))
}

/// Writes `pieces` one after another at `offset` of `file`, in `pwritev`s of at most
/// [`MAX_SLICES`] pieces, straight from where they lie; returns where the last one ends.
fn write_pieces_at(file: &File, path: &Path, pieces: &[&[u8]], offset: u64) -> Result<u64> {
    use std::io::IoSlice;
    use store_mmap::Storage;
    let mut at = offset;
    // A `pwritev` of no bytes writes nothing and reports so; a write of empty texts is done.
    for chunk in pieces
        .chunks(MAX_SLICES)
        .filter(|chunk| gathered_len(chunk) > 0)
    {
        let slices: Vec<IoSlice<'_>> = chunk.iter().map(|piece| IoSlice::new(piece)).collect();
        store_mmap::OsStorage
            .write_vectored_at(file, path, &slices, at)
            .map_err(Error::io(path))?;
        at += gathered_len(chunk);
    }
    Ok(at)
}

/// The bytes of `pieces` together.
fn gathered_len(pieces: &[&[u8]]) -> u64 {
    pieces.iter().map(|piece| piece.len() as u64).sum()
}

/// Closes and removes a limit's scratch file, then hands on what was measured in it (its
/// failure first).
fn remove_scratch<T>(file: File, path: &Path, measured: Result<T>) -> Result<T> {
    drop(file);
    let removed = std::fs::remove_file(path).map_err(Error::io(path));
    let measured = measured?;
    removed?;
    Ok(measured)
}

/// `writes` one after another, each followed by `fdatasync`, into preallocated space that a
/// thread zeroes ahead of them.
fn zeroed_ahead_fdatasync<'t, W: AsRef<[&'t [u8]]>>(
    path: &Path,
    settings: LimitSettings,
    writes: &[W],
) -> Result<(f64, Option<Percentiles>)> {
    // Room for the lead past the last write, as a segment's preallocation has.
    let len = writes
        .iter()
        .map(|write| gathered_len(write.as_ref()))
        .sum::<u64>()
        + ZERO_LEAD_BYTES
        + ZERO_STEP_BYTES;
    let file = preallocated_file(path, len)?;
    let ahead = ZeroingAhead::default();
    let (measured, zeroing) = std::thread::scope(|scope| {
        let zeroing = scope.spawn(|| ahead.run(&file, path, len));
        // The lead is in place before the first write, as it is after a pause in commits.
        let measured = ahead.wait_for(path, ZERO_LEAD_BYTES).and_then(|()| {
            timed_writes(&file, path, settings, writes, |end| {
                ahead.wait_for(path, end)
            })
        });
        ahead.stop();
        (measured, zeroing.join())
    });
    // A failure of the zeroing thread is the cause of the writes' own.
    match zeroing {
        Ok(Err(err)) => return Err(err),
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Ok(())) => {}
    }
    remove_scratch(file, path, measured)
}

/// The zeroing thread of [`zeroed_ahead_fdatasync`] and its writer, under one mutex.
#[derive(Default)]
struct ZeroingAhead {
    state: Mutex<AheadState>,
    changed: Condvar,
}

#[derive(Default)]
struct AheadState {
    /// The end of the bytes the writer has asked for: the thread keeps the lead past it.
    needed: u64,
    /// Bytes below this hold zeros sent to the disk.
    zeroed: u64,
    /// The writer is done, or the thread failed.
    stop: bool,
}

impl ZeroingAhead {
    fn lock(&self) -> std::sync::MutexGuard<'_, AheadState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the bytes of `path` below `end` hold zeros, and keeps the lead past them.
    fn wait_for(&self, path: &Path, end: u64) -> Result<()> {
        let mut state = self.lock();
        state.needed = state.needed.max(end);
        self.changed.notify_all();
        while state.zeroed < end && !state.stop {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.zeroed < end {
            return Err(Error::io(path)(std::io::Error::other(format!(
                "the thread zeroing ahead of the writes stopped at byte {}, before byte {end}",
                state.zeroed
            ))));
        }
        Ok(())
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// Zeroes a step at a time, each only once it fits inside the lead, up to `len`.
    fn run(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        use store_mmap::Storage;
        let zeros = vec![0_u8; ZERO_STEP_BYTES as usize];
        let mut state = self.lock();
        loop {
            let at = state.zeroed;
            let step = ZERO_STEP_BYTES.min(len - at);
            if state.stop {
                return Ok(());
            }
            if step == 0 || at + step > state.needed + ZERO_LEAD_BYTES {
                state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            drop(state);
            let written = file
                .write_all_at(&zeros[..step as usize], at)
                .and_then(|()| store_mmap::OsStorage.write_back_range(file, path, at, step))
                .map_err(Error::io(path));
            state = self.lock();
            match written {
                Ok(()) => state.zeroed = at + step,
                Err(err) => {
                    state.stop = true;
                    self.changed.notify_all();
                    return Err(err);
                }
            }
            self.changed.notify_all();
        }
    }
}

/// `path`, empty, open for reading and writing.
fn scratch_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io(path))
}

/// A new file of `len` bytes that `fallocate` reserved and left unwritten, synced, as a
/// segment's preallocated space is.
fn preallocated_file(path: &Path, len: u64) -> Result<File> {
    use store_mmap::Storage;
    let file = scratch_file(path)?;
    store_mmap::OsStorage
        .allocate(&file, path, 0, len)
        .map_err(Error::io(path))?;
    file.sync_all().map_err(Error::io(path))?;
    Ok(file)
}

/// A new file of `len` bytes of zeros, synced: writes into it land in written extents of a
/// file whose length does not change, so that their flushes carry no metadata.
fn written_file(path: &Path, len: u64) -> Result<File> {
    use std::os::unix::fs::FileExt;
    let file = scratch_file(path)?;
    let zeros = vec![0_u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = zeros.len().min((len - at) as usize);
        file.write_all_at(&zeros[..n], at)
            .map_err(Error::io(path))?;
        at += n as u64;
    }
    file.sync_all().map_err(Error::io(path))?;
    Ok(file)
}

fn memcpy(rounds: usize) -> f64 {
    const LEN: usize = 64 << 20;
    let source: Vec<u8> = (0..LEN).map(|i| i as u8).collect();
    let mut target = vec![0_u8; LEN];
    // One copy first, so that the target's pages are mapped before the clock starts.
    target.copy_from_slice(&source);
    let start = Instant::now();
    for _ in 0..rounds.max(1) {
        target.copy_from_slice(black_box(&source));
        black_box(&mut target);
    }
    (LEN * rounds.max(1)) as f64 / start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_thread: usize) -> LimitSettings {
        LimitSettings {
            seq_write_bytes: 1 << 20,
            seq_write_rounds: 1,
            fdatasync_time: Duration::from_secs(60),
            fdatasync_max: 3,
            grouped_writes_per_thread: per_thread,
            memcpy_rounds: 1,
        }
    }

    /// The texts' write puts every piece in order, whatever their sizes: more pieces than a
    /// `pwritev` takes, pieces past a gathered megabyte, an empty one, and one larger than
    /// a megabyte alone.
    #[test]
    fn the_texts_write_writes_every_piece_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("texts");
        let mut owned: Vec<Vec<u8>> = (0..3000_usize)
            .map(|i| vec![(i % 251) as u8; (i * 37) % 1500])
            .collect();
        owned.insert(1500, vec![0xee; 3 << 20]);
        let pieces: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let file = File::create(&path).unwrap();
        let written = write_in_order(&file, &path, &pieces).unwrap();
        drop(file);
        let expected = pieces.concat();
        assert_eq!(written, expected.len() as u64);
        assert!(
            std::fs::read(&path).unwrap() == expected,
            "the file's bytes differ"
        );
        // The bandwidth is the bytes over the time of the write and its sync, which the
        // call's own time bounds from above.
        let start = Instant::now();
        let rate = timed_sequential_write(&path, &pieces).unwrap();
        let took = start.elapsed().as_secs_f64();
        assert!(rate >= expected.len() as f64 / took, "{rate} bytes/s");
        assert!(!path.exists(), "the scratch file was left");
    }

    /// Written space is the length asked, every byte of it written (allocated, not a hole);
    /// the copy bandwidth is the bytes copied over no more than the call's time.
    #[test]
    fn written_space_is_written_whole_and_the_copy_rate_counts_its_bytes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("written");
        let len = (3 << 20) + 5;
        let file = written_file(&path, len).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), len);
        assert!(
            meta.blocks() * 512 >= len,
            "{} bytes allocated",
            meta.blocks() * 512
        );
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0));

        let start = Instant::now();
        let rate = memcpy(2);
        let took = start.elapsed().as_secs_f64();
        assert!(rate >= (2 * (64 << 20)) as f64 / took, "{rate} bytes/s");
    }

    /// The flush limits make every write they are asked for: the 4 KiB appends and the
    /// puts' texts (again from the first when there are fewer), each at a rate no lower
    /// than the writes over the call's time; and they leave no file.
    #[test]
    fn the_flush_limits_time_every_write_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(1);
        settings.fdatasync_max = 4;
        let texts: [&[u8]; 3] = [b"one", &[b'2'; 5000], b"three"];
        let start = Instant::now();
        let limits = FlushLimits::measure(dir.path(), settings, &texts).unwrap();
        let took = start.elapsed().as_secs_f64();
        assert_eq!(limits.append_fdatasync_latency.unwrap().count, 4);
        assert!(limits.append_fdatasync_per_sec >= 4.0 / took);
        for flushes in [limits.written, limits.zeroed_ahead] {
            assert_eq!(flushes.latency.unwrap().count, 4);
            assert!(flushes.per_sec >= 4.0 / took);
            assert_eq!(flushes.mean_bytes, (3 + 5000 + 5 + 3) as f64 / 4.0);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// The thread zeroes whole steps up to the lead past what the writer asked for, and
    /// nothing beyond; a write past the lead waits until its bytes are zeroed.
    #[test]
    fn the_zeroing_thread_keeps_its_lead_and_no_more() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeroed");
        let len = 4 * ZERO_LEAD_BYTES;
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.write_all_at(&vec![7_u8; len as usize], 0).unwrap();
        let ahead = ZeroingAhead::default();
        // Waits until the thread has no whole step left inside the lead.
        let settled = || {
            let mut state = ahead.lock();
            while state.zeroed + ZERO_STEP_BYTES <= (state.needed + ZERO_LEAD_BYTES).min(len) {
                state = ahead.changed.wait(state).unwrap();
            }
            state.zeroed
        };
        let zeroed_at = |end: u64| {
            let mut bytes = vec![0_u8; len as usize];
            file.read_exact_at(&mut bytes, 0).unwrap();
            let zeros = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len()) as u64;
            assert!(
                bytes[zeros as usize..].iter().all(|&b| b == 7),
                "zeros past {zeros}"
            );
            assert_eq!(zeros, end);
        };
        std::thread::scope(|scope| {
            let zeroing = scope.spawn(|| ahead.run(&file, &path, len));
            ahead.wait_for(&path, 1000).unwrap();
            assert_eq!(settled(), ZERO_LEAD_BYTES);
            zeroed_at(ZERO_LEAD_BYTES);
            // A write past the lead gets its bytes zeroed, and the lead past them.
            let far = 2 * ZERO_LEAD_BYTES + 10;
            ahead.wait_for(&path, far).unwrap();
            assert!(ahead.lock().zeroed >= far);
            let lead_end = settled();
            assert_eq!(lead_end, 3 * ZERO_LEAD_BYTES);
            zeroed_at(lead_end);
            ahead.stop();
            zeroing.join().unwrap().unwrap();
        });
        // Once stopped, a writer waiting for bytes the thread never zeroed is told so.
        let err = ahead.wait_for(&path, len).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains(&format!("before byte {len}")),
            "{err}"
        );
    }

    /// The timed writes put each write's texts at the end of the one before, whatever their
    /// number (more than a `pwritev` takes, an empty one), and tell the hook where each write
    /// will end before it is written.
    #[test]
    fn timed_writes_put_every_write_s_texts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timed");
        let owned: Vec<Vec<u8>> = (0..2500_usize)
            .map(|i| vec![(i % 251) as u8; (i * 13) % 700])
            .collect();
        let texts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let writes: Vec<&[&[u8]]> = vec![
            &texts[..1],
            &texts[1..2200],
            &texts[2200..2201],
            &texts[2201..],
        ];
        let file = scratch_file(&path).unwrap();
        let mut settings = settings(1);
        settings.fdatasync_max = writes.len();
        let mut ends = Vec::new();
        let (per_sec, latency) = timed_writes(&file, &path, settings, &writes, |end| {
            ends.push(end);
            Ok(())
        })
        .unwrap();
        assert!(per_sec > 0.0);
        assert_eq!(latency.unwrap().count, 4);
        let mut expected_end = 0;
        let expected_ends: Vec<u64> = writes
            .iter()
            .map(|write| {
                expected_end += gathered_len(write);
                expected_end
            })
            .collect();
        assert_eq!(ends, expected_ends);
        assert!(
            std::fs::read(&path).unwrap() == texts.concat(),
            "the file's bytes differ from the texts"
        );
    }

    /// Flushes into space zeroed just ahead (one write larger than the lead, which waits
    /// for the thread) and into preallocated space make every write once and remove their
    /// scratch file.
    #[test]
    fn sized_flushes_make_every_write_and_leave_no_file() {
        let lead = (ZERO_LEAD_BYTES + ZERO_STEP_BYTES) as usize;
        let cases = [
            (
                Space::ZeroedAhead,
                [100, lead, 4096],
                "zeroed-ahead-fdatasync",
            ),
            (
                Space::Preallocated,
                [100, 300_000, 4096],
                "preallocated-fdatasync",
            ),
        ];
        for (space, sizes, file) in cases {
            let dir = tempfile::tempdir().unwrap();
            let owned: Vec<Vec<u8>> = sizes.iter().map(|&len| vec![b'x'; len]).collect();
            // The middle write in two texts.
            let (head, tail) = owned[1].split_at(owned[1].len() / 3);
            let writes: Vec<Vec<&[u8]>> = vec![vec![&owned[0]], vec![head, tail], vec![&owned[2]]];
            let mut settings = settings(1);
            settings.fdatasync_max = writes.len();
            let flushes = SizedFlushes::measure(dir.path(), settings, &writes, space).unwrap();
            assert_eq!(flushes.latency.unwrap().count, 3, "{space:?}");
            assert!(flushes.per_sec > 0.0);
            assert_eq!(flushes.mean_bytes, sizes.iter().sum::<usize>() as f64 / 3.0);
            assert!(!dir.path().join(file).exists(), "{file} left behind");
        }
    }

    /// Each group's `pwritev` puts its writes' texts whole after the group before, and each
    /// thread's writes follow one another in its order.
    #[test]
    fn grouped_writes_put_each_thread_s_texts_whole_and_in_order() {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 25;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grouped");
        // Write `i` of thread `t` is bytes of the value 1 + t * PER_THREAD + i, which no
        // other write has, so that the file tells which write each byte came from.
        let value = |t: usize, i: usize| (1 + t * PER_THREAD + i) as u8;
        let len_of = |t: usize, i: usize| 50 * (t + 1) + 7 * i;
        let owned: Vec<Vec<Vec<u8>>> = (0..THREADS)
            .map(|t| {
                (0..PER_THREAD)
                    .map(|i| vec![value(t, i); len_of(t, i)])
                    .collect()
            })
            .collect();
        let texts: Vec<Vec<&[u8]>> = owned
            .iter()
            .map(|thread| thread.iter().map(Vec::as_slice).collect())
            .collect();
        let total: usize = (0..THREADS)
            .flat_map(|t| (0..PER_THREAD).map(move |i| len_of(t, i)))
            .sum();
        let file = written_file(&path, total as u64 + 4096).unwrap();
        let grouped = grouped_writes(&file, &path, settings(PER_THREAD), &texts).unwrap();
        assert_eq!(
            grouped.latency.unwrap().count,
            (THREADS * PER_THREAD) as u64
        );
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes[total..].iter().all(|&b| b == 0),
            "bytes past the writes"
        );
        let mut next = [0_usize; THREADS];
        let mut at = 0;
        while at < total {
            let v = usize::from(bytes[at]);
            assert!(v >= 1, "a gap at byte {at}");
            let (t, i) = ((v - 1) / PER_THREAD, (v - 1) % PER_THREAD);
            assert_eq!(i, next[t], "thread {t}'s writes out of order at byte {at}");
            let run = &bytes[at..at + len_of(t, i)];
            assert!(
                run.iter().all(|&b| b == bytes[at]),
                "write {i} of thread {t} torn"
            );
            next[t] += 1;
            at += run.len();
        }
        assert_eq!(next, [PER_THREAD; THREADS]);
    }

    #[test]
    fn grouped_flushes_commit_every_thread_s_writes_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        let owned: Vec<Vec<Vec<u8>>> = (1..=4)
            .map(|t| vec![vec![1; 100 * t], vec![2; 3000], vec![3; 7]])
            .collect();
        let texts: Vec<Vec<&[u8]>> = owned
            .iter()
            .map(|thread| thread.iter().map(Vec::as_slice).collect())
            .collect();
        let grouped = GroupedFlushes::measure(dir.path(), settings(25), &texts).unwrap();
        assert_eq!(grouped.threads, 4);
        // Every write waited for its own flush, and a flush holds at most one write per
        // thread, since a thread sends its next only once the last is durable.
        assert_eq!(grouped.latency.unwrap().count, 100);
        assert!(
            (1.0..=4.0).contains(&grouped.mean_group),
            "{}",
            grouped.mean_group
        );
        assert!(grouped.per_sec > 0.0);
        assert!(!dir.path().join("grouped-fdatasync").exists());
    }
}
