//! `textstore import`: a directory of files or a stream of JSONL, committed in batches as it
//! goes.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::Deserialize;
use store_cache::{BufferPool, PoolOptions, PooledBatch};
use store_mmap::{DocId, Store};

use crate::{Failure, Outcome, parse_id, read_text_file_into, write_out};

/// Operations per commit: large enough that the per-commit `fdatasync` is amortised, small
/// enough that an interrupted import loses little and memory stays bounded.
const BATCH_DOCS: usize = 1000;
/// Text bytes per commit, for the same reasons.
const BATCH_BYTES: u64 = 8 << 20;

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
    batch_bytes: u64,
    /// Lines to print once the current batch has committed.
    pending_lines: String,
    documents: u64,
    text_bytes: u64,
}

impl<'a, W: Write> Importer<'a, W> {
    fn new(store: &'a mut Store, out: &'a mut W, pool: &'a BufferPool) -> Importer<'a, W> {
        Importer {
            store,
            out,
            pool,
            batch: pool.batch(),
            batch_bytes: 0,
            pending_lines: String::new(),
            documents: 0,
            text_bytes: 0,
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
        let len = text.len() as u64 + 64;
        if !self.batch.is_empty()
            && (self.batch.len() >= BATCH_DOCS || self.batch_bytes + len > BATCH_BYTES)
        {
            self.commit()?;
        }
        self.batch.put(id, text);
        self.batch_bytes += len;
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
        self.batch_bytes = 0;
        write_out(self.out, self.pending_lines.as_bytes())?;
        self.pending_lines.clear();
        Ok(())
    }

    fn finish(mut self) -> Outcome<(u64, u64)> {
        self.commit()?;
        Ok((self.documents, self.text_bytes))
    }
}

pub(crate) fn run(store: &mut Store, path: &Path, out: &mut impl Write) -> Outcome {
    let dir_name = store.dir().display().to_string();
    let pool = pool();
    let mut importer = Importer::new(store, out, &pool);
    let result = if path == Path::new("-") {
        import_jsonl(&mut importer, std::io::stdin().lock(), "stdin")
    } else if path.is_dir() {
        import_dir(&mut importer, path)
    } else if path.extension().is_some_and(|ext| ext == "jsonl") {
        let file = std::fs::File::open(path)
            .map_err(|err| Failure::usage(format!("cannot read {}: {err}", path.display())))?;
        import_jsonl(
            &mut importer,
            std::io::BufReader::new(file),
            &path.display().to_string(),
        )
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
    eprintln!("textstore: imported {documents} documents ({bytes} bytes of text) into {dir_name}");
    Ok(())
}

fn import_dir(importer: &mut Importer<'_, impl Write>, root: &Path) -> Outcome {
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry
            .map_err(|err| Failure::usage(format!("cannot walk {}: {err}", root.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let key = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{} has a name that is not UTF-8",
                    entry.path().display()
                ))
            })?
            .join("/");
        let len = entry.metadata().map_or(0, |meta| meta.len() as usize);
        let mut buf = importer.pool.bytes(len);
        let text = read_text_file_into(entry.path(), &mut buf)?;
        let id = DocId::from_key(&key);
        let shown = entry.path().display().to_string();
        importer.add(id, text, &shown, Some(format!("{id}\t{key}\n")))?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonDoc<'a> {
    id: serde_json::Value,
    /// Borrowed from the line when it has no escapes.
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

fn import_jsonl(
    importer: &mut Importer<'_, impl Write>,
    mut input: impl BufRead,
    name: &str,
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
