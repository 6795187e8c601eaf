//! `StoreSet`: several stores as one, each id living in the store its hash picks.

use std::sync::Arc;

use store_format::{Doc, DocId, DocWrite, Prefetch, Residency};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::store::AsyncStore;

/// Several stores (one per disk, or shards of one data set) used as one. Each id belongs to
/// one store, chosen by a hash of the id that never changes for a given number of stores.
/// `get_many` and `put_many` run the work of each store as its own task, at most `limit`
/// at once, and return results in the order of their input.
pub struct StoreSet<S> {
    stores: Arc<[AsyncStore<S>]>,
    limit: Arc<Semaphore>,
}

impl<S> Clone for StoreSet<S> {
    fn clone(&self) -> StoreSet<S> {
        StoreSet {
            stores: Arc::clone(&self.stores),
            limit: Arc::clone(&self.limit),
        }
    }
}

impl<S> StoreSet<S>
where
    S: DocWrite + Residency + Prefetch + Send + Sync + 'static,
{
    /// A set over `stores` (at least one), running at most `limit` per-store tasks at once.
    pub fn new(stores: Vec<AsyncStore<S>>, limit: usize) -> StoreSet<S> {
        assert!(!stores.is_empty(), "a store set needs at least one store");
        StoreSet {
            stores: stores.into(),
            limit: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// The stores, in the order given.
    pub fn stores(&self) -> &[AsyncStore<S>] {
        &self.stores
    }

    /// The index of the store that holds `id`.
    pub fn shard(&self, id: DocId) -> usize {
        // Both halves mixed by a multiply, so that sequential integer ids and random ULIDs
        // spread alike; the high bits of the product are the well-mixed ones.
        let value = id.as_u128();
        let mixed = ((value as u64) ^ ((value >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((u128::from(mixed) * self.stores.len() as u128) >> 64) as usize
    }

    /// The store that holds `id`.
    pub fn store(&self, id: DocId) -> &AsyncStore<S> {
        &self.stores[self.shard(id)]
    }

    /// Gets every id; the results are in the order of `ids`.
    pub async fn get_many(&self, ids: &[DocId]) -> Vec<Result<Option<Doc>, S::Error>> {
        let work = self.split(ids.iter().copied().enumerate(), |id| *id);
        self.fan_out("get_many", ids.len(), work, |store, id| async move {
            store.get(id).await
        })
        .await
    }

    /// Puts every document; the results (sequence numbers in each document's store) are in
    /// the order of `docs`. Each store commits its share in as few groups as its writer
    /// forms.
    pub async fn put_many(&self, docs: Vec<(DocId, String)>) -> Vec<Result<u64, S::Error>> {
        let count = docs.len();
        let work = self.split(docs.into_iter().enumerate(), |(id, _)| *id);
        self.fan_out("put_many", count, work, |store, (id, text)| async move {
            store.put(id, text).await
        })
        .await
    }

    /// Sorts indexed items by the store that holds each.
    fn split<T>(
        &self,
        items: impl Iterator<Item = (usize, T)>,
        id: impl Fn(&T) -> DocId,
    ) -> Vec<Vec<(usize, T)>> {
        let mut work: Vec<Vec<(usize, T)>> = (0..self.stores.len()).map(|_| Vec::new()).collect();
        for (index, item) in items {
            work[self.shard(id(&item))].push((index, item));
        }
        work
    }

    /// Runs each store's items as one task under the limit; within a store the items are
    /// submitted together, so that writes share group commits.
    async fn fan_out<T, R, F, Fut>(
        &self,
        op_name: &'static str,
        count: usize,
        work: Vec<Vec<(usize, T)>>,
        op: F,
    ) -> Vec<Result<R, S::Error>>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(AsyncStore<S>, T) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<R, S::Error>> + Send,
    {
        let mut tasks = JoinSet::new();
        for (shard, items) in work.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let store = self.stores[shard].clone();
            let limit = Arc::clone(&self.limit);
            let op = op.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let calls = items.into_iter().map(|(index, item)| {
                    let call = op(store.clone(), item);
                    async move { (index, call.await) }
                });
                // Every call is polled, and so submitted, before any is awaited to the end.
                futures_util::future::join_all(calls).await
            });
        }
        let mut results: Vec<Option<Result<R, S::Error>>> = (0..count).map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(shard_results) => {
                    for (index, result) in shard_results {
                        results[index] = Some(result);
                    }
                }
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                // Cancelled by the runtime's shutdown: its items are reported below.
                Err(_) => {}
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Err(Error::Cancelled { op: op_name })))
            .collect()
    }
}
