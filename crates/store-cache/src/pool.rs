//! `BufferPool`: reusable byte buffers, strings and write batches, in bounded size classes.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;
use store_format::{DocId, DocRead, WriteBatch};

/// Largest capacity of a small buffer.
pub const SMALL_MAX_BYTES: usize = 1 << 10;
/// Largest capacity of a medium buffer; larger ones are large.
pub const MEDIUM_MAX_BYTES: usize = 64 << 10;

/// How much a [`BufferPool`] keeps. Every bound holds at every moment, under any number of
/// threads returning buffers at once.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Buffers kept per class: small (capacity up to 1 KiB), medium (up to 64 KiB), large;
    /// 0 keeps none of the class.
    pub class_buffers: [usize; 3],
    /// Write batches kept; 0 keeps none.
    pub batches: usize,
    /// Capacity above which a buffer or batch is dropped rather than kept.
    pub max_buffer_bytes: usize,
    /// Total capacity of everything kept.
    pub max_retained_bytes: usize,
}

impl Default for PoolOptions {
    /// 256 small, 64 medium and 8 large buffers, 4 batches, none above 4 MiB, at most
    /// 16 MiB in all.
    fn default() -> PoolOptions {
        PoolOptions {
            class_buffers: [256, 64, 8],
            batches: 4,
            max_buffer_bytes: 4 << 20,
            max_retained_bytes: 16 << 20,
        }
    }
}

/// A thread-safe pool of byte buffers in three size classes, plus write batches.
///
/// A buffer is taken with the capacity the caller expects to need, from the class of that
/// capacity, and returned by its guard's drop to the class of the capacity it has grown to.
/// A class is a lock-free bounded queue. What is kept is bounded per class by count and in
/// all by bytes; a buffer over [`PoolOptions::max_buffer_bytes`] is never kept, so one huge
/// document does not pin its buffer.
pub struct BufferPool {
    classes: [Shelf<Vec<u8>>; 3],
    batches: Shelf<WriteBatch>,
    max_buffer_bytes: usize,
    max_retained_bytes: usize,
    retained_bytes: AtomicUsize,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    returned: AtomicU64,
    discarded_oversize: AtomicU64,
    discarded_surplus: AtomicU64,
}

/// What a [`BufferPool`] has done, counting buffers and batches together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    hits: u64,
    misses: u64,
    returned: u64,
    discarded_oversize: u64,
    discarded_surplus: u64,
    retained_bytes: usize,
    retained_buffers: usize,
}

impl store_format::VisitStats for PoolStats {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        out.counter(
            "textstore_pool_hits_total",
            "Buffer takes served by a kept buffer.",
            self.hits,
        );
        out.counter(
            "textstore_pool_misses_total",
            "Buffer takes that allocated.",
            self.misses,
        );
        out.counter(
            "textstore_pool_discarded_total",
            "Returned buffers dropped: too large, or more than the pool keeps.",
            self.discarded_oversize + self.discarded_surplus,
        );
        out.gauge(
            "textstore_pool_retained_bytes",
            "Bytes of the buffers the pool keeps.",
            self.retained_bytes as f64,
        );
    }
}

impl PoolStats {
    /// Takes served by a kept buffer.
    pub fn hits(&self) -> u64 {
        self.hits
    }
    /// Takes that allocated.
    pub fn misses(&self) -> u64 {
        self.misses
    }
    /// Buffers kept on return.
    pub fn returned(&self) -> u64 {
        self.returned
    }
    /// Buffers dropped on return for being over the size limit.
    pub fn discarded_oversize(&self) -> u64 {
        self.discarded_oversize
    }
    /// Buffers dropped on return because their class or the byte budget was full.
    pub fn discarded_surplus(&self) -> u64 {
        self.discarded_surplus
    }
    /// Capacity of everything kept now.
    pub fn retained_bytes(&self) -> usize {
        self.retained_bytes
    }
    /// Buffers and batches kept now.
    pub fn retained_buffers(&self) -> usize {
        self.retained_buffers
    }
}

