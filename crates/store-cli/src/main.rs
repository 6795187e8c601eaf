//! `textstore`: the command-line tool over a store directory.
//!
//! This binary is a thin shell over `store-mmap`: it parses arguments, maps every outcome to
//! one of four exit codes and prints errors as one sentence on stderr. It holds no storage
//! logic of its own.
//!
//! Exit codes: 0 success, 1 document not found, 2 bad usage or bad input, 3 storage error
//! (I/O, corruption found, store missing or locked).

mod import;
mod progress;
mod recover;
mod report;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::HumanBytes;
use store_mmap::{
    AccessPattern, Change, DocId, Error, ErrorKind, Store, StoreError, StoreOptions, TextRange,
};

use crate::progress::Bar;

#[derive(Parser)]
#[command(
    name = "textstore",
    version,
    about = "A crash-safe store of document texts."
)]
struct Cli {
    /// The store directory. Writing commands create it when it is absent or empty. Every
    /// command but `recover` and `completions` needs it.
    #[arg(long, value_name = "DIR", env = "TEXTSTORE_DIR", global = true)]
    store: Option<PathBuf>,
    /// Print what the command reports as JSON on stdout: one object, or one per line for
    /// commands that list (`ids`, `export`, `import`, `changes`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Which document: its id, or the key it is derived from.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// Document id: a ULID or a decimal integer.
    id: Option<String>,
    /// The key the id derives from, as `import` derives it from a file's path below the
    /// imported directory (for example "guide/intro.md").
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Store a document: the text of FILE, or of stdin without FILE or with "-". The
    /// document is ID, or --key KEY (then the only argument is FILE).
    Put {
        /// ID then FILE, or FILE alone with --key.
        #[arg(value_name = "ID [FILE]", num_args = 0..=2)]
        args: Vec<String>,
        /// The key the id derives from, as `import` derives it.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },
    /// Print a document's text to stdout.
    Get {
        #[command(flatten)]
        which: Which,
    },
    /// Delete a document.
    Delete {
        #[command(flatten)]
        which: Which,
    },
    /// Print part of a document.
    Extract {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Import a directory (one document per regular file, id derived from its path below
    /// the directory, printed as `ID<TAB>path`; files that are not UTF-8 text, too large or
    /// unreadable are skipped and listed in the summary) or JSONL lines of
    /// {"id": ..., "text": ...} from a .jsonl file or from stdin ("-").
    Import {
        /// A directory, a .jsonl file, or - for JSONL on stdin.
        path: PathBuf,
    },
    /// Print every document as JSONL, ordered by id.
    Export,
    /// Print the id of every document, ordered.
    Ids,
    /// Print every change committed after sequence number SINCE, in order: what an indexer
    /// applies to catch up.
    Changes {
        /// The sequence number to start after (0: every change still stored).
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Print the store's size and shape, and advice (such as when compaction would pay).
    Stat {
        /// Exact byte counts instead of sizes rounded for reading.
        #[arg(long)]
        bytes: bool,
        /// Print the Prometheus text format instead of text.
        #[arg(long)]
        prometheus: bool,
    },
    /// Check every record of every segment, and the index against them, from the files
    /// alone: works on a store that will not open, and changes no file. Prints each damaged
    /// byte range; exit 3 when there is one.
    Verify,
    /// Rebuild the index file from the segments when `verify` finds a page of it damaged
    /// (the index file is a cache of the data); an intact index is left as it is. Exit 3
    /// when the data itself is damaged, which `recover` reads past.
    RebuildIndex,
    /// Copy every intact record of the store in SRC into a new store in DEST (absent or
    /// empty), reading past damage, without changing a byte of SRC. Reports each damaged
    /// range and each document whose latest version may be lost on stderr (or as JSON on
    /// stdout with --json); exit 0 when everything was recovered, 3 when something was lost.
    Recover {
        /// The damaged store.
        src: PathBuf,
        /// Where to write the new store.
        dest: PathBuf,
    },
    /// Reclaim the space of overwritten and deleted documents: copy the live records of
    /// every segment that holds dead ones into new segments and remove the old ones, spare
    /// files included (a writer keeps one by default, to write its next segment over).
    Compact,
    /// Write a consistent copy of the store into DIR (absent or empty), which opens as a
    /// store: sealed segments are hard-linked where possible, the rest copied.
    Backup {
        /// The directory to write the copy into.
        dir: PathBuf,
    },
    /// Print a completion script for SHELL: for example
    /// `textstore completions bash > /etc/bash_completion.d/textstore`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct RangeArgs {
    /// Bytes A..B: zero-based, end exclusive; both ends on character boundaries.
    #[arg(long, value_name = "A..B")]
    bytes: Option<String>,
    /// Characters A..B: zero-based, end exclusive.
    #[arg(long, value_name = "A..B")]
    chars: Option<String>,
    /// Lines A-B: one-based, inclusive, like sed.
    #[arg(long, value_name = "A-B")]
    lines: Option<String>,
}

/// A failure with its exit code.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    fn not_found(id: DocId) -> Failure {
        Failure {
            code: 1,
            message: format!("document {id} not found"),
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        let code = match err.kind() {
            ErrorKind::NotFound => 1,
            ErrorKind::InvalidInput => 2,
            _ => 3,
        };
        Failure {
            code,
            message: with_causes(&err),
        }
    }
}

/// The error and each error behind it, as one sentence: every layer's message says only
/// what it adds, and `source()` holds the rest.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        message.push_str(": ");
        message.push_str(&err.to_string());
        cause = err.source();
    }
    message
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("textstore: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Outcome {
    let mut out = std::io::stdout().lock();
    let json = cli.json;
    let store = cli.store.as_deref();
    let dir = || {
        store.ok_or_else(|| {
            Failure::usage("--store DIR (or TEXTSTORE_DIR) is required: the store directory")
        })
    };
    match cli.command {
        Command::Put { args, key } => {
            let (id, file) = put_args(&args, key.as_deref())?;
            let mut bytes = Vec::new();
            let text = match file {
                Some(path) if path != "-" => read_text_file_into(Path::new(path), &mut bytes)?,
                _ => read_text("stdin", std::io::stdin().lock(), &mut bytes)?,
            };
            let mut store = writable(dir()?)?;
            let seq = store.put(id, text)?;
            if json {
                print_json(&mut out, &serde_json::json!({ "id": id, "seq": seq }))?;
            }
        }
        Command::Get { which } => {
            let id = which.id()?;
            let doc = readable(dir()?, AccessPattern::Random)?
                .get(id)?
                .ok_or(Failure::not_found(id))?;
            if json {
                let value = serde_json::json!({ "id": id, "seq": doc.seq(), "text": &*doc });
                print_json(&mut out, &value)?;
            } else {
                write_out(&mut out, doc.as_bytes())?;
            }
        }
        Command::Delete { which } => {
            let id = which.id()?;
            let mut store = writable(dir()?)?;
            if !store.delete(id)? {
                return Err(Failure::not_found(id));
            }
            if json {
                let value = serde_json::json!({ "id": id, "seq": store.last_seq() });
                print_json(&mut out, &value)?;
            }
        }
        Command::Extract { which, range } => {
            let id = which.id()?;
            let range = parse_range(&range)?;
            let text = readable(dir()?, AccessPattern::Random)?.extract(id, range)?;
            if json {
                let value =
                    serde_json::json!({ "id": id, "range": range_json(range), "text": &*text });
                print_json(&mut out, &value)?;
            } else {
                write_out(&mut out, text.as_bytes())?;
            }
        }
        Command::Import { path } => {
            import::run(&mut writable(dir()?)?, &path, json, &mut out)?;
        }
        Command::Export => {
            let store = readable(dir()?, AccessPattern::Sequential)?;
            let ids = sorted_ids(&store)?;
            let bar = Bar::items("export", "documents");
            bar.set_total(ids.len() as u64);
            for id in ids {
                bar.inc(1);
                let Some(doc) = store.get(id)? else { continue };
                let line = serde_json::json!({ "id": id, "text": &*doc });
                write_out(&mut out, format!("{line}\n").as_bytes())?;
            }
            bar.finish();
        }
        Command::Ids => {
            let store = readable(dir()?, AccessPattern::Normal)?;
            for id in sorted_ids(&store)? {
                let line = if json {
                    format!("{}\n", serde_json::json!({ "id": id }))
                } else {
                    format!("{id}\n")
                };
                write_out(&mut out, line.as_bytes())?;
            }
        }
        Command::Changes { since } => {
            let store = readable(dir()?, AccessPattern::Sequential)?;
            for change in store.changes_since(since)? {
                write_out(&mut out, change_line(&change?, json).as_bytes())?;
            }
        }
        Command::Stat { bytes, prometheus } => {
            let store = readable(dir()?, AccessPattern::Normal)?;
            let format = match (json, prometheus) {
                (true, true) => {
                    return Err(Failure::usage(
                        "--json and --prometheus are two formats: pick one",
                    ));
                }
                (true, false) => report::Format::Json,
                (false, true) => report::Format::Prometheus,
                (false, false) => report::Format::Text { exact: bytes },
            };
            let text = report::stat(&store, format)?;
            write_out(&mut out, text.as_bytes())?;
        }
        Command::Verify => {
            let bar = Bar::bytes("verify");
            let report = match store_mmap::verify_dir_with(dir()?, &bar) {
                // A writer holds the store: check what it has published, through a
                // read-only open.
                Err(Error::Locked { .. }) => {
                    readable(dir()?, AccessPattern::Sequential)?.verify_with(&bar)
                }
                other => other?,
            };
            bar.finish();
            if json {
                print_json(&mut out, &report::verify_json(&report))?;
            } else {
                for problem in &report.problems {
                    write_out(&mut out, format!("{problem}\n").as_bytes())?;
                }
            }
            let summary = format!(
                "{}, {}, {} checked",
                report::counted(report.segments, "segment"),
                report::counted(report.records_ok, "intact record"),
                report::counted(report.documents_checked, "document")
            );
            if !report.is_clean() {
                let way_out = if report.index_file_alone_damaged() {
                    "the index file is a cache of the data, and `textstore rebuild-index` rebuilds it from the segments".to_owned()
                } else {
                    format!(
                        "`textstore recover {} NEW_DIR` copies every intact record into a new store",
                        dir()?.display()
                    )
                };
                return Err(Failure {
                    code: 3,
                    message: format!(
                        "{} found; {summary}. {way_out}",
                        report::counted(report.problems.len() as u64, "problem"),
                    ),
                });
            }
            eprintln!("textstore: store is intact; {summary}");
        }
        Command::RebuildIndex => {
            let mut store = Store::open(
                dir()?,
                StoreOptions::new().access_pattern(AccessPattern::Sequential),
            )?;
            // `verify` checks every page of the index file and marks it damaged for the
            // rebuild; what a second pass finds after a rebuild is damage in the data.
            let bar = Bar::bytes("verify");
            let mut report = store.verify_with(&bar);
            bar.finish();
            let rebuilt = store.repair_index()?;
            if rebuilt {
                report = store.verify();
            }
            store.close()?;
            if json {
                print_json(&mut out, &serde_json::json!({ "rebuilt": rebuilt }))?;
            }
            if !report.is_clean() {
                if !json {
                    for problem in &report.problems {
                        write_out(&mut out, format!("{problem}\n").as_bytes())?;
                    }
                }
                return Err(Failure {
                    code: 3,
                    message: format!(
                        "{} found in the data. `textstore recover {} NEW_DIR` copies every intact record into a new store",
                        report::counted(report.problems.len() as u64, "problem"),
                        dir()?.display()
                    ),
                });
            }
            if rebuilt {
                eprintln!("textstore: the index file was rebuilt from the data");
            } else {
                eprintln!("textstore: the index file is intact; nothing to rebuild");
            }
        }
        Command::Recover { src, dest } => {
            let bar = Bar::bytes("recover");
            let report = store_mmap::recover_with(&src, &dest, &bar)?;
            bar.finish();
            recover::print(&report, &src, &dest, json, &mut out)?;
        }
        Command::Compact => {
            let mut store = Store::open(
                dir()?,
                StoreOptions::new().access_pattern(AccessPattern::Sequential),
            )?;
            let before = store.stats()?.allocated_bytes();
            let bar = Arc::new(Bar::bytes("compact"));
            let report = store.compact_with(Some(bar.clone()))?;
            bar.finish();
            let after = store.stats()?.allocated_bytes();
            store.close()?;
            if json {
                let value = serde_json::json!({
                    "segments_in": report.segments_in,
                    "segments_out": report.segments_out,
                    "records_copied": report.records_copied,
                    "tombstones_dropped": report.tombstones_dropped,
                    "tombstones_kept": report.tombstones_kept,
                    "segments_left": report.segments_left,
                    "allocated_bytes_before": before,
                    "allocated_bytes_after": after,
                });
                print_json(&mut out, &value)?;
            }
            let left = if report.segments_left > 0 {
                format!(
                    "; {} with dead records left, short of room for their copies",
                    report::counted(report.segments_left, "segment")
                )
            } else {
                String::new()
            };
            eprintln!(
                "textstore: compacted {} into {}: {} copied, {} dropped, {} kept; disk use {} -> {}{left}",
                report::counted(report.segments_in, "segment"),
                report.segments_out,
                report::counted(report.records_copied, "record"),
                report::counted(report.tombstones_dropped, "tombstone"),
                report.tombstones_kept,
                HumanBytes(before),
                HumanBytes(after)
            );
        }
        Command::Backup { dir: to } => {
            let mut store = readable(dir()?, AccessPattern::Sequential)?;
            let bar = Bar::bytes("backup");
            let report = store.plan_backup()?.write_to_with(&to, &bar)?;
            bar.finish();
            if json {
                let value = serde_json::json!({
                    "dir": to.display().to_string(),
                    "documents": report.documents,
                    "segments_linked": report.segments_linked,
                    "segments_copied": report.segments_copied,
                    "bytes_copied": report.bytes_copied,
                });
                print_json(&mut out, &value)?;
            }
            eprintln!(
                "textstore: backed up {} documents into {}: {} segments linked, {} copied ({})",
                report.documents,
                to.display(),
                report.segments_linked,
                report.segments_copied,
                HumanBytes(report.bytes_copied)
            );
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "textstore", &mut out);
        }
    }
    out.flush()
        .map_err(|err| Failure::usage(format!("cannot write to stdout: {err}")))
}

impl Which {
    fn id(&self) -> Outcome<DocId> {
        match (&self.id, &self.key) {
            (_, Some(key)) => Ok(DocId::from_key(key)),
            (Some(id), None) => parse_id(id),
            (None, None) => Err(Failure::usage("give a document id, or --key KEY")),
        }
    }
}

/// The document and the file of `put`: `ID [FILE]`, or `[FILE]` with `--key`.
fn put_args<'a>(args: &'a [String], key: Option<&str>) -> Outcome<(DocId, Option<&'a str>)> {
    match (key, args) {
        (Some(key), [] | [_]) => Ok((DocId::from_key(key), args.first().map(String::as_str))),
        (Some(_), _) => Err(Failure::usage(
            "with --key, put takes at most one argument: the FILE",
        )),
        (None, [id, rest @ ..]) => Ok((parse_id(id)?, rest.first().map(String::as_str))),
        (None, []) => Err(Failure::usage("give a document id, or --key KEY")),
    }
}

