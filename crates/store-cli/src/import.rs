//! `textstore import`: a directory of files or a stream of JSONL, committed in batches as it
//! goes.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use indicatif::HumanBytes;

use serde::Deserialize;
use store_cache::{BufferPool, PoolOptions, PooledBatch};
use store_mmap::{DocId, Store};

use crate::progress::Bar;
use crate::report::counted;
use crate::{Failure, Outcome, parse_id, read_text_file_into, write_out};

/// Operations per commit: large enough that the per-commit `fdatasync` is amortised, small
/// enough that an interrupted import loses little and memory stays bounded.
const BATCH_DOCS: usize = 1000;
/// Bytes per commit, for the same reasons: each document's text and [`DOC_OVERHEAD_BYTES`].
const BATCH_BYTES: u64 = 8 << 20;
/// What a document costs a batch beside its text: its record's header and padding, its place
/// in the batch.
const DOC_OVERHEAD_BYTES: u64 = 64;

/// The documents and bytes of the batch being built, and where it must be cut.
#[derive(Debug, Default)]
struct BatchSize {
    docs: usize,
    bytes: u64,
}

impl BatchSize {
    /// Whether the batch must commit before a document of `text_len` bytes joins it: it holds
    /// [`BATCH_DOCS`] documents already, or the document would take it past [`BATCH_BYTES`].
    /// A document joins an empty batch whatever its size, so every commit holds at least one.
    fn full_before(&self, text_len: u64) -> bool {
        self.docs > 0
            && (self.docs >= BATCH_DOCS || self.bytes + text_len + DOC_OVERHEAD_BYTES > BATCH_BYTES)
    }

    fn add(&mut self, text_len: u64) {
        self.docs += 1;
        self.bytes += text_len + DOC_OVERHEAD_BYTES;
    }
}

/// The import's buffers: a file's bytes, a JSONL line, the batch being built. One of each is
/// in use at a time, so the pool keeps few, but large ones: a batch holds up to
/// [`BATCH_BYTES`] of text.
fn pool() -> BufferPool {
    BufferPool::new(PoolOptions {
        class_buffers: [2, 2, 2],
        batches: 1,
        max_buffer_bytes: 2 * BATCH_BYTES as usize,
        max_retained_bytes: 4 * BATCH_BYTES as usize,
    })
}

/// Accumulates documents and commits them in batches; what it prints on stdout is always
/// committed.
struct Importer<'a, W: Write> {
    store: &'a mut Store,
    out: &'a mut W,
    pool: &'a BufferPool,
    batch: PooledBatch<'a>,
    batch_size: BatchSize,
    /// Lines to print once the current batch has committed.
    pending_lines: String,
    documents: u64,
    text_bytes: u64,
    /// Print committed documents as JSON lines.
    json: bool,
}

impl<'a, W: Write> Importer<'a, W> {
    fn new(
        store: &'a mut Store,
        out: &'a mut W,
        pool: &'a BufferPool,
        json: bool,
    ) -> Importer<'a, W> {
        Importer {
            store,
            out,
            pool,
            batch: pool.batch(),
            batch_size: BatchSize::default(),
            pending_lines: String::new(),
            documents: 0,
            text_bytes: 0,
            json,
        }
    }

    /// Adds a document; `source` names it in errors, `line` is printed once committed.
    fn add(&mut self, id: DocId, text: &str, source: &str, line: Option<String>) -> Outcome {
        let limit = self.store.max_document_bytes();
        if text.len() as u64 > limit {
            return Err(Failure::usage(format!(
                "{source} is {} bytes, over the store's limit of {limit} bytes; nothing after it was imported",
                text.len()
            )));
        }
        if self.batch_size.full_before(text.len() as u64) {
            self.commit()?;
        }
        self.batch.put(id, text);
        self.batch_size.add(text.len() as u64);
        if let Some(line) = line {
            self.pending_lines.push_str(&line);
        }
        self.documents += 1;
        self.text_bytes += text.len() as u64;
        Ok(())
    }

    fn commit(&mut self) -> Outcome {
        self.store.put_batch(&self.batch)?;
        self.batch.clear();
        self.batch_size = BatchSize::default();
        write_out(self.out, self.pending_lines.as_bytes())?;
        self.pending_lines.clear();
        Ok(())
    }

    fn finish(mut self) -> Outcome<(u64, u64)> {
        self.commit()?;
        Ok((self.documents, self.text_bytes))
    }
}

