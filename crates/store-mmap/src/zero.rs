//! Zeroing ahead of the writer: a background thread writes zeros over the active segment's
//! preallocated space, ahead of the commits, and starts their write-back without waiting
//! for it; the next commit's `fdatasync` makes them durable with its own data.
//!
//! Why: `fallocate` leaves its space *unwritten*. A commit's `fdatasync` over such space
//! also has to make durable the metadata that marks the extent written: a journal commit on
//! a journaling file system, and on ext4 without a journal (the reference machine's) the
//! extent blocks and the inode, each written and waited for before the device flush. Over
//! space whose zeros an earlier flush made durable it flushes the data alone. On this
//! project's reference machine that is 1.3–1.4 times the rate of 4 KiB durable writes
//! (docs/PERFORMANCE.md, "Physical limits"). The zeros go only where the segment is already
//! preallocated, so they cost no disk space, and to recovery they read as unwritten space,
//! as preallocated space does.
//!
//! The protocol, under one mutex:
//! - the writer **claims** the bytes it is about to write, `[.., claim)`, and waits while the
//!   thread is zeroing a range that overlaps them;
//! - the thread zeroes only within `[max(zeroed, claim), min(allocated, claim + LEAD_BYTES))`,
//!   one whole chunk at a time (it starts one only where a whole chunk fits before
//!   `claim + LEAD_BYTES`, so it writes once per chunk of commits), and marks the chunk busy
//!   while it writes it; so zeros never land on bytes the writer has written, and never lie
//!   far past its data;
//! - it is woken when a commit ends with a whole chunk free inside the lead, and writes that
//!   chunk beside the commits that follow. Back-to-back commits leave no time between them:
//!   a thread that zeroed only between commits left the zeros to the commits themselves
//!   (next rule), in their own flushes, where durable single puts of the Rust docs' pages
//!   measured 0.875 times the written-space limit against 0.901 with the chunks beside the
//!   commits, and eight threads' puts 32.5k a second against 35.0k (medians;
//!   docs/PERFORMANCE.md, "Zeros beside the commits");
//! - a small commit that reaches past the zeros written so far (the thread lags, or the
//!   segment is new) writes the next stretch of zeros itself, in the same `pwritev` after
//!   its records, and claims it: the commit's flush marks that extent written once for the
//!   commits after it;
//! - before the segment is trimmed or sealed, the writer **detaches** it, which waits for a
//!   busy chunk; the thread never writes past the end of a file the writer has cut.
//!
//! A failed zero write or write-back (one that panics in the storage included) stops the
//! zeroing for that segment and nothing else: the bytes are unwritten space either way, and
//! commits then pay the conversion themselves.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::storage::Storage;

/// Bytes zeroed and sent to the disk per step: small, so that a commit's `fdatasync`, which
/// waits for every page of the file on its way to the disk, seldom waits behind much.
const CHUNK_BYTES: usize = 256 << 10;
/// Zeroing ahead pays off only while commits are small: the extent conversion it saves
/// costs a commit of a few pages as much as its own flush, while a commit of hundreds of
/// kilobytes pays it once among much more data, and zeros written ahead of it would double
/// the bytes the disk writes (measured: 1.8–2x the durable 4 KiB puts, 0.93x the commits of
/// 100 documents of 3.3 KB). Commits larger than this stop the zeroing until a smaller one.
const SMALL_COMMIT_BYTES: u64 = 64 << 10;

/// How far past the writer's claims the thread zeroes: enough for the thread to stay ahead
/// of a stream of small commits, and little enough that an open after a crash, which must
/// read every written byte of the newest segment past its data to know that no commit lies
/// there, reads at most this much of zeros (the preallocated space beyond it is left
/// unwritten, which the open skips as a hole). A step of the preallocation is up to 16 MiB.
const LEAD_BYTES: u64 = 1 << 20;

/// The active segment, as the zeroing thread writes to it.
pub(crate) struct ZeroTarget {
    pub(crate) segment: u32,
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    /// Where the segment's data ends: nothing below is zeroed.
    pub(crate) end: u64,
    /// Below this the file's bytes were written before (a file an earlier segment held):
    /// nothing below is zeroed either, since its flush converts no extent.
    pub(crate) written: u64,
    /// The file's preallocated length: nothing at or past it is zeroed.
    pub(crate) allocated: u64,
}