/// One change as a line: `SEQ<TAB>put|delete<TAB>ID`, or a JSON object with the text.
fn change_line(change: &Change, json: bool) -> String {
    let (op, text) = match change {
        Change::Put { doc, .. } => ("put", Some(&**doc)),
        Change::Delete { .. } => ("delete", None),
    };
    if json {
        let value = serde_json::json!({
            "seq": change.seq(),
            "op": op,
            "id": change.id(),
            "text": text,
        });
        format!("{value}\n")
    } else {
        format!("{}\t{op}\t{}\n", change.seq(), change.id())
    }
}

/// A range as JSON: `{"bytes": [start, end]}`, `{"chars": ...}` or `{"lines": [first, last]}`.
fn range_json(range: TextRange) -> serde_json::Value {
    match range {
        TextRange::Bytes { start, end } => serde_json::json!({ "bytes": [start, end] }),
        TextRange::Chars { start, end } => serde_json::json!({ "chars": [start, end] }),
        TextRange::Lines { first, last } => serde_json::json!({ "lines": [first, last] }),
    }
}

pub(crate) fn print_json(out: &mut impl Write, value: &serde_json::Value) -> Outcome {
    write_out(out, format!("{value:#}\n").as_bytes())
}

fn writable(dir: &Path) -> Outcome<Store> {
    Ok(Store::open_or_create(dir, StoreOptions::new())?)
}

