//! `textstore-bench`: runs every workload on textstore and the engines it is compared with,
//! prints a table per workload, and writes the report (Markdown, JSON, SVG chart).
//! `cargo xtask bench` builds it in release and runs it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use store_bench::{
    Corpus, EngineSet, LimitSettings, RunOptions, Settings, compacting, disk, opening, print_step,
    run, write_ratio_chart,
};

/// Measure textstore against its peers and the machine's physical limits.
#[derive(Debug, Parser)]
#[command(name = "textstore-bench")]
struct Args {
    /// Measure only textstore and the in-memory upper bound, not one file per document and
    /// the peers (LMDB, redb, fjall, SQLite; they need the `peers` feature).
    #[arg(long)]
    no_peers: bool,
    /// A directory of files or a .jsonl file to use instead of the two default corpora (the
    /// synthetic one and the Rust documentation's HTML).
    #[arg(long, value_name = "DIR|FILE.jsonl")]
    corpus: Option<PathBuf>,
    /// Documents of each corpus: the synthetic corpus's size, or the first N of another.
    #[arg(long, value_name = "N")]
    docs: Option<usize>,
    /// Seed of the synthetic corpus and of every random choice.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Print the report as JSON on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Run each workload for a few milliseconds: checks that everything runs, measures
    /// nothing.
    #[arg(long)]
    quick: bool,
    /// Where the report goes; the engines write under `<out>/scratch`, removed at the end.
    #[arg(long, default_value = "target/textstore-bench")]
    out: PathBuf,
    /// Only the corpora's workloads: not the reopen by store size, the measurements across
    /// processes and the durable puts beside a compaction.
    #[arg(long, conflicts_with = "only_open")]
    no_open: bool,
    /// Only the reopen by store size, the measurements across processes and the durable puts
    /// beside a compaction.
    #[arg(long)]
    only_open: bool,
    #[command(subcommand)]
    process: Option<Process>,
}

/// The processes the measurements across processes start.
#[derive(Debug, clap::Subcommand)]
enum Process {
    /// A writer committing durable puts to the store for a while (see
    /// `store_bench::opening::writer_process`).
    #[command(hide = true)]
    WriterProcess {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        seconds: f64,
        /// A thread that gets documents (`get`) or watches for commits (`watch`) beside it.
        #[arg(long, value_enum)]
        inside: Option<opening::Role>,
    },
}

/// Documents of each corpus by default: about 65 MiB of synthetic text and about 130 MiB of
/// the Rust documentation's HTML.
const DEFAULT_DOCS: usize = 20_000;

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.process {
        Some(Process::WriterProcess {
            store,
            seconds,
            inside,
        }) => opening::writer_process(store, *seconds, *inside),
        None => bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("textstore-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> store_bench::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(store_bench::Error::io(&args.out))?;
    if !args.quick
        && let Some(available) = disk::room(&args.out, disk::RUN_PEAK_BYTES, disk::HEADROOM_BYTES)?
    {
        eprintln!(
            "textstore-bench: warning: {} has {:.1} GiB available; a run takes up to {:.0} GiB, and appends into a nearly full file system run slower, so the write rows may measure the file system",
            args.out.display(),
            available as f64 / f64::from(1 << 30),
            disk::RUN_PEAK_BYTES as f64 / f64::from(1 << 30),
        );
    }
    let space = disk::SpaceWatch::start(&args.out, Duration::from_millis(250))?;
    let docs = args.docs.unwrap_or(DEFAULT_DOCS);
    let corpora: Vec<(&str, Corpus)> = match &args.corpus {
        _ if args.only_open => Vec::new(),
        Some(path) => {
            let mut corpus = Corpus::load(path)?;
            corpus.truncate(docs);
            vec![("corpus", corpus)]
        }
        None => vec![
            ("synthetic", Corpus::synthetic(docs, args.seed)),
            ("rust-docs", rust_docs(docs, args.seed)?),
        ],
    };
    let mut texts = String::new();
    let mut reports = Vec::new();
    for (name, corpus) in &corpora {
        eprintln!(
            "textstore-bench: {name}: {}; {} documents, {:.1} MiB of text",
            corpus.description(),
            corpus.len(),
            corpus.text_bytes() as f64 / f64::from(1 << 20)
        );
        let out = args.out.join(name);
        let report = bench_corpus(args, corpus, &out, started)?;
        texts.push_str(&format!("== corpus: {name}\n{}\n", report.to_text()));
        reports.push(serde_json::json!({ "corpus": name, "report": report }));
    }
    if !args.no_open {
        let section = open_and_processes(args, started)?;
        texts.push_str(&format!("== opening and processes\n{section}\n"));
        std::fs::create_dir_all(&args.out).map_err(store_bench::Error::io(&args.out))?;
        let path = args.out.join("opening.txt");
        std::fs::write(&path, &section).map_err(store_bench::Error::io(&path))?;
        let section = beside_compaction(args, started)?;
        texts.push_str(&format!("== beside a compaction\n{section}\n"));
        let path = args.out.join("compacting.txt");
        std::fs::write(&path, &section).map_err(store_bench::Error::io(&path))?;
    }
    let space = space.finish()?;
    let space_line = format!(
        "the run took up to {:.1} GiB of the file system that holds {} ({:.1} GiB available at its start)",
        space.peak_bytes() as f64 / f64::from(1 << 30),
        args.out.display(),
        space.at_start as f64 / f64::from(1 << 30),
    );
    texts.push_str(&format!("== disk\n{space_line}\n"));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("a report always encodes")
        );
    } else {
        print!("{texts}");
    }
    eprintln!(
        "textstore-bench: took {:.0}s; {space_line}; reports in {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

/// Durable puts beside a compaction, against the same puts before it
/// (`store_bench::compacting`), over 80,000 synthetic documents (about 250 MiB).
fn beside_compaction(args: &Args, started: Instant) -> store_bench::Result<String> {
    let scratch = args.out.join("scratch-compacting");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    }
    std::fs::create_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    let (docs, alone, quiet_max) = if args.quick {
        (2_000, Duration::from_millis(20), Duration::ZERO)
    } else {
        (80_000, Duration::from_secs(2), Duration::from_secs(10))
    };
    eprintln!(
        "[compacting] {:>7.1}s  durable puts beside a compaction",
        started.elapsed().as_secs_f64()
    );
    let corpus = Corpus::synthetic(docs, args.seed);
    let figure = compacting::puts_beside_compaction(&scratch, &corpus, alone, quiet_max)?;
    std::fs::remove_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    Ok(compacting::to_text(&figure))
}

