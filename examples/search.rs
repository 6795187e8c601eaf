//! Search with snippets: tantivy indexes the documents, textstore keeps their texts, and
//! the hits of a query are shown with a snippet cut from textstore by a character range,
//! its matching words highlighted.
//!
//! ```sh
//! search index DOCS_DIR WORK_DIR     # every text file below DOCS_DIR
//! search query WORK_DIR WORDS...     # the ten best hits, with snippets
//! ```
//!
//! The search index stores no text: each entry holds the document's id, and the text comes
//! from the store, zero-copy, only for the hits shown. The store is the one place the texts
//! live, so a re-index (another tokenizer, another embedding) reads them from there.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, STORED, STRING, Schema, TEXT, TantivyDocument, Value};
use tantivy::{Index, IndexWriter, Term, doc};
use textstore::{DocId, DocRead, DocWrite, TextRange, Textstore, WriteBatch, WriteTicket};

/// Characters of context on each side of the first match.
const CONTEXT_CHARS: usize = 60;

struct Fields {
    id: Field,
    path: Field,
    body: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        path: builder.add_text_field("path", STRING | STORED),
        // Indexed, not stored: the text lives in textstore.
        body: builder.add_text_field("body", TEXT),
    };
    (builder.build(), fields)
}

fn index(docs: &Path, work: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let store = Textstore::builder(work.join("store")).open()?;
    let index_dir = work.join("index");
    std::fs::create_dir_all(&index_dir)?;
    let (schema, fields) = schema();
    let index =
        Index::open_or_create(tantivy::directory::MmapDirectory::open(&index_dir)?, schema)?;
    let mut writer: IndexWriter = index.writer(50_000_000)?;
    let mut batch = WriteBatch::new();
    for entry in walkdir::WalkDir::new(docs).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue; // not UTF-8 text
        };
        let key = entry
            .path()
            .strip_prefix(docs)?
            .to_string_lossy()
            .into_owned();
        let id = DocId::from_key(&key);
        batch.put(id, &text);
        let id_text = id.to_string();
        // A second index run replaces the entry instead of adding another.
        writer.delete_term(Term::from_field_text(fields.id, &id_text));
        writer.add_document(doc!(
            fields.id => id_text,
            fields.path => key,
            fields.body => text,
        ))?;
    }
    let documents = batch.len();
    // The texts first: an entry of the search index always finds its text.
    store.put_batch(batch)?.wait()?;
    writer.commit()?;
    store.close()?;
    println!("indexed {documents} documents");
    Ok(())
}

/// A word of a text: its range in characters, and the word in lower case.
struct Word {
    start: usize,
    end: usize,
    lower: String,
}

fn words(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut count = 0;
    for (at, c) in text.chars().enumerate() {
        count = at + 1;
        if c.is_alphanumeric() {
            current
                .get_or_insert_with(|| (at, String::new()))
                .1
                .extend(c.to_lowercase());
        } else if let Some((start, lower)) = current.take() {
            words.push(Word {
                start,
                end: at,
                lower,
            });
        }
    }
    if let Some((start, lower)) = current {
        words.push(Word {
            start,
            end: count,
            lower,
        });
    }
    words
}

/// The snippet around the first word of `terms` in document `id`: cut from the store by
/// characters, its matching words between `**`.
fn snippet(store: &Textstore, id: DocId, terms: &[String]) -> textstore::Result<String> {
    let Some(doc) = store.get(id)? else {
        return Ok(String::new());
    };
    let all = words(&doc);
    let total = doc.chars().count();
    let (from, to) = match all.iter().find(|word| terms.contains(&word.lower)) {
        Some(hit) => (
            hit.start.saturating_sub(CONTEXT_CHARS),
            (hit.end + CONTEXT_CHARS).min(total),
        ),
        None => (0, (2 * CONTEXT_CHARS).min(total)),
    };
    let cut = store.extract(id, TextRange::chars(from as u64..to as u64))?;
    let mut out = String::new();
    let mut at = 0;
    let chars: Vec<char> = cut.chars().collect();
    for word in words(&cut) {
        if terms.contains(&word.lower) {
            out.extend(&chars[at..word.start]);
            out.push_str("**");
            out.extend(&chars[word.start..word.end]);
            out.push_str("**");
            at = word.end;
        }
    }
    out.extend(&chars[at..]);
    let out = out.replace('\n', " ");
    Ok(format!(
        "{}{}{}",
        if from > 0 { "…" } else { "" },
        out.trim(),
        if to < total { "…" } else { "" }
    ))
}

fn query(work: &Path, words_asked: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let store = Textstore::builder(work.join("store")).read_only().open()?;
    let index = Index::open_in_dir(work.join("index"))?;
    let (_, fields) = schema();
    let searcher = index.reader()?.searcher();
    let asked = words_asked.join(" ");
    let parsed = QueryParser::for_index(&index, vec![fields.body]).parse_query(&asked)?;
    let terms: Vec<String> = words(&asked).into_iter().map(|word| word.lower).collect();
    let hits = searcher.search(&parsed, &TopDocs::with_limit(10))?;
    if hits.is_empty() {
        println!("no document matches {asked:?}");
    }
    for (score, address) in hits {
        let entry: TantivyDocument = searcher.doc(address)?;
        let text_of = |field| {
            entry
                .get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or("")
        };
        let id = DocId::parse(text_of(fields.id))?;
        println!("{} ({score:.2})", text_of(fields.path));
        println!("    {}", snippet(&store, id, &terms)?);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, docs, work] if command == "index" => index(Path::new(docs), Path::new(work)),
        [command, work, asked @ ..] if command == "query" && !asked.is_empty() => {
            query(Path::new(work), asked)
        }
        _ => {
            eprintln!("usage: search index DOCS_DIR WORK_DIR | search query WORK_DIR WORDS...");
            std::process::exit(2);
        }
    }
}
