//! What the fuzz target `open_store` checks: a store directory made of arbitrary bytes
//! opens or is refused with an error, never a panic or a crash, and a store that opens
//! reads, verifies and accepts a write.

use std::path::Path;

use store_mmap::{DocId, Store, StoreOptions};

/// The files an input stands for: `[meta_len: u16][index_len: u16]`, then the metadata file,
/// the index file and the first segment, each as long as its length says (the segment
/// takes the rest).
pub struct Files<'a> {
    /// `textstore.meta`.
    pub meta: &'a [u8],
    /// `index.tsi`; absent when empty.
    pub index: &'a [u8],
    /// `0000000001.seg`; absent when empty.
    pub segment: &'a [u8],
}

impl<'a> Files<'a> {
    /// Splits an input into files.
    pub fn split(data: &'a [u8]) -> Option<Files<'a>> {
        let (lens, rest) = data.split_at_checked(4)?;
        let meta_len = usize::from(u16::from_le_bytes([lens[0], lens[1]]));
        let index_len = usize::from(u16::from_le_bytes([lens[2], lens[3]]));
        let (meta, rest) = rest.split_at_checked(meta_len)?;
        let (index, segment) = rest.split_at_checked(index_len)?;
        Some(Files {
            meta,
            index,
            segment,
        })
    }

    /// The input that stands for these files.
    pub fn join(&self) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(&(self.meta.len() as u16).to_le_bytes());
        data.extend_from_slice(&(self.index.len() as u16).to_le_bytes());
        data.extend_from_slice(self.meta);
        data.extend_from_slice(self.index);
        data.extend_from_slice(self.segment);
        data
    }

    /// Writes the files into `dir`.
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("textstore.meta"), self.meta).unwrap();
        if !self.index.is_empty() {
            std::fs::write(dir.join("index.tsi"), self.index).unwrap();
        }
        if !self.segment.is_empty() {
            std::fs::write(dir.join("0000000001.seg"), self.segment).unwrap();
        }
    }
}

/// Opens a store made of `data` in a new temporary directory.
pub fn open_store(data: &[u8]) {
    let Some(files) = Files::split(data) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("store");
    std::fs::create_dir(&src).unwrap();
    files.write(&src);
    // Reading the files alone reports damage and never fails on it: `verify_dir` lists it,
    // and `recover` copies what is intact into a store that opens. The one refusal is
    // metadata whose checksum holds but whose limits cannot make a store.
    if let Err(err) = store_mmap::verify_dir(&src) {
        panic!("verify_dir failed on damage instead of reporting it: {err}");
    }
    let recovered = dir.path().join("recovered");
    match store_mmap::recover(&src, &recovered) {
        Ok(_) => {
            if let Err(err) = Store::open(&recovered, StoreOptions::new()) {
                panic!("a recovered store does not open: {err}");
            }
        }
        Err(store_mmap::Error::InvalidOptions { .. }) => {}
        Err(err) => panic!("recover failed on damage instead of reading past it: {err}"),
    }
    // A read-only handle that met a damaged page of the index file rebuilds its view's
    // index from the data at its next refresh: after one, no read fails on the index file.
    if let Ok(mut reader) = Store::open_read_only(&src, StoreOptions::new()) {
        let _ = reader.verify();
        if reader.refresh().is_ok() {
            let not_the_index = |err: store_mmap::Error| {
                assert!(
                    !err.to_string().contains("index.tsi"),
                    "a refreshed read-only handle read a damaged index file: {err}"
                );
            };
            let ids: Vec<DocId> = reader
                .ids()
                .filter_map(|id| id.map_err(not_the_index).ok())
                .collect();
            for id in ids {
                let _ = reader.get(id).map_err(not_the_index);
            }
        }
    }
    let Ok(mut store) = Store::open(&src, StoreOptions::new()) else {
        return;
    };
    let ids: Vec<DocId> = store.ids().filter_map(Result::ok).collect();
    for id in ids {
        // Damage is an error; what matters is that reading it cannot crash.
        let _ = store.get(id);
    }
    let verified = store.verify();
    let id = DocId::from_key("written after the open");
    match store.put(id, "a store that opens takes writes") {
        Ok(_) => {
            let doc = store.get(id).unwrap().expect("the write is there");
            assert_eq!(&*doc, "a store that opens takes writes");
        }
        // A write that meets a damaged page of the index file rebuilds the index from the
        // segments, which fails on damage in them, naming the segment, as an open without
        // the index file would: the one way a store that opened refuses a write.
        Err(err) => {
            let in_a_segment = |text: &str| text.contains(".seg");
            assert!(
                err.is_corruption()
                    && in_a_segment(&err.to_string())
                    && verified
                        .problems
                        .iter()
                        .any(|p| in_a_segment(&p.path.to_string_lossy()))
                    && verified
                        .problems
                        .iter()
                        .any(|p| p.path.ends_with("index.tsi")),
                "a store that opened refuses a write: {err}; verify found {:?}",
                verified.problems
            );
        }
    }
}