/// A file a directory import left out, and why.
struct Skipped {
    path: String,
    reason: String,
}

pub(crate) fn run(store: &mut Store, path: &Path, json: bool, out: &mut impl Write) -> Outcome {
    let dir_name = store.dir().display().to_string();
    let started = Instant::now();
    let pool = pool();
    let mut importer = Importer::new(store, out, &pool, json);
    let mut skipped = Vec::new();
    let result = if path == Path::new("-") {
        let bar = Bar::counter("import", "documents");
        let result = import_jsonl(&mut importer, std::io::stdin().lock(), "stdin", &bar, false);
        bar.finish();
        result
    } else if path.is_dir() {
        import_dir(&mut importer, path, &mut skipped)
    } else if path.extension().is_some_and(|ext| ext == "jsonl") {
        let file = std::fs::File::open(path)
            .map_err(|err| Failure::usage(format!("cannot read {}: {err}", path.display())))?;
        let bar = Bar::bytes("import");
        bar.set_total(file.metadata().map_or(0, |meta| meta.len()));
        let name = path.display().to_string();
        let result = import_jsonl(
            &mut importer,
            std::io::BufReader::new(file),
            &name,
            &bar,
            true,
        );
        bar.finish();
        result
    } else {
        Err(Failure::usage(format!(
            "{} is neither a directory nor a .jsonl file",
            path.display()
        )))
    };
    // Whatever was read before a failure is committed: the error names where it stopped.
    let committed = importer.finish();
    result?;
    let (documents, bytes) = committed?;
    let seconds = started.elapsed().as_secs_f64();
    let rate = documents as f64 / seconds.max(1e-9);
    if json {
        let summary = serde_json::json!({ "summary": {
            "store": dir_name,
            "documents": documents,
            "text_bytes": bytes,
            "seconds": seconds,
            "documents_per_sec": rate,
            "skipped": skipped
                .iter()
                .map(|s| serde_json::json!({ "path": s.path, "reason": s.reason }))
                .collect::<Vec<_>>(),
        }});
        write_out(out, format!("{summary}\n").as_bytes())?;
    }
    let mut summary = format!(
        "textstore: imported {} ({}) into {dir_name} in {seconds:.2} s ({rate:.0} documents/s)",
        counted(documents, "document"),
        HumanBytes(bytes)
    );
    if !skipped.is_empty() {
        let _ = write!(
            summary,
            "; skipped {}:",
            counted(skipped.len() as u64, "file")
        );
        for file in &skipped {
            let _ = write!(summary, "\n  {}: {}", file.path, file.reason);
        }
    }
    eprintln!("{summary}");
    Ok(())
}

/// Imports every regular file below `root`, in name order; files that cannot be documents
/// (not UTF-8 text, over the store's size limit, unreadable, a name that is not UTF-8) are
/// left out and listed in `skipped`.
fn import_dir(
    importer: &mut Importer<'_, impl Write>,
    root: &Path,
    skipped: &mut Vec<Skipped>,
) -> Outcome {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry
            .map_err(|err| Failure::usage(format!("cannot walk {}: {err}", root.display())))?;
        if entry.file_type().is_file() {
            files.push(entry);
        }
    }
    let bar = Bar::items("import", "files");
    bar.set_total(files.len() as u64);
    let limit = importer.store.max_document_bytes();
    for entry in files {
        bar.inc(1);
        let shown = entry.path().display().to_string();
        let mut skip = |reason: String| {
            skipped.push(Skipped {
                path: shown.clone(),
                reason,
            })
        };
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let Some(parts) = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
        else {
            skip("its name is not UTF-8, so no key can be derived from it".to_owned());
            continue;
        };
        let key = parts.join("/");
        let len = entry.metadata().map_or(0, |meta| meta.len());
        if len > limit {
            skip(format!(
                "{len} bytes, over the store's limit of {limit} bytes"
            ));
            continue;
        }
        let mut buf = importer.pool.bytes(len as usize);
        let text = match read_text_file_into(entry.path(), &mut buf) {
            Ok(text) => text,
            Err(failure) => {
                skip(failure.message);
                continue;
            }
        };
        let id = DocId::from_key(&key);
        let line = if importer.json {
            format!("{}\n", serde_json::json!({ "id": id, "path": key }))
        } else {
            format!("{id}\t{key}\n")
        };
        importer.add(id, text, &shown, Some(line))?;
    }
    bar.finish();
    Ok(())
}