/// Reopen by store size beside LMDB and redb, the reopen after a killed writer, and reads
/// across processes (`store_bench::opening`).
fn open_and_processes(args: &Args, started: Instant) -> store_bench::Result<String> {
    let scratch = args.out.join("scratch-open");
    // A run that was interrupted left its stores behind.
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    }
    std::fs::create_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    let (sizes, kill_docs, seconds): (Vec<usize>, usize, f64) = if args.quick {
        (vec![1_000, 2_000, 5_000], 5_000, 0.3)
    } else {
        (opening::SIZES.to_vec(), 1_000_000, 3.0)
    };
    let step = |what: &str| {
        eprintln!("[open] {:>7.1}s  {what}", started.elapsed().as_secs_f64());
    };
    step("reopen + first get by store size");
    let reopen = opening::reopen_by_size(&scratch, &sizes, !args.no_peers)?;
    let exe = opening::current_exe()?;
    step("reopen after a writer process is killed");
    let kill = opening::kill_reopen(&scratch, kill_docs, &exe, seconds)?;
    step("readers in the writer's process and in another");
    let reads = opening::process_reads(&scratch, &exe, seconds)?;
    std::fs::remove_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    Ok(opening::to_text(&sizes, &reopen, Some(&kill), Some(&reads)))
}

/// The HTML of the Rust documentation that ships with the toolchain, `docs` files of it
/// (every `n`-th file in name order, so that every book and crate is in it); the synthetic
/// corpus, with a note, where the toolchain has none.
fn rust_docs(docs: usize, seed: u64) -> store_bench::Result<Corpus> {
    let root = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .map(|sysroot| sysroot.join("share/doc/rust/html"));
    match root.filter(|root| root.is_dir()) {
        Some(root) => Corpus::from_dir_spread(&root, docs),
        None => {
            eprintln!(
                "textstore-bench: the toolchain has no HTML documentation (rustup component rust-docs); \
                 the second corpus is the synthetic one with another seed"
            );
            Ok(Corpus::synthetic(docs, seed + 1))
        }
    }
}

/// Runs every workload over `corpus` and writes its report into `out`.
fn bench_corpus(
    args: &Args,
    corpus: &Corpus,
    out: &std::path::Path,
    started: Instant,
) -> store_bench::Result<store_bench::Report> {
    let (settings, limits) = if args.quick {
        (
            Settings::smoke(args.seed),
            LimitSettings {
                seq_write_bytes: 4 << 20,
                seq_write_rounds: 1,
                fdatasync_time: Duration::from_millis(20),
                fdatasync_max: 5,
                grouped_writes_per_thread: 5,
                memcpy_rounds: 1,
            },
        )
    } else {
        (
            Settings::standard(args.seed),
            LimitSettings {
                seq_write_bytes: 256 << 20,
                seq_write_rounds: 3,
                fdatasync_time: Duration::from_secs(2),
                fdatasync_max: 2000,
                grouped_writes_per_thread: 1000,
                memcpy_rounds: 20,
            },
        )
    };
    let scratch = out.join("scratch");
    let options = RunOptions {
        engines: if args.no_peers {
            EngineSet::Bounds
        } else {
            EngineSet::Peers
        },
        settings,
        limits,
        scratch: scratch.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let report = run(corpus, &options, &mut print_step(started))?;
    std::fs::remove_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;
    let markdown = out.join("report.md");
    let json = out.join("report.json");
    let chart = out.join("ratios.svg");
    std::fs::write(&markdown, report.to_markdown()).map_err(store_bench::Error::io(&markdown))?;
    let encoded = serde_json::to_string_pretty(&report).expect("a report always encodes");
    std::fs::write(&json, &encoded).map_err(store_bench::Error::io(&json))?;
    write_ratio_chart(&report, &chart)?;
    Ok(report)
}