#[derive(Default)]
struct State {
    target: Option<ZeroTarget>,
    /// Bytes below this are the writer's: written, or about to be.
    claimed: u64,
    /// Bytes from `claimed` up to this hold zeros sent to the disk, or bytes written before
    /// (the target's `written`): space the next flush finds written or makes written once.
    zeroed: u64,
    /// The chunk being zeroed, while the thread writes it without the lock.
    busy: Option<(u64, u64)>,
    /// The last commit was larger than [`SMALL_COMMIT_BYTES`]: no zeroing until a small one.
    large_commits: bool,
    /// Chunks zeroed since the start, for tests and stats.
    chunks: u64,
    stop: bool,
}

impl State {
    /// The range the thread zeroes next, if it may start one now: while commits are small,
    /// and only where a whole chunk fits inside the lead. The last rule makes the thread
    /// write a chunk once per `CHUNK_BYTES` of commits: letting it top the lead up after
    /// every commit wrote a page of zeros per small commit, whose extent conversion the next
    /// commit's `fdatasync` then had to journal, and woke the thread twice per commit.
    fn next_chunk(&self) -> Option<(u64, u64)> {
        if self.large_commits {
            return None;
        }
        let target = self.target.as_ref()?;
        let start = self.zeroed.max(self.claimed);
        if start + CHUNK_BYTES as u64 > self.claimed + LEAD_BYTES {
            return None;
        }
        let end = target.allocated.min(start + CHUNK_BYTES as u64);
        (start < end).then_some((start, end))
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The thread and the writer hold the lock only around plain field updates.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The zeroing thread of one store; stops when dropped.
pub(crate) struct Zeroer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Zeroer {
    /// Starts the thread, with no segment to zero yet. `None` when the thread cannot be
    /// spawned: zeroing ahead is an optimisation, and the store works without it.
    pub(crate) fn start() -> Option<Zeroer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("textstore-zeroer".to_owned())
            .spawn(move || run(&thread_shared))
            .ok()?;
        Some(Zeroer {
            shared,
            thread: Some(thread),
        })
    }

    /// Zeroes `target` from now on, in place of any earlier segment (which must have been
    /// detached).
    pub(crate) fn attach(&self, target: ZeroTarget) {
        let mut state = self.shared.lock();
        debug_assert!(state.busy.is_none());
        state.claimed = target.end;
        state.zeroed = target.end.max(target.written);
        state.target = Some(target);
        self.shared.changed.notify_all();
    }

    /// Stops zeroing the segment and waits for a chunk in progress, so that the writer may
    /// cut the file.
    pub(crate) fn detach(&self) {
        let mut state = self.shared.lock();
        state.target = None;
        while state.busy.is_some() {
            state = self.wait(state);
        }
    }

    /// The writer is about to write `segment` from `start` up to `end`: once this returns,
    /// no zero lands below `end`. Returns how many bytes of zeros the commit should write
    /// after its data itself (at most `max_zeros`): a small commit that reaches past the
    /// zeros written so far (the thread lags behind, or the segment is new) takes the next
    /// stretch of preallocated space in its own write.
    pub(crate) fn claim(&self, segment: u32, start: u64, end: u64, max_zeros: u64) -> u64 {
        let mut state = self.shared.lock();
        let Some(allocated) = state
            .target
            .as_ref()
            .filter(|t| t.segment == segment)
            .map(|t| t.allocated)
        else {
            return 0;
        };
        let small = end - start <= SMALL_COMMIT_BYTES;
        state.large_commits = !small;
        let zeros_to = if small && end > state.zeroed.max(state.claimed) {
            allocated.min(end + max_zeros).max(end)
        } else {
            end
        };
        state.claimed = state.claimed.max(zeros_to);
        while state.busy.is_some_and(|(start, _)| start < zeros_to) {
            state = self.wait(state);
        }
        zeros_to - end
    }

    /// The commit that claimed bytes is written and synced (or failed): wakes the thread if
    /// the claims moved far enough for a whole chunk.
    pub(crate) fn committed(&self) {
        let state = self.shared.lock();
        if state.next_chunk().is_some() {
            self.shared.changed.notify_all();
        }
    }

    /// The segment's preallocation grew to `allocated` bytes: more to zero.
    pub(crate) fn allocated(&self, segment: u32, allocated: u64) {
        let mut state = self.shared.lock();
        // Only growth wakes the thread: the writer calls this on every commit.
        if let Some(target) = state
            .target
            .as_mut()
            .filter(|t| t.segment == segment && allocated > t.allocated)
        {
            target.allocated = allocated;
            self.shared.changed.notify_all();
        }
    }

    /// Chunks zeroed so far.
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> u64 {
        self.shared.lock().chunks
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.shared
            .changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Zeroer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // The thread catches the panics of the storage it calls; a join error carries
            // nothing to act on.
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared) {
    let zeros = vec![0u8; CHUNK_BYTES];
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        let next = state.next_chunk().and_then(|(start, end)| {
            let target = state.target.as_ref()?;
            let file = target.file.try_clone();
            let storage = Arc::clone(&target.storage);
            Some((
                target.segment,
                start,
                end,
                file,
                target.path.clone(),
                storage,
            ))
        });
        let Some((segment, start, end, Ok(file), path, storage)) = next else {
            if next.is_some() {
                // The descriptor could not be duplicated: give up on this segment.
                state.target = None;
            }
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        };
        state.busy = Some((start, end));
        drop(state);
        let len = (end - start) as usize;
        let written = unpanicked(|| storage.write_at(&file, &path, &zeros[..len], start));
        // The zeros are in the page cache: from here on the writer may write over them, so
        // the chunk is no longer busy while it goes to the disk. Only its range goes, not
        // the file's other dirty pages, so a commit being written is not flushed before its
        // time; the extents it converts are journalled with the writer's next `fdatasync`,
        // once for the whole chunk. (Pages the writer wrote over meanwhile go to the disk
        // early, which promises nothing and harms nothing.)
        state = shared.lock();
        state.busy = None;
        shared.changed.notify_all();
        drop(state);
        let written = written.and_then(|()| {
            unpanicked(|| storage.write_back_range(&file, &path, start, len as u64))
        });
        state = shared.lock();
        // The writer may have moved to another segment while the chunk went to the disk.
        if state.target.as_ref().is_some_and(|t| t.segment == segment) {
            match written {
                Ok(()) => {
                    state.zeroed = end;
                    state.chunks += 1;
                }
                // The rest stays unwritten space, which is correct, only slower to commit
                // into.
                Err(_) => state.target = None,
            }
        }
        shared.changed.notify_all();
    }
}

/// Runs one of the storage's calls, a panic in it taken as a failure: the storage may be the
/// caller's own (`Storage` is a public trait), and a thread that ended in a panic would
/// leave its chunk busy, and the writer waiting on it in `claim` or `detach`, forever. Zeros
/// that failed to land, for whatever reason, leave unwritten space, which is correct.
fn unpanicked(call: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or_else(|_| Err(io::Error::other("the storage panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsStorage;
    use std::os::unix::fs::FileExt;

    fn target(dir: &std::path::Path, len: u64) -> ZeroTarget {
        target_at(&dir.join("segment"), len)
    }

    fn target_at(path: &std::path::Path, len: u64) -> ZeroTarget {
        let path = path.to_path_buf();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.write_all_at(&vec![7u8; len as usize], 0).unwrap();
        ZeroTarget {
            segment: 1,
            file,
            path,
            storage: Arc::new(OsStorage),
            end: 0,
            written: 0,
            allocated: len,
        }
    }

    /// A zeroer whose thread never runs, so that a test sees the writer's side alone.
    fn without_thread() -> Zeroer {
        Zeroer {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
            thread: None,
        }
    }

    /// Dropping the zeroer stops its thread and waits for it: a thread left waiting would
    /// outlive its store, one for every store opened. The thread holds the shared state
    /// until it returns.
    #[test]
    fn dropping_the_zeroer_stops_and_joins_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let zeroer = Zeroer::start().expect("the thread starts");
        zeroer.attach(target(dir.path(), 4 * LEAD_BYTES));
        let shared = Arc::clone(&zeroer.shared);
        assert_eq!(
            Arc::strong_count(&shared),
            3,
            "the zeroer, its thread, the test"
        );
        zeroer.detach();
        drop(zeroer);
        assert_eq!(
            Arc::strong_count(&shared),
            1,
            "the thread still holds its state"
        );
        assert!(shared.lock().stop);
    }

    /// A storage that panics in a zero write costs the segment its zeroing and nothing
    /// else: the writer's next claim and its detach return (a thread that ended in the
    /// panic left its chunk busy, and both waited for it forever), and the panic reaches no
    /// caller.
    #[test]
    fn a_panic_in_the_storage_stops_the_zeroing_without_holding_the_writer() {
        use crate::fault::{Fault, FaultOp, FaultStorage};

        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultStorage::new());
        let panic = Fault::Panic(FaultOp::Write);
        storage.inject(panic, 0);
        let mut target = target(dir.path(), 4 * LEAD_BYTES);
        target.storage = Arc::clone(&storage) as Arc<dyn Storage>;
        let zeroer = Arc::new(Zeroer::start().expect("the thread starts"));
        zeroer.attach(target);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while storage.injected(panic) == 0 {
            assert!(std::time::Instant::now() < deadline, "no chunk was written");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (done, claimed) = std::sync::mpsc::channel();
        let writer = Arc::clone(&zeroer);
        std::thread::spawn(move || {
            writer.claim(1, 0, 4000, 4096);
            writer.detach();
            done.send(()).unwrap();
        });
        claimed
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the writer waits for a chunk the panic left busy");
        assert_eq!(zeroer.chunks(), 0);
        // The thread lives on and zeroes the next segment.
        zeroer.attach(target_at(&dir.path().join("next"), 4 * LEAD_BYTES));
        while zeroer.chunks() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the next segment was never zeroed"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        zeroer.detach();
    }

    /// A zeroer without its thread, on a segment of four leads with no data yet.
    fn attached_from_the_start(dir: &std::path::Path) -> Zeroer {
        let zeroer = without_thread();
        let mut target = target(dir, 4 * LEAD_BYTES);
        target.end = 0;
        zeroer.attach(target);
        zeroer
    }

    /// A small commit past the zeros written so far is told to write the next stretch
    /// itself, up to the allocation; a commit inside that stretch, or a large one, is not.
    #[test]
    fn a_small_commit_past_the_zeros_writes_the_next_stretch_itself() {
        let dir = tempfile::tempdir().unwrap();
        let zeroer = without_thread();
        let mut target = target(dir.path(), 1 << 20);
        target.end = 64;
        zeroer.attach(target);
        assert_eq!(zeroer.claim(1, 64, 2064, 4096), 4096);
        zeroer.committed();
        // The next commit ends inside the stretch the first one zeroed.
        assert_eq!(zeroer.claim(1, 2064, 4064, 4096), 0);
        zeroer.committed();
        // One that reaches past it takes the next stretch, cut at the allocation.
        let past = (1 << 20) - 1000;
        assert_eq!(zeroer.claim(1, past - 2000, past, 4096), 1000);
        zeroer.committed();
        // Another segment's commit is not this target's.
        assert_eq!(zeroer.claim(2, 0, 100, 4096), 0);
        // A large commit pays the conversion once among much more data: no zeros.
        zeroer.detach();
        let mut target = target_at(&dir.path().join("large"), 1 << 20);
        target.end = 64;
        zeroer.attach(target);
        let large_end = 64 + SMALL_COMMIT_BYTES + 1;
        assert_eq!(zeroer.claim(1, 64, large_end, 4096), 0);
        zeroer.committed();
        // The small commit after it does.
        assert_eq!(zeroer.claim(1, large_end, large_end + 100, 4096), 4096);
    }

    /// With the lead full, small commits start no chunk until a whole one fits again: the
    /// thread writes once per chunk of commits, not a page of zeros after each.
    #[test]
    fn the_thread_tops_the_lead_up_a_whole_chunk_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let zeroer = attached_from_the_start(dir.path());
        let chunk = CHUNK_BYTES as u64;
        assert_eq!(zeroer.shared.lock().next_chunk(), Some((0, chunk)));
        zeroer.shared.lock().zeroed = LEAD_BYTES;
        let mut end = 0;
        while end + 4000 < chunk {
            assert_eq!(zeroer.claim(1, end, end + 4000, 0), 0);
            zeroer.committed();
            end += 4000;
            assert_eq!(
                zeroer.shared.lock().next_chunk(),
                None,
                "claimed up to {end}"
            );
        }
        assert_eq!(zeroer.claim(1, end, chunk, 0), 0);
        zeroer.committed();
        assert_eq!(
            zeroer.shared.lock().next_chunk(),
            Some((LEAD_BYTES, LEAD_BYTES + chunk))
        );
    }

    /// A chunk may start while a commit is written and synced, past its claim: back-to-back
    /// commits leave no time between them.
    #[test]
    fn a_chunk_may_start_beside_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let zeroer = attached_from_the_start(dir.path());
        zeroer.shared.lock().zeroed = 8192;
        // A commit inside the zeros claims its bytes and has not ended.
        assert_eq!(zeroer.claim(1, 0, 4000, 4096), 0);
        let chunk = CHUNK_BYTES as u64;
        assert_eq!(
            zeroer.shared.lock().next_chunk(),
            Some((8192, 8192 + chunk)),
            "no chunk beside a commit"
        );
    }

    /// The thread zeroes the space past the data and past the writer's claims, up to its
    /// lead, and never the bytes the writer wrote after claiming them.
    #[test]
    fn zeros_land_only_past_the_data_and_the_claims() {
        let dir = tempfile::tempdir().unwrap();
        let len = LEAD_BYTES + 3 * CHUNK_BYTES as u64 + 100;
        let zeroer = Zeroer::start().unwrap();
        let mut target = target(dir.path(), len);
        let file = target.file.try_clone().unwrap();
        // 1000 bytes of data, and a first preallocation of one chunk.
        target.end = 1000;
        target.allocated = CHUNK_BYTES as u64;
        zeroer.attach(target);
        // The writer claims up to 5000, then writes there.
        assert_eq!(zeroer.claim(1, 1000, 5000, 0), 0);
        file.write_all_at(&[7u8; 4000], 1000).unwrap();
        zeroer.committed();
        zeroer.allocated(1, len);
        // Where the thread stops, once it has no chunk left to start.
        let settled = || {
            let mut state = zeroer.shared.lock();
            while state.busy.is_some() || state.next_chunk().is_some() {
                state = zeroer.wait(state);
            }
            state.zeroed
        };
        // It stops where a whole chunk no longer fits inside the lead: within a chunk of its
        // end, never past it.
        let lead_end = settled();
        assert!(
            (5000 + LEAD_BYTES - CHUNK_BYTES as u64..=5000 + LEAD_BYTES).contains(&lead_end),
            "the lead ends at {lead_end}"
        );
        // The writer moves on (a small commit near the end): the thread follows, up to the
        // allocation.
        assert_eq!(zeroer.claim(1, len - 100, len - 10, 0), 0);
        zeroer.committed();
        assert_eq!(settled(), len);
        zeroer.detach();
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        assert!(bytes[..5000].iter().all(|&b| b == 7), "data was zeroed");
        let lead_end = lead_end as usize;
        assert!(
            bytes[5000..lead_end].iter().all(|&b| b == 0),
            "a byte of the lead was left unzeroed"
        );
        let stray = bytes[lead_end..len as usize - 100]
            .iter()
            .position(|&b| b != 7)
            .map(|at| lead_end + at);
        assert_eq!(
            stray, None,
            "zeros past the lead (which ends at {lead_end}), or on bytes the writer claimed"
        );
        assert!(
            bytes[len as usize - 10..].iter().all(|&b| b == 0),
            "a byte past the last claim was left unzeroed"
        );
        assert!(zeroer.chunks() >= 3);
        assert_eq!(
            file.metadata().unwrap().len(),
            len,
            "nothing past the allocation"
        );
    }
}