#[derive(Deserialize)]
struct JsonDoc<'a> {
    id: serde_json::Value,
    /// Borrowed from the line when it has no escapes.
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

/// Imports JSONL from `input`, which errors call `name`; `bar` counts bytes read when
/// `by_bytes`, documents otherwise.
fn import_jsonl(
    importer: &mut Importer<'_, impl Write>,
    mut input: impl BufRead,
    name: &str,
    bar: &Bar,
    by_bytes: bool,
) -> Outcome {
    let mut line = importer.pool.string(64 << 10);
    for number in 1u64.. {
        line.clear();
        let read = input.read_line(&mut line).map_err(|err| {
            Failure::usage(format!(
                "{name} line {number}: cannot read it as UTF-8 text: {err}"
            ))
        })?;
        if read == 0 {
            break;
        }
        bar.inc(if by_bytes { read as u64 } else { 1 });
        if line.trim().is_empty() {
            continue;
        }
        let doc: JsonDoc = serde_json::from_str(&line).map_err(|err| {
            Failure::usage(format!(
                "{name} line {number}: expected {{\"id\": ..., \"text\": ...}}: {err}"
            ))
        })?;
        let id = match &doc.id {
            serde_json::Value::String(text) => parse_id(text),
            serde_json::Value::Number(n) => n.as_u64().map(DocId::from).ok_or_else(|| {
                Failure::usage(format!(
                    "id {n} is not a non-negative integer below 2^64; give larger ids as strings"
                ))
            }),
            other => Err(Failure::usage(format!(
                "id {other} is neither a string nor a number"
            ))),
        }
        .map_err(|failure| Failure::usage(format!("{name} line {number}: {}", failure.message)))?;
        importer.add(id, &doc.text, &format!("{name} line {number}"), None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a batch of `docs` documents of `text_len` bytes each.
    fn batch_of(docs: usize, text_len: u64) -> BatchSize {
        let mut size = BatchSize::default();
        for _ in 0..docs {
            size.add(text_len);
        }
        size
    }

    #[test]
    fn a_batch_is_cut_at_its_documents_or_its_bytes_and_never_empty() {
        // (documents in the batch, their text length each, the next text's length, cut?)
        let doc = DOC_OVERHEAD_BYTES;
        let cases: &[(usize, u64, u64, bool)] = &[
            (0, 0, 0, false),
            // A document larger than a batch goes alone, into an empty one.
            (0, 0, 2 * BATCH_BYTES, false),
            (1, 0, 2 * BATCH_BYTES, true),
            (BATCH_DOCS - 1, 0, 0, false),
            (BATCH_DOCS, 0, 0, true),
            // One document that fills the batch to the byte, and one byte more.
            (1, 0, BATCH_BYTES - 2 * doc, false),
            (1, 0, BATCH_BYTES - 2 * doc + 1, true),
            (4, 1 << 20, BATCH_BYTES - 4 * ((1 << 20) + doc) - doc, false),
            (
                4,
                1 << 20,
                BATCH_BYTES - 4 * ((1 << 20) + doc) - doc + 1,
                true,
            ),
        ];
        for &(docs, text_len, next, cut) in cases {
            let size = batch_of(docs, text_len);
            assert_eq!(size.docs, docs);
            assert_eq!(size.bytes, docs as u64 * (text_len + doc));
            assert_eq!(
                size.full_before(next),
                cut,
                "{docs} documents of {text_len} bytes, then one of {next}"
            );
        }
    }
}