impl Default for BufferPool {
    fn default() -> BufferPool {
        BufferPool::new(PoolOptions::default())
    }
}

impl BufferPool {
    /// An empty pool with these bounds.
    pub fn new(options: PoolOptions) -> BufferPool {
        BufferPool {
            classes: options.class_buffers.map(Shelf::new),
            batches: Shelf::new(options.batches),
            max_buffer_bytes: options.max_buffer_bytes,
            max_retained_bytes: options.max_retained_bytes,
            retained_bytes: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    /// An empty byte buffer with room for at least `capacity` bytes.
    pub fn bytes(&self, capacity: usize) -> PooledBytes<'_> {
        Pooled {
            value: self.take(capacity),
            pool: self,
        }
    }

    /// An empty string with room for at least `capacity` bytes.
    pub fn string(&self, capacity: usize) -> PooledString<'_> {
        let value = String::from_utf8(self.take(capacity)).expect("a taken buffer is empty");
        Pooled { value, pool: self }
    }

    /// An empty write batch, with the capacity of an earlier one when one was kept.
    pub fn batch(&self) -> PooledBatch<'_> {
        let batch = match self.batches.pop() {
            Some(batch) => {
                self.release(batch.capacity_bytes());
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                batch
            }
            None => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                WriteBatch::new()
            }
        };
        Pooled {
            value: batch,
            pool: self,
        }
    }

    /// Copies the latest version of `id` out of `reader` into a pooled string, sized from the
    /// document's length; `None` when it does not exist.
    pub fn read<R: DocRead>(
        &self,
        reader: &R,
        id: DocId,
    ) -> Result<Option<PooledString<'_>>, R::Error> {
        let Some(meta) = reader.meta(id)? else {
            return Ok(None);
        };
        let mut text = self.string(usize::try_from(meta.text_len).unwrap_or(usize::MAX));
        // The document may be deleted between the two lookups.
        Ok(reader.read_into(id, &mut text)?.then_some(text))
    }

    /// Allocates `count` buffers of `capacity` bytes and keeps them (as far as the bounds
    /// allow), so that the first takes do not allocate. Returns how many were kept.
    pub fn prewarm(&self, capacity: usize, count: usize) -> usize {
        let before = self.counters.returned.load(Ordering::Relaxed);
        for _ in 0..count {
            self.give(Vec::with_capacity(capacity));
        }
        (self.counters.returned.load(Ordering::Relaxed) - before) as usize
    }

    /// What the pool has done so far, and what it keeps now.
    pub fn stats(&self) -> PoolStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PoolStats {
            hits: load(&self.counters.hits),
            misses: load(&self.counters.misses),
            returned: load(&self.counters.returned),
            discarded_oversize: load(&self.counters.discarded_oversize),
            discarded_surplus: load(&self.counters.discarded_surplus),
            retained_bytes: self.retained_bytes.load(Ordering::Relaxed),
            retained_buffers: self.classes.iter().map(Shelf::len).sum::<usize>()
                + self.batches.len(),
        }
    }

    fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity <= self.max_buffer_bytes {
            // The class of the capacity asked for, then the larger ones: a buffer from a
            // larger class already has the room.
            for class in &self.classes[class_of(capacity)..] {
                if let Some(mut buf) = class.pop() {
                    self.release(buf.capacity());
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    // A buffer of the same class may be smaller than asked: it grows once,
                    // and is returned with the larger capacity.
                    buf.reserve(capacity);
                    return buf;
                }
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        Vec::with_capacity(capacity)
    }

    /// Keeps `buf` (cleared) if the bounds allow, else drops it.
    fn give(&self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity == 0 {
            return;
        }
        buf.clear();
        self.keep(&self.classes[class_of(capacity)], buf, capacity);
    }

    /// Keeps `batch` (cleared, capacity kept) if the bounds allow, else drops it.
    fn give_batch(&self, mut batch: WriteBatch) {
        batch.clear();
        let capacity = batch.capacity_bytes();
        self.keep(&self.batches, batch, capacity);
    }

    /// Puts `value`, which holds `capacity` bytes, in `queue` if the bounds allow.
    fn keep<T>(&self, queue: &Shelf<T>, value: T, capacity: usize) {
        if !self.admit(capacity) {
            return;
        }
        if queue.push(value).is_err() {
            self.release(capacity);
            self.counters
                .discarded_surplus
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counters.returned.fetch_add(1, Ordering::Relaxed);
    }

    /// Reserves `capacity` bytes of the retention budget, or counts why it cannot.
    fn admit(&self, capacity: usize) -> bool {
        if capacity > self.max_buffer_bytes {
            self.counters
                .discarded_oversize
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // A compare-and-swap rather than an add backed out on overflow: the count never
        // exceeds the budget, even for a moment, so every reading of it is within bounds.
        let reserved =
            self.retained_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |retained| {
                    let after = retained + capacity;
                    (after <= self.max_retained_bytes).then_some(after)
                });
        if reserved.is_err() {
            self.counters
                .discarded_surplus
                .fetch_add(1, Ordering::Relaxed);
        }
        reserved.is_ok()
    }

    fn release(&self, capacity: usize) {
        self.retained_bytes.fetch_sub(capacity, Ordering::Relaxed);
    }
}

/// A bounded queue of kept values. One set to keep none has no queue: `ArrayQueue` needs
/// room for one, and a class the caller asked to keep nothing of must not keep one.
struct Shelf<T>(Option<ArrayQueue<T>>);

impl<T> Shelf<T> {
    fn new(capacity: usize) -> Shelf<T> {
        Shelf((capacity > 0).then(|| ArrayQueue::new(capacity)))
    }

    /// Keeps `value`, or hands it back when the shelf is full.
    fn push(&self, value: T) -> Result<(), T> {
        match &self.0 {
            Some(queue) => queue.push(value),
            None => Err(value),
        }
    }

    fn pop(&self) -> Option<T> {
        self.0.as_ref()?.pop()
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, ArrayQueue::len)
    }
}

