//! `textstore-torture`: kills a writing child process again and again and checks the store
//! after every kill. `cargo xtask torture --cycles N` runs it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use store_torture::{Config, Error, Report};

#[derive(Parser)]
#[command(about = "Crash-tests a textstore store with SIGKILL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs kill-and-check cycles.
    Run {
        /// Kill-and-check cycles.
        #[arg(long, default_value_t = 1000)]
        cycles: u32,
        /// Seeds the kill moments and the operations.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Longest time from a child's start to its kill, in milliseconds.
        #[arg(long, default_value_t = 60)]
        max_kill_delay_ms: u64,
        /// Where the store and logs go; it must not exist. Default: a new directory under
        /// the system's temporary directory, removed after a successful run.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A reader: reads the store read-only beside the writing children until `stop`
    /// exists, then prints what it did.
    #[command(hide = true)]
    Reader {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        stop: PathBuf,
    },
    /// The child: writes to the store until it is killed.
    #[command(hide = true)]
    Child {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        cycle: u32,
        #[arg(long)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Child {
            store,
            log,
            cycle,
            seed,
        } => store_torture::child::run(&store, &log, cycle, seed).map(drop),
        Command::Reader { store, stop } => {
            store_torture::reader::run(&store, &stop).map(|report| println!("{report}"))
        }
        Command::Run {
            cycles,
            seed,
            max_kill_delay_ms,
            dir,
        } => run(cycles, seed, max_kill_delay_ms, dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("textstore-torture: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cycles: u32, seed: u64, max_kill_delay_ms: u64, dir: Option<PathBuf>) -> Result<(), Error> {
    let (dir, remove) = match dir {
        Some(dir) => (dir, false),
        None => (
            std::env::temp_dir().join(format!("textstore-torture-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir(&dir).map_err(|err| Error::io("create", &dir, err))?;
    let child = std::env::current_exe()
        .map_err(|err| Error::io("find the path of", Path::new("textstore-torture"), err))?;
    let config = Config {
        dir: dir.clone(),
        cycles,
        seed,
        child,
        max_kill_delay: Duration::from_millis(max_kill_delay_ms),
    };
    println!(
        "torture: {cycles} cycles, seed {seed}, kills up to {max_kill_delay_ms} ms after start, in {}",
        dir.display()
    );
    let report = store_torture::run(&config, |report| {
        if report.cycles % 100 == 0 {
            println!("  {}", summary(report));
        }
    })?;
    println!("torture passed: {}", summary(&report));
    if remove {
        std::fs::remove_dir_all(&dir).map_err(|err| Error::io("remove", &dir, err))?;
    }
    Ok(())
}

fn summary(r: &Report) -> String {
    format!(
        "{} cycles, acknowledged {} puts, {} deletes, {} batches; {} documents checked, 0 lost, 0 corrupt; {} unacknowledged writes found committed; {} torn tails cut; {} compactions cut short; {} kills left replaced segments; {} records replayed; {} journal frames taken; {} verify passes; {} change feeds followed across a kill, {} refused after a compaction; {} index pages damaged, {} rebuilt by the child",
        r.cycles,
        r.acked_puts,
        r.acked_deletes,
        r.acked_batches,
        r.docs_checked,
        r.unacked_found,
        r.torn_tails_cut,
        r.compactions_cut_short,
        r.retired_segments_left,
        r.records_replayed,
        r.journal_frames,
        r.verify_passes,
        r.feeds_followed,
        r.feeds_refused,
        r.index_pages_damaged,
        r.index_rebuilt_by_child
    )
}
