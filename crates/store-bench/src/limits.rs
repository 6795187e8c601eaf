//! The machine's physical limits, measured in the same run as the engines so that each
//! engine's figure can be read as a fraction of what the hardware allows.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::measure::{Percentiles, time_each};

/// What the disk and the memory of the machine can do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhysicalLimits {
    /// Bytes per second written sequentially in 1 MiB writes to a new file, including the
    /// `fsync` at the end: the fastest of [`LimitSettings::seq_write_rounds`]. The write-back
    /// of every 8 MiB written starts as the next is written, as an engine's large commit
    /// may do (textstore's does), so that the disk works while the writes go on.
    pub seq_write_bytes_per_sec: f64,
    /// Bytes per second copied from one 64 MiB buffer to another.
    pub memcpy_bytes_per_sec: f64,
    /// The flush limits, which a run measures in each round of the durable puts they
    /// bound, right before the engines' turns (`None` until then): the disk's flush rate
    /// drifts by up to a fifth over a run. The median round by the rate of `written`.
    pub flushes: Option<FlushLimits>,
    /// Every round's rate of `flushes.written`, in the order they ran.
    pub flush_rounds: Vec<f64>,
    /// The batches' texts written and flushed, which a run measures in each round of the
    /// batched puts (`None` until then): the median round.
    pub batch_flushes: Option<WrittenFlushes>,
    /// Every round's rate of `batch_flushes`, in the order they ran.
    pub batch_flush_rounds: Vec<f64>,
}

/// Writes of given sizes, one after another, each followed by `fdatasync`, into space of a
/// file that was already written (zeros, synced), so that no flush carries metadata: the
/// most durable commits of those sizes a second the disk allows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WrittenFlushes {
    /// Writes per second.
    pub per_sec: f64,
    /// Their mean size.
    pub mean_bytes: f64,
    /// Their latencies.
    pub latency: Option<Percentiles>,
}

impl WrittenFlushes {
    /// Measures writes of `sizes` bytes, in order, with a scratch file in `dir`, for at most
    /// [`LimitSettings::fdatasync_time`].
    ///
    /// # Panics
    /// If `sizes` is empty.
    pub fn measure(dir: &Path, settings: LimitSettings, sizes: &[usize]) -> Result<WrittenFlushes> {
        assert!(!sizes.is_empty(), "no write to measure");
        let (per_sec, latency) =
            written_fdatasync(&dir.join("written-fdatasync"), settings, sizes)?;
        Ok(WrittenFlushes {
            per_sec,
            mean_bytes: sizes.iter().sum::<usize>() as f64 / sizes.len() as f64,
            latency,
        })
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
    pub written: WrittenFlushes,
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
    /// Times the 64 MiB buffer is copied.
    pub memcpy_rounds: usize,
}

impl PhysicalLimits {
    /// Measures the bandwidths, with scratch files in `dir` (on the disk the engines use);
    /// the flush limits come later ([`FlushLimits::measure`]).
    pub fn measure(dir: &Path, settings: LimitSettings) -> Result<PhysicalLimits> {
        let mut seq_write_bytes_per_sec = 0.0_f64;
        for _ in 0..settings.seq_write_rounds.max(1) {
            let round = seq_write(&dir.join("seq-write"), settings.seq_write_bytes)?;
            seq_write_bytes_per_sec = seq_write_bytes_per_sec.max(round);
        }
        Ok(PhysicalLimits {
            seq_write_bytes_per_sec,
            memcpy_bytes_per_sec: memcpy(settings.memcpy_rounds),
            flushes: None,
            flush_rounds: Vec::new(),
            batch_flushes: None,
            batch_flush_rounds: Vec::new(),
        })
    }
}

impl FlushLimits {
    /// Measures the flush limits, with scratch files in `dir`. `put_sizes` are the sizes of
    /// the texts the durable puts write, in order (the first `fdatasync_max` are used, again
    /// from the first if there are fewer).
    ///
    /// # Panics
    /// If `put_sizes` is empty.
    pub fn measure(
        dir: &Path,
        settings: LimitSettings,
        put_sizes: &[usize],
    ) -> Result<FlushLimits> {
        let (append_rate, append_latency) =
            append_fdatasync(&dir.join("append-fdatasync"), settings)?;
        let sizes: Vec<usize> = put_sizes
            .iter()
            .copied()
            .cycle()
            .take(settings.fdatasync_max.max(1))
            .collect();
        Ok(FlushLimits {
            append_fdatasync_per_sec: append_rate,
            append_fdatasync_latency: append_latency,
            written: WrittenFlushes::measure(dir, settings, &sizes)?,
        })
    }
}

fn seq_write(path: &Path, bytes: usize) -> Result<f64> {
    use store_mmap::Storage;
    const WRITE_BEHIND: usize = 8 << 20;
    let chunk = vec![0x5a_u8; 1 << 20];
    let start = Instant::now();
    let mut file = File::create(path).map_err(Error::io(path))?;
    let (mut written, mut behind) = (0, 0);
    while written < bytes {
        file.write_all(&chunk).map_err(Error::io(path))?;
        written += chunk.len();
        if written - behind >= WRITE_BEHIND {
            store_mmap::OsStorage
                .start_write_back(&file, path, behind as u64, (written - behind) as u64)
                .map_err(Error::io(path))?;
            behind = written;
        }
    }
    file.sync_all().map_err(Error::io(path))?;
    let elapsed = start.elapsed();
    std::fs::remove_file(path).map_err(Error::io(path))?;
    Ok(written as f64 / elapsed.as_secs_f64())
}

fn append_fdatasync(path: &Path, settings: LimitSettings) -> Result<(f64, Option<Percentiles>)> {
    let block = [0xa5_u8; 4096];
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(Error::io(path))?;
    let (throughput, latencies) =
        time_each(settings.fdatasync_time, settings.fdatasync_max, |_| {
            file.write_all(&block).map_err(Error::io(path))?;
            file.sync_data().map_err(Error::io(path))
        })?;
    drop(file);
    std::fs::remove_file(path).map_err(Error::io(path))?;
    Ok((throughput.per_sec(), latencies.percentiles()))
}

/// Writes of `sizes` bytes one after another, each followed by `fdatasync`, into space
/// zeroed and synced beforehand.
fn written_fdatasync(
    path: &Path,
    settings: LimitSettings,
    sizes: &[usize],
) -> Result<(f64, Option<Percentiles>)> {
    use std::os::unix::fs::FileExt;
    let text = vec![0xa5_u8; sizes.iter().copied().max().unwrap_or(0)];
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io(path))?;
    // Zeros over the whole range first, synced: the writes below land in written extents
    // of a file whose length does not change.
    let zeros = vec![0_u8; 1 << 20];
    let len = sizes.iter().sum::<usize>() as u64;
    let mut at = 0;
    while at < len {
        let n = zeros.len().min((len - at) as usize);
        file.write_all_at(&zeros[..n], at)
            .map_err(Error::io(path))?;
        at += n as u64;
    }
    file.sync_all().map_err(Error::io(path))?;
    let mut offset = 0u64;
    let (throughput, latencies) = time_each(settings.fdatasync_time, sizes.len(), |i| {
        let size = sizes[i];
        file.write_all_at(&text[..size], offset)
            .map_err(Error::io(path))?;
        offset += size as u64;
        file.sync_data().map_err(Error::io(path))
    })?;
    drop(file);
    std::fs::remove_file(path).map_err(Error::io(path))?;
    Ok((throughput.per_sec(), latencies.percentiles()))
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