/// Opens the store read-only: reading commands work beside a writer (in a service, say)
/// and never change a file.
fn readable(dir: &Path, access: AccessPattern) -> Outcome<Store> {
    Ok(Store::open_read_only(
        dir,
        StoreOptions::new().access_pattern(access),
    )?)
}

fn sorted_ids(store: &Store) -> Outcome<Vec<DocId>> {
    let mut ids: Vec<DocId> = store.ids().collect::<Result<_, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

pub(crate) fn parse_id(text: &str) -> Outcome<DocId> {
    DocId::parse(text).map_err(|err| Failure::usage(err.to_string()))
}

fn parse_range(args: &RangeArgs) -> Outcome<TextRange> {
    if let Some(text) = &args.bytes {
        let (start, end) = parse_pair(text, "..", "--bytes")?;
        return Ok(TextRange::Bytes { start, end });
    }
    if let Some(text) = &args.chars {
        let (start, end) = parse_pair(text, "..", "--chars")?;
        return Ok(TextRange::Chars { start, end });
    }
    let text = args.lines.as_deref().unwrap_or_default();
    let (first, last) = parse_pair(text, "-", "--lines")?;
    Ok(TextRange::Lines { first, last })
}

fn parse_pair(text: &str, separator: &str, flag: &str) -> Outcome<(u64, u64)> {
    let (a, b) = text
        .split_once(separator)
        .ok_or_else(|| Failure::usage(format!("{flag} takes A{separator}B, not {text:?}")))?;
    Ok((parse_bound(a, flag)?, parse_bound(b, flag)?))
}

fn parse_bound(text: &str, flag: &str) -> Outcome<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().map_err(|_| {
            Failure::usage(format!(
                "{flag}: {text} is larger than the largest position, 2^64 - 1"
            ))
        })
    } else {
        Err(Failure::usage(format!(
            "{flag}: {text:?} is not a non-negative integer"
        )))
    }
}

