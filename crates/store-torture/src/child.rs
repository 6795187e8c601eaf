//! The child process: writes until it is killed, logging each operation before it is
//! submitted and again once it is acknowledged.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{CompactionPolicy, WriteBatch};

use crate::workload::{
    BATCH_MEMBERS, BATCH_SLOTS, Line, Op, SINGLE_KEYS, Version, member_id, member_text, single_id,
    single_text,
};
use crate::{Error, store_options};

/// Threads writing at once, so that commits carry several writers' operations.
pub const THREADS: u32 = 4;

/// Opens (recovering) the store at `store`, then writes from [`THREADS`] threads until the
/// process is killed, logging to `log`. Returns only on an error.
pub fn run(store: &Path, log_path: &Path, cycle: u32, seed: u64) -> Result<(), Error> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|source| Error::io("open the log", log_path, source))?;
    let log = Log {
        file,
        path: log_path,
    };
    let store = ConcurrentStore::open_or_create(store, store_options(), writer_options())?;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let store = &store;
                let log = &log;
                scope.spawn(move || write(store, log, cycle, thread, seed))
            })
            .collect();
        // Compactions without a pause, besides the automatic ones, so that kills land in
        // every step of one: planning, copying, installing, removing the replaced segments.
        let compactor = scope.spawn(|| -> Result<(), Error> {
            loop {
                store.compact()?;
            }
        });
        for worker in workers {
            worker.join().expect("a writer thread panicked")?;
        }
        compactor.join().expect("the compacting thread panicked")
    })
}

/// Group commit as configured by default, and an automatic compaction policy eager enough
/// to run within the few milliseconds a child lives.
fn writer_options() -> WriterOptions {
    WriterOptions::default().compaction(CompactionPolicy {
        dead_ratio: Some(0.2),
        min_dead_bytes: 64 << 10,
        segment_dead_ratio: 0.2,
        max_bytes_per_sec: None,
    })
}

/// The acknowledgement log, opened for appending.
struct Log<'a> {
    file: File,
    path: &'a Path,
}

fn write(
    store: &ConcurrentStore,
    log: &Log<'_>,
    cycle: u32,
    thread: u32,
    seed: u64,
) -> Result<(), Error> {
    let mut rng = SmallRng::seed_from_u64(seed ^ u64::from(thread) << 32);
    let owned = |k: &u64| k % u64::from(THREADS) == u64::from(thread);
    let keys: Vec<u64> = (0..SINGLE_KEYS).filter(owned).collect();
    let slots: Vec<u64> = (0..BATCH_SLOTS).filter(owned).collect();
    for n in 0.. {
        let version = Version { cycle, op: n };
        let key = keys[rng.random_range(0..keys.len())];
        let op = match rng.random_range(0..10) {
            0..6 => Op::Put(key, version),
            6..8 => Op::Delete(key, version),
            _ => Op::Batch {
                slot: slots[rng.random_range(0..slots.len())],
                version,
                len: rng.random_range(1..=BATCH_MEMBERS),
            },
        };
        append(log, Line::Intent(op))?;
        match op {
            Op::Put(key, version) => {
                store
                    .put(single_id(key), single_text(key, version))?
                    .wait()?;
            }
            Op::Delete(key, _) => {
                store.delete(single_id(key))?.wait()?;
            }
            Op::Batch { slot, version, len } => {
                let mut writes = WriteBatch::new();
                for i in 0..BATCH_MEMBERS {
                    if i < len {
                        writes.put(member_id(slot, i), &member_text(slot, version, len, i));
                    } else {
                        writes.delete(member_id(slot, i));
                    }
                }
                store.put_batch(writes)?.wait()?;
            }
        }
        append(log, Line::Ack(op))?;
    }
    Ok(())
}

/// Appends one line with one `write` to a file opened for appending, so that lines of
/// different threads do not interleave, and a kill leaves at most one partial last line.
fn append(log: &Log<'_>, line: Line) -> Result<(), Error> {
    let line = line.to_string();
    (&log.file)
        .write_all(line.as_bytes())
        .map_err(|source| Error::io("append to", log.path, source))
}
