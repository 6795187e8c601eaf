//! `textstore-bench`: runs every workload on textstore and the engines it is compared with,
//! prints a table per workload, and writes the report (Markdown, JSON, SVG chart).
//! `cargo xtask bench` builds it in release and runs it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use store_bench::{
    Corpus, EngineSet, LimitSettings, RunOptions, Settings, print_step, run, write_ratio_chart,
};

/// Measure textstore against its peers and the machine's physical limits.
#[derive(Debug, Parser)]
#[command(name = "textstore-bench")]
struct Args {
    /// Also measure one file per document and (built with the `peers` feature) LMDB, redb,
    /// fjall and SQLite.
    #[arg(long)]
    peers: bool,
    /// A directory of files or a .jsonl file to use instead of the synthetic corpus.
    #[arg(long, value_name = "DIR|FILE.jsonl")]
    corpus: Option<PathBuf>,
    /// Documents of the synthetic corpus, or the first N of a given corpus.
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
}

/// Documents of the synthetic corpus by default: about 65 MiB of text, which the standard
/// settings run through on 2 cores in about 2 minutes with every peer.
const DEFAULT_DOCS: usize = 20_000;

fn main() -> ExitCode {
    let args = Args::parse();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("textstore-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> store_bench::Result<()> {
    let started = Instant::now();
    let corpus = match &args.corpus {
        Some(path) => {
            let mut corpus = Corpus::load(path)?;
            if let Some(docs) = args.docs {
                corpus.truncate(docs);
            }
            corpus
        }
        None => Corpus::synthetic(args.docs.unwrap_or(DEFAULT_DOCS), args.seed),
    };
    eprintln!(
        "textstore-bench: {} documents, {:.1} MiB of text ({:.1}s to load)",
        corpus.len(),
        corpus.text_bytes() as f64 / f64::from(1 << 20),
        started.elapsed().as_secs_f64()
    );
    let (settings, limits) = if args.quick {
        (
            Settings::smoke(args.seed),
            LimitSettings {
                seq_write_bytes: 4 << 20,
                fdatasync_time: Duration::from_millis(20),
                fdatasync_max: 5,
                memcpy_rounds: 1,
            },
        )
    } else {
        (
            Settings::standard(args.seed),
            LimitSettings {
                seq_write_bytes: 256 << 20,
                fdatasync_time: Duration::from_secs(2),
                fdatasync_max: 2000,
                memcpy_rounds: 20,
            },
        )
    };
    let scratch = args.out.join("scratch");
    let options = RunOptions {
        engines: if args.peers {
            EngineSet::Peers
        } else {
            EngineSet::Bounds
        },
        settings,
        limits,
        scratch: scratch.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let report = run(&corpus, &options, &mut print_step(started))?;
    std::fs::remove_dir_all(&scratch).map_err(store_bench::Error::io(&scratch))?;

    let markdown = args.out.join("report.md");
    let json = args.out.join("report.json");
    let chart = args.out.join("ratios.svg");
    std::fs::write(&markdown, report.to_markdown()).map_err(store_bench::Error::io(&markdown))?;
    let encoded = serde_json::to_string_pretty(&report).expect("a report always encodes");
    std::fs::write(&json, &encoded).map_err(store_bench::Error::io(&json))?;
    write_ratio_chart(&report, &chart)?;
    if args.json {
        println!("{encoded}");
    } else {
        print!("{}", report.to_text());
    }
    eprintln!(
        "textstore-bench: took {:.0}s; wrote {}, {} and {}",
        started.elapsed().as_secs_f64(),
        markdown.display(),
        json.display(),
        chart.display()
    );
    Ok(())
}