/// Reads the file at `path` into `buf` (cleared first) and returns it as text.
pub(crate) fn read_text_file_into<'b>(path: &Path, buf: &'b mut Vec<u8>) -> Outcome<&'b str> {
    let file = std::fs::File::open(path)
        .map_err(|err| Failure::usage(format!("cannot read {}: {err}", path.display())))?;
    read_text(&path.display().to_string(), file, buf)
}

/// Reads all of `input`, which errors call `name`, into `buf` (cleared first) and returns it
/// as text.
fn read_text<'b>(name: &str, mut input: impl Read, buf: &'b mut Vec<u8>) -> Outcome<&'b str> {
    buf.clear();
    input
        .read_to_end(buf)
        .map_err(|err| Failure::usage(format!("cannot read {name}: {err}")))?;
    std::str::from_utf8(buf).map_err(|err| {
        Failure::usage(format!(
            "{name} is not UTF-8 text: invalid byte at offset {}",
            err.valid_up_to()
        ))
    })
}

pub(crate) fn write_out(out: &mut impl Write, bytes: &[u8]) -> Outcome {
    match out.write_all(bytes) {
        Ok(()) => Ok(()),
        // A closed pipe (`textstore export | head`) is the reader's choice, not a failure.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(err) => Err(Failure::usage(format!("cannot write to stdout: {err}"))),
    }
}
