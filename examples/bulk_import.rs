//! A bulk importer: every text file below a directory into a store, with a progress bar,
//! in batches that commit while the next one is read.
//!
//! ```sh
//! bulk_import DOCS_DIR STORE_DIR
//! ```
//!
//! Each file becomes the document whose id derives from its path below DOCS_DIR
//! (`DocId::from_key("guide/intro.md")`), so a second import of the same tree replaces
//! the documents instead of adding copies, and `textstore get --key guide/intro.md` finds
//! one. Files that are not UTF-8 text are skipped and counted.

use std::path::Path;
use std::time::Instant;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use textstore::{DocId, DocWrite, Textstore, WriteBatch, WriteTicket};

/// Documents per batch: each batch is one commit (one `fdatasync`).
const BATCH_DOCS: usize = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(docs), Some(store_dir)) = (args.next(), args.next()) else {
        eprintln!("usage: bulk_import DOCS_DIR STORE_DIR");
        std::process::exit(2);
    };
    let docs = Path::new(&docs);
    let files: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(docs)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .collect();

    let store = Textstore::builder(store_dir).open()?;
    let started = Instant::now();
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} files {per_sec} eta {eta}",
    )?);

    let (mut documents, mut bytes, mut skipped) = (0u64, 0u64, 0u64);
    let mut batch = WriteBatch::new();
    // The ticket of the batch before: it commits while this one is read and filled.
    let mut committing = None;
    for entry in &files {
        bar.inc(1);
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            skipped += 1;
            continue;
        };
        let key = entry
            .path()
            .strip_prefix(docs)?
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        bytes += text.len() as u64;
        documents += 1;
        batch.put(DocId::from_key(&key), &text);
        if batch.len() >= BATCH_DOCS {
            let ticket = store.put_batch(std::mem::take(&mut batch))?;
            if let Some(previous) = committing.replace(ticket) {
                previous.wait()?;
            }
        }
    }
    if let Some(previous) = committing.take() {
        previous.wait()?;
    }
    if !batch.is_empty() {
        store.put_batch(batch)?.wait()?;
    }
    bar.finish();
    store.close()?;

    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {documents} documents ({}) in {seconds:.2} s, {:.0} documents/s; skipped {skipped} files that are not UTF-8 text",
        HumanBytes(bytes),
        documents as f64 / seconds.max(1e-9)
    );
    Ok(())
}