/// The class of a buffer of `capacity` bytes: 0 small, 1 medium, 2 large.
fn class_of(capacity: usize) -> usize {
    if capacity <= SMALL_MAX_BYTES {
        0
    } else if capacity <= MEDIUM_MAX_BYTES {
        1
    } else {
        2
    }
}

/// What a [`Pooled`] guard can hold: a byte buffer, a string or a write batch. Sealed: the
/// pool knows how to keep each.
pub trait Reusable: Default + sealed::Sealed {
    /// Gives the value back to `pool`, which keeps it or drops it.
    #[doc(hidden)]
    fn return_to(self, pool: &BufferPool);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for Vec<u8> {}
    impl Sealed for String {}
    impl Sealed for store_format::WriteBatch {}
}

impl Reusable for Vec<u8> {
    fn return_to(self, pool: &BufferPool) {
        pool.give(self);
    }
}

impl Reusable for String {
    fn return_to(self, pool: &BufferPool) {
        pool.give(self.into_bytes());
    }
}

impl Reusable for WriteBatch {
    fn return_to(self, pool: &BufferPool) {
        pool.give_batch(self);
    }
}

/// A value from a [`BufferPool`], returned to it on drop.
pub struct Pooled<'a, T: Reusable> {
    value: T,
    pool: &'a BufferPool,
}

/// A `Vec<u8>` from a [`BufferPool`].
pub type PooledBytes<'a> = Pooled<'a, Vec<u8>>;
/// A `String` from a [`BufferPool`].
pub type PooledString<'a> = Pooled<'a, String>;
/// A [`WriteBatch`] from a [`BufferPool`], returned cleared with its capacity.
pub type PooledBatch<'a> = Pooled<'a, WriteBatch>;

impl<T: Reusable> Pooled<'_, T> {
    /// The value, taken out of the pool for good.
    pub fn into_inner(mut self) -> T {
        std::mem::take(&mut self.value)
    }
}

impl<T: Reusable> Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Reusable> DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Reusable> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        std::mem::take(&mut self.value).return_to(self.pool);
    }
}
