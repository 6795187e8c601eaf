//! store-bench at its boundary: corpora, key choosers, every engine through the runner,
//! the report and its chart.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use store_bench::corpus::{SYNTHETIC_MAX_BYTES, SYNTHETIC_MIN_BYTES, rewritten};
use store_bench::engines::{FilePerDoc, MemoryMap, Textstore};
use store_bench::plan::Plan;
use store_bench::report::{
    BATCH_FDATASYNC_LIMIT, BATCH_PREALLOCATED_LIMIT, GROUPED_FDATASYNC_LIMIT, Row, SEQ_WRITE_LIMIT,
    SUBJECT, TEXTS_WRITE_LIMIT, WRITTEN_FDATASYNC_LIMIT, ZEROED_AHEAD_FDATASYNC_LIMIT,
};
use store_bench::{
    Corpus, Engine, EngineSet, Error, KeyChooser, LimitSettings, Reader, RunOptions, Settings,
    Workload, run, write_ratio_chart,
};
use store_mmap::DocId;

#[test]
fn synthetic_corpus_is_deterministic_and_shaped_as_specified() {
    let corpus = Corpus::synthetic(4000, 11);
    let again = Corpus::synthetic(4000, 11);
    assert_eq!(corpus.docs(), again.docs());
    assert_ne!(corpus.docs(), Corpus::synthetic(4000, 12).docs());
    let median = corpus.median_bytes();
    assert!(
        (1800..=2300).contains(&median),
        "median {median} B is not about 2 KiB"
    );
    for doc in corpus.docs() {
        let len = doc.text.len();
        // A text ends on a char boundary, up to 3 bytes short of its drawn size.
        assert!(
            len + 3 >= SYNTHETIC_MIN_BYTES && len <= SYNTHETIC_MAX_BYTES,
            "{len}"
        );
    }
    let multibyte = corpus
        .docs()
        .iter()
        .filter(|doc| !doc.text.is_ascii())
        .count();
    assert!(
        multibyte > 3900,
        "only {multibyte} documents have multi-byte UTF-8"
    );
    assert!(corpus.docs().iter().any(|doc| doc.text.contains('\n')));
    let ids: std::collections::HashSet<DocId> = corpus.docs().iter().map(|doc| doc.id).collect();
    assert_eq!(ids.len(), corpus.len());
}

#[test]
fn rewritten_text_keeps_its_length_and_changes() {
    for text in ["abc def", "東京 café naïve", "x"] {
        let new = rewritten(text);
        assert_eq!(new.len(), text.len());
        if text.len() > 1 {
            assert_ne!(new, text);
        }
    }
}

#[test]
fn corpus_from_a_directory_and_from_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    std::fs::write(dir.path().join("sub/b.md"), "beta ü").unwrap();
    std::fs::write(dir.path().join("image.bin"), [0xff, 0xfe, 0x00]).unwrap();
    let corpus = Corpus::load(dir.path()).unwrap();
    assert_eq!(corpus.len(), 2);
    assert_eq!(corpus.docs()[0].id, DocId::from_key("a.txt"));
    assert_eq!(corpus.docs()[1].id, DocId::from_key("sub/b.md"));
    assert_eq!(corpus.docs()[1].text, "beta ü");
    assert!(
        corpus.description().contains("1 other files skipped"),
        "{}",
        corpus.description()
    );

    let path = dir.path().join("docs.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, r#"{{"id": 7, "text": "seven"}}"#).unwrap();
    writeln!(file).unwrap();
    writeln!(
        file,
        r#"{{"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "text": "ulid"}}"#
    )
    .unwrap();
    writeln!(file, r#"{{"text": "no id"}}"#).unwrap();
    drop(file);
    let corpus = Corpus::load(&path).unwrap();
    let texts: Vec<&str> = corpus.docs().iter().map(|doc| doc.text.as_str()).collect();
    assert_eq!(texts, ["seven", "ulid", "no id"]);
    assert_eq!(corpus.docs()[0].id, DocId::from(7u64));
    assert_eq!(corpus.docs()[2].id, DocId::from_key("line 4"));
}

/// A part of a large tree takes every n-th file in name order, so that it holds some of
/// each directory; a tree no larger than the part asked for is taken whole. `truncate`
/// keeps the first documents.
#[test]
fn a_spread_corpus_takes_every_nth_file_and_a_small_tree_whole() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..10 {
        std::fs::write(dir.path().join(format!("{i:02}.txt")), format!("file {i}")).unwrap();
    }
    let texts = |corpus: &Corpus| -> Vec<String> {
        corpus.docs().iter().map(|doc| doc.text.clone()).collect()
    };
    let spread = Corpus::from_dir_spread(dir.path(), 4).unwrap();
    assert_eq!(texts(&spread), ["file 0", "file 2", "file 5", "file 7"]);
    assert!(
        spread
            .description()
            .contains("every 2.50th of its 10 files"),
        "{}",
        spread.description()
    );
    for asked in [10, 11] {
        let whole = Corpus::from_dir_spread(dir.path(), asked).unwrap();
        assert_eq!(texts(&whole), texts(&Corpus::from_dir(dir.path()).unwrap()));
        assert_eq!(whole.len(), 10);
    }
    let mut first = Corpus::from_dir(dir.path()).unwrap();
    assert!(!first.is_empty());
    first.truncate(3);
    assert_eq!(texts(&first), ["file 0", "file 1", "file 2"]);
    first.truncate(0);
    assert!(first.is_empty());
}

#[test]
fn bad_corpora_are_errors_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"text\": \"fine\"}\n{\"id\": -1, \"text\": \"x\"}\n",
    )
    .unwrap();
    let err = Corpus::load(&path).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::Corpus { line: Some(2), .. }),
        "{message}"
    );
    assert!(
        message.contains("bad.jsonl line 2") && message.contains("-1"),
        "{message}"
    );

    std::fs::write(&path, "{\"text\": \"fine\"}\nnot json\n").unwrap();
    let message = Corpus::load(&path).unwrap_err().to_string();
    assert!(
        message.contains("line 2") && message.contains("expected"),
        "{message}"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let message = Corpus::load(&empty).unwrap_err().to_string();
    assert!(message.contains("no UTF-8 file"), "{message}");

    let missing = dir.path().join("missing.jsonl");
    let message = Corpus::load(&missing).unwrap_err().to_string();
    assert!(message.contains("missing.jsonl"), "{message}");
}

#[test]
fn key_choosers_have_their_shapes() {
    let docs = 1000;
    let count = 100_000;
    let histogram = |chooser: KeyChooser| {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for index in chooser.indices(docs, count, 5) {
            assert!((index as usize) < docs);
            *counts.entry(index).or_default() += 1;
        }
        let mut counts: Vec<usize> = counts.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts
    };
    let uniform = histogram(KeyChooser::Uniform);
    assert_eq!(uniform.len(), docs);
    assert!(
        uniform[0] < 2 * count / docs,
        "uniform's most chosen: {}",
        uniform[0]
    );
    let zipf = histogram(KeyChooser::Zipf { exponent: 0.99 });
    // Under zipf(0.99) over 1000 documents the most popular takes about 13% of the choices.
    assert!(zipf[0] > count / 12, "zipf's most chosen: {}", zipf[0]);
    assert!(
        zipf[0] > 5 * zipf[9],
        "zipf is not skewed: {:?}",
        &zipf[..10]
    );
    let sequential = KeyChooser::Sequential.indices(3, 7, 0);
    assert_eq!(sequential, [0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(
        KeyChooser::Uniform.indices(docs, 50, 9),
        KeyChooser::Uniform.indices(docs, 50, 9)
    );
    assert_eq!(
        KeyChooser::Zipf { exponent: 0.99 }.to_string(),
        "zipf(0.99)"
    );
}

/// Writes, overwrites, reads and extracts through `E`, closes and reopens it, and checks
/// every text against what was written. `durability` is the words its settings, which the
/// report shows beside its figures, use for what makes a commit durable; `compacts`,
/// whether it has a compaction for the space workloads to measure.
fn check_engine<E: Engine>(durability: &str, compacts: bool) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::synthetic(300, 3);
    let mut engine = E::create(dir.path()).unwrap();
    assert!(
        engine.settings().contains(durability),
        "{}: {}",
        E::NAME,
        engine.settings()
    );
    engine.ingest(&corpus.docs()[..200]).unwrap();
    let rest: Vec<(DocId, &str)> = corpus.docs()[200..]
        .iter()
        .map(|d| (d.id, d.text.as_str()))
        .collect();
    engine.put_batch(&rest).unwrap();
    let first = &corpus.docs()[0];
    let second_version = rewritten(&first.text);
    engine.put(first.id, &second_version).unwrap();
    let expected = |i: usize| {
        if i == 0 {
            second_version.as_str()
        } else {
            corpus.docs()[i].text.as_str()
        }
    };
    let check = |engine: &E| {
        let mut reader = engine.reader().unwrap();
        for (i, doc) in corpus.docs().iter().enumerate() {
            let text = reader.read(doc.id, |bytes| bytes.to_vec()).unwrap();
            assert_eq!(
                text.as_deref(),
                Some(expected(i).as_bytes()),
                "{} document {i}",
                E::NAME
            );
            let end = expected(i).floor_char_boundary(40);
            let part = reader.extract(doc.id, 0..end, str::to_owned).unwrap();
            assert_eq!(part.as_deref(), Some(&expected(i)[..end]), "{}", E::NAME);
        }
        assert_eq!(
            reader.read(DocId::from(u64::MAX), |b| b.len()).unwrap(),
            None
        );
    };
    check(&engine);
    if E::PERSISTENT {
        engine.close().unwrap();
        engine = E::open(dir.path()).unwrap();
        check(&engine);
    } else {
        assert!(E::open(dir.path()).is_err(), "{} keeps no files", E::NAME);
    }
    assert_eq!(engine.compact().unwrap(), compacts, "{}", E::NAME);
    check(&engine);
    engine.close().unwrap();
}

#[test]
fn textstore_engine_reads_back_what_it_wrote() {
    check_engine::<Textstore>("fdatasync per commit", true);
}

#[test]
fn hashmap_engine_reads_back_what_it_wrote() {
    check_engine::<MemoryMap>("no durability", false);
}

#[test]
fn file_per_doc_engine_reads_back_what_it_wrote() {
    check_engine::<FilePerDoc>("fdatasync of the file and fsync of its directory", false);
}

/// One file per document keeps its files under at most 1024 directories, named by the last
/// two characters of the id; a file it cannot read is an error naming it, not a missing
/// document.
#[test]
fn file_per_doc_spreads_its_files_and_names_a_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::synthetic(2000, 5);
    let engine = FilePerDoc::create(dir.path()).unwrap();
    engine.ingest(corpus.docs()).unwrap();
    let mut files = 0;
    let mut dirs = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert_eq!(name.len(), 2, "{name}");
        assert!(entry.file_type().unwrap().is_dir(), "{name}");
        dirs += 1;
        for file in std::fs::read_dir(entry.path()).unwrap() {
            let file = file.unwrap().file_name().into_string().unwrap();
            assert!(file.ends_with(&name), "{file} in {name}");
            files += 1;
        }
    }
    assert_eq!(files, 2000);
    assert!(dirs > 500 && dirs <= 1024, "{dirs} directories");
    // The directory of a document made a file: its file cannot be opened (not a directory).
    let id = corpus.docs()[0].id.to_string();
    let parent = dir.path().join(&id[id.len() - 2..]);
    std::fs::remove_dir_all(&parent).unwrap();
    std::fs::write(&parent, "").unwrap();
    let mut reader = engine.reader().unwrap();
    let err = reader
        .read(corpus.docs()[0].id, |bytes| bytes.len())
        .unwrap_err();
    assert!(err.to_string().contains(&id), "{err}");
}

#[cfg(feature = "peers")]
mod peers {
    use super::check_engine;
    use store_bench::engines::{Fjall, Lmdb, Redb, Sqlite};

    #[test]
    fn lmdb_reads_back_what_it_wrote() {
        check_engine::<Lmdb>("syncs every commit with fdatasync", false);
    }

    #[test]
    fn redb_reads_back_what_it_wrote() {
        check_engine::<Redb>("Durability::Immediate", true);
    }

    #[test]
    fn fjall_reads_back_what_it_wrote() {
        check_engine::<Fjall>("PersistMode::SyncData", true);
    }

    #[test]
    fn sqlite_reads_back_what_it_wrote() {
        check_engine::<Sqlite>("synchronous = FULL", true);
    }
}

fn smoke_options(dir: &std::path::Path, engines: EngineSet) -> RunOptions {
    RunOptions {
        engines,
        settings: Settings {
            // Two, so that every engine ingests again into a new store, and reads and
            // writes in rounds.
            ingest_rounds: 2,
            rounds: 2,
            ..Settings::smoke(1)
        },
        limits: LimitSettings {
            seq_write_bytes: 1 << 20,
            seq_write_rounds: 1,
            fdatasync_time: Duration::from_millis(10),
            fdatasync_max: 3,
            grouped_writes_per_thread: 3,
            memcpy_rounds: 1,
        },
        scratch: dir.join("scratch"),
        command: "test".to_owned(),
    }
}

#[test]
fn a_run_measures_every_workload_on_every_engine_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::synthetic(400, 2);
    let engines = if cfg!(feature = "peers") {
        EngineSet::Peers
    } else {
        EngineSet::Bounds
    };
    let options = smoke_options(dir.path(), engines);
    let mut steps = Vec::new();
    let report = run(&corpus, &options, &mut |step| {
        steps.push((step.done, step.total));
    })
    .unwrap();
    let names: Vec<&str> = report.engines.iter().map(|e| e.engine).collect();
    let expected: &[&str] = if cfg!(feature = "peers") {
        &[
            "textstore",
            "HashMap",
            "file per doc",
            "LMDB (heed)",
            "redb",
            "fjall",
            "SQLite",
        ]
    } else {
        &["textstore", "HashMap"]
    };
    assert_eq!(names, expected);
    let engine_count = report.engines.len();
    let turns: usize = Workload::ALL
        .into_iter()
        .map(|w| if w.in_rounds() { 2 } else { 1 })
        .sum();
    // Each step says how many came before it, out of all of them.
    let total = 1 + engine_count * turns;
    let expected_steps: Vec<(usize, usize)> = (0..total).map(|done| (done, total)).collect();
    assert_eq!(steps, expected_steps);
    // Every engine's reads and durable writes report their median round beside both
    // rounds' figures, and so do the flush limits, measured in each round of the writes
    // they bound.
    for result in report.results.iter().filter(|r| r.workload.in_rounds()) {
        // The engines without a steady state have no figure there.
        let without_steady_state = |row: &Row| {
            result.workload == Workload::BatchedPutSteady
                && ["HashMap", "file per doc"].contains(&row.name.as_str())
        };
        for row in result.rows.iter().filter(|row| without_steady_state(row)) {
            assert!(row.figure.is_none(), "{} on {}", row.name, result.title);
        }
        // The other engines reach the steady state by rewriting at least what the settings
        // ask (1 MiB in the smoke run; in commits of 1,000 documents, about 3 MiB of this
        // corpus), once, before both rounds.
        if result.workload == Workload::BatchedPutSteady {
            for row in result
                .rows
                .iter()
                .filter(|row| !row.limit && !without_steady_state(row))
            {
                let note = row.figure.as_ref().unwrap().note.as_deref().unwrap();
                let mib: f64 = note
                    .split_once("after rewriting ")
                    .and_then(|(_, rest)| rest.split_once(" MiB"))
                    .and_then(|(mib, _)| mib.parse().ok())
                    .unwrap_or_else(|| panic!("{}: {note}", row.name));
                assert!((1.0..8.0).contains(&mib), "{}: {note}", row.name);
            }
        }
        let measured_in_rounds = |row: &&Row| {
            (!row.limit && !without_steady_state(row))
                || [
                    WRITTEN_FDATASYNC_LIMIT,
                    ZEROED_AHEAD_FDATASYNC_LIMIT,
                    BATCH_FDATASYNC_LIMIT,
                    BATCH_PREALLOCATED_LIMIT,
                    GROUPED_FDATASYNC_LIMIT,
                ]
                .contains(&row.name.as_str())
        };
        for row in result.rows.iter().filter(measured_in_rounds) {
            let note = row.figure.as_ref().and_then(|f| f.note.as_deref());
            assert!(
                note.is_some_and(|note| note.contains("median of 2 rounds: ")),
                "{} on {}: {note:?}",
                row.name,
                result.title
            );
        }
    }
    for (rounds, median) in [
        (
            &report.limits.flush_rounds,
            report.limits.flushes.map(|f| f.written.per_sec),
        ),
        (
            &report.limits.zeroed_ahead_rounds,
            report.limits.zeroed_ahead.map(|z| z.per_sec),
        ),
        (
            &report.limits.batch_flush_rounds,
            report.limits.batch_flushes.map(|b| b.per_sec),
        ),
        (
            &report.limits.batch_preallocated_rounds,
            report.limits.batch_preallocated.map(|b| b.per_sec),
        ),
        (
            &report.limits.grouped_flush_rounds,
            report.limits.grouped_flushes.map(|g| g.per_sec),
        ),
    ] {
        assert_eq!(rounds.len(), 2, "{rounds:?}");
        // Of two rounds, the lower is the median.
        assert_eq!(median, Some(rounds[0].min(rounds[1])), "{rounds:?}");
    }
    // The flush limits of the durable puts write what they write, and the single puts'
    // goal reports the zeroed-ahead limit beside the written-space one.
    let plan = Plan::new(&corpus, options.settings);
    let texts = plan.put_texts(3);
    let zeroed_ahead = report
        .limits
        .zeroed_ahead
        .expect("measured before the durable puts");
    assert_eq!(
        zeroed_ahead.mean_bytes,
        texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 3.0
    );
    let written_goal = report
        .goals
        .iter()
        .find(|g| g.reference.as_deref() == Some(WRITTEN_FDATASYNC_LIMIT))
        .expect("the single puts' goal");
    assert_eq!(
        written_goal.bound.as_ref().map(|b| b.ratio),
        Some(zeroed_ahead.per_sec / report.limits.flushes.unwrap().written.per_sec)
    );
    // The ingest's goal against the sequential write reports the corpus's texts written
    // alone beside it, a row of the ingest's.
    let limits = &report.limits;
    assert!(limits.texts_write_bytes_per_sec > 0.0, "{limits:?}");
    let ingest = report
        .results
        .iter()
        .find(|r| r.workload == Workload::BulkIngest)
        .unwrap();
    let per_doc = corpus.text_bytes() as f64 / corpus.len() as f64;
    assert_eq!(
        ingest.value(TEXTS_WRITE_LIMIT),
        Some(limits.texts_write_bytes_per_sec / per_doc)
    );
    let ingest_goal = report
        .goals
        .iter()
        .find(|g| g.reference.as_deref() == Some(SEQ_WRITE_LIMIT))
        .expect("the ingest's goal against the sequential write");
    let expected = limits.texts_write_bytes_per_sec / limits.seq_write_bytes_per_sec;
    let bound = ingest_goal.bound.as_ref().expect("the texts' bound").ratio;
    assert!(
        (bound - expected).abs() <= 1e-9 * expected,
        "{bound} against {expected}"
    );
    assert_eq!(
        report
            .limits
            .flushes
            .expect("measured before the durable puts")
            .written
            .mean_bytes,
        texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 3.0
    );
    // The grouped limit writes from as many threads as the puts from threads, and is a row
    // of theirs only.
    let grouped = report
        .limits
        .grouped_flushes
        .expect("measured before the durable puts from threads");
    assert_eq!(grouped.threads, store_bench::workload::PUT_THREADS);
    let threads = report
        .results
        .iter()
        .find(|r| r.workload == Workload::DurablePutThreads)
        .unwrap();
    assert_eq!(
        threads.value(GROUPED_FDATASYNC_LIMIT),
        Some(grouped.per_sec)
    );
    let one = report
        .results
        .iter()
        .find(|r| r.workload == Workload::DurablePut)
        .unwrap();
    assert_eq!(one.value(GROUPED_FDATASYNC_LIMIT), None);
    // Group commit's goal reports what the disk's grouped flushes give beside it.
    let goal = report
        .goals
        .iter()
        .find(|g| g.workload == Workload::DurablePutThreads)
        .expect("group commit's goal");
    assert_eq!(
        goal.bound.as_ref().map(|b| b.ratio),
        Some(grouped.per_sec / report.limits.flushes.unwrap().written.per_sec)
    );
    // So does the batched puts' limit.
    let batch_sizes: Vec<usize> = plan
        .batch_texts(options.settings.batch_max)
        .iter()
        .map(|batch| batch.iter().map(|t| t.len()).sum())
        .collect();
    assert_eq!(
        report
            .limits
            .batch_flushes
            .expect("measured before the batched puts")
            .mean_bytes,
        batch_sizes.iter().sum::<usize>() as f64 / batch_sizes.len() as f64
    );
    let batched = report
        .results
        .iter()
        .find(|r| r.workload == Workload::BatchedPut)
        .unwrap();
    let limit = batched
        .rows
        .iter()
        .find(|row| row.name == BATCH_FDATASYNC_LIMIT)
        .expect("the batched puts' limit row");
    assert_eq!(
        limit.figure.as_ref().unwrap().value,
        report.limits.batch_flushes.unwrap().per_sec * options.settings.batch_docs as f64
    );
    // Its note gives each round in documents a second too.
    let rounds: Vec<String> = report
        .limits
        .batch_flush_rounds
        .iter()
        .map(|batches| format!("{:.0}", batches * options.settings.batch_docs as f64))
        .collect();
    assert_eq!(
        limit.figure.as_ref().unwrap().note,
        Some(format!("median of 2 rounds: {}", rounds.join(", ")))
    );
    // The gets that copy have the memory copy of a mean-sized text beside them.
    for workload in [Workload::GetUniformCopy, Workload::GetZipfCopy] {
        let result = report
            .results
            .iter()
            .find(|r| r.workload == workload)
            .unwrap();
        assert_eq!(
            result.value("limit: memory copy of a mean-sized text"),
            Some(report.limits.memcpy_bytes_per_sec / per_doc),
            "{}",
            result.title
        );
    }
    // And the same batches into preallocated space, the batched goal's bound (which the
    // smoke run, without peers, has no goal for).
    let preallocated = report
        .limits
        .batch_preallocated
        .expect("measured before the batched puts");
    assert_eq!(
        preallocated.mean_bytes,
        batch_sizes.iter().sum::<usize>() as f64 / batch_sizes.len() as f64
    );
    assert_eq!(
        batched.value(BATCH_PREALLOCATED_LIMIT),
        Some(preallocated.per_sec * options.settings.batch_docs as f64)
    );
    assert_eq!(report.results.len(), Workload::ALL.len());
    // Every engine's ingest reports its fastest round beside every round's rate.
    let ingest = report
        .results
        .iter()
        .find(|r| r.workload == Workload::BulkIngest)
        .unwrap();
    for row in ingest.rows.iter().filter(|row| !row.limit) {
        let note = row.figure.as_ref().unwrap().note.as_deref().unwrap();
        let (fastest, rounds) = note
            .split_once(" MiB/s of text; fastest of 2 rounds, MiB/s: ")
            .unwrap_or_else(|| panic!("{}: {note}", row.name));
        let rounds: Vec<f64> = rounds.split(", ").map(|r| r.parse().unwrap()).collect();
        assert_eq!(rounds.len(), 2, "{}: {note}", row.name);
        let best = rounds.iter().copied().fold(0.0, f64::max);
        assert_eq!(
            fastest.parse::<f64>().unwrap(),
            best,
            "{}: {note}",
            row.name
        );
    }
    for result in &report.results {
        assert_eq!(result.rows[0].name, SUBJECT);
        let figure = result.rows[0]
            .figure
            .as_ref()
            .expect("textstore runs every workload");
        assert!(
            figure.value.is_finite() && figure.value > 0.0,
            "{}: {}",
            result.title,
            figure.value
        );
        let hashmap = result
            .rows
            .iter()
            .find(|row| row.name == "HashMap")
            .unwrap();
        // The persistent engines' workloads, and the steady state, which the in-memory
        // bound has not.
        let without_hashmap = matches!(
            result.workload,
            Workload::ReopenFirstGet
                | Workload::SpaceFresh
                | Workload::SpaceOverwritten
                | Workload::SpaceCompacted
                | Workload::BatchedPutSteady
        );
        assert_eq!(
            hashmap.figure.is_none(),
            without_hashmap,
            "{}",
            result.title
        );
        if let Some(ratio) = result.ratio(hashmap) {
            assert!(ratio.is_finite() && ratio > 0.0);
        }
    }
    // Overwriting half of a fresh copy of the corpus leaves dead versions; compaction
    // removes them.
    // Each figure with its note (the bytes on disk), for the message of a failure.
    let space = |workload| {
        let row = &report
            .results
            .iter()
            .find(|r| r.workload == workload)
            .unwrap()
            .rows[0];
        let figure = row.figure.as_ref().unwrap();
        (figure.value, figure.note.clone())
    };
    let (fresh, overwritten, compacted) = (
        space(Workload::SpaceFresh),
        space(Workload::SpaceOverwritten),
        space(Workload::SpaceCompacted),
    );
    assert!(overwritten.0 > fresh.0, "{overwritten:?} after {fresh:?}");
    assert!(
        compacted.0 < overwritten.0,
        "{compacted:?} after {overwritten:?}"
    );
    // The note gives the space once the engine is closed too, which textstore's close
    // changes by little either way.
    let closed: f64 = compacted
        .1
        .as_deref()
        .and_then(|note| note.split_once(" once closed"))
        .and_then(|(before, _)| before.rsplit_once("; "))
        .and_then(|(_, figure)| figure.parse().ok())
        .unwrap_or_else(|| panic!("{compacted:?}"));
    assert!(
        closed >= compacted.0 * 0.99 && closed < overwritten.0,
        "{closed} once closed, {compacted:?} after {overwritten:?}"
    );
    assert!(
        report
            .goals
            .iter()
            .any(|goal| goal.workload == Workload::SpaceFresh)
    );

    let text = report.to_text();
    let markdown = report.to_markdown();
    for result in &report.results {
        assert!(text.contains(result.title) && markdown.contains(result.title));
        // Each row's figure, latencies and ratio to textstore's, as the report's cells show
        // them.
        for row in &result.rows {
            let Some(figure) = row.figure.as_ref() else {
                continue;
            };
            let mut cells = vec![store_bench::report::format_value(figure.value)];
            if let Some(latency) = figure.latency {
                cells.push(format!("{:.2}", latency.p50_us));
                cells.push(format!("{:.2}", latency.p99_us));
            }
            if row.name != SUBJECT {
                cells.extend(result.ratio(row).map(|ratio| format!("{ratio:.2}×")));
            }
            for cell in cells {
                assert!(
                    text.contains(&cell) && markdown.contains(&cell),
                    "{}: {cell}",
                    result.title
                );
            }
        }
    }
    assert!(markdown.contains("## Goals") && markdown.contains("## Engine settings"));
    // Each engine's settings, as it gives them, are in the report and under its name.
    let dir_settings = tempfile::tempdir().unwrap();
    let own = Textstore::create(dir_settings.path()).unwrap().settings();
    let textstore = report.engines.iter().find(|e| e.engine == "textstore");
    assert_eq!(textstore.map(|e| e.settings.as_str()), Some(own.as_str()));
    for engine in &report.engines {
        assert!(!engine.settings.is_empty(), "{}", engine.engine);
        assert!(
            markdown.contains(&format!("- **{}**: {}", engine.engine, engine.settings)),
            "{}",
            engine.engine
        );
    }
    // The file system's free space at the start, which a nearly full one makes matter.
    assert!(report.machine.available_bytes.is_some_and(|b| b > 0));
    assert!(
        markdown.contains("GiB available at the start"),
        "{markdown}"
    );
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert!(
        json["machine"]["available_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0)
    );
    assert_eq!(
        json["results"].as_array().unwrap().len(),
        Workload::ALL.len()
    );
    let chart = dir.path().join("ratios.svg");
    write_ratio_chart(&report, &chart).unwrap();
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("HashMap"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

/// The puts beside a compaction: both phases timed, the compaction paced as the engine's
/// own and writing its copies, the store removed after, and the text giving each phase and
/// the ratios.
#[test]
fn puts_beside_a_compaction_are_timed_against_the_same_puts_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::synthetic(2_000, 3);
    let figure = store_bench::compacting::puts_beside_compaction(
        dir.path(),
        &corpus,
        Duration::from_millis(20),
        Duration::ZERO,
    )
    .unwrap();
    assert!(
        figure.alone.count >= 1 && figure.beside.count >= 1,
        "{figure:?}"
    );
    assert!(figure.alone.p50_us > 0.0 && figure.beside.max_us >= figure.beside.p50_us);
    assert_eq!(figure.pace_bytes_per_sec, 128 << 20);
    // The first segment's documents that were not written again, copied.
    assert!(
        figure.bytes_out > 0 && figure.bytes_out < corpus.text_bytes(),
        "{figure:?}"
    );
    assert!(figure.compaction_secs > 0.0);
    // The puts alone run for as long as asked, and the puts beside for the whole compaction.
    assert!(figure.alone_secs >= 0.02, "{figure:?}");
    assert!(figure.beside_secs >= figure.compaction_secs, "{figure:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let text = store_bench::compacting::to_text(&figure);
    let line = |name: &str| {
        text.lines()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {text}"))
            .to_owned()
    };
    assert!(
        line("alone").contains(&figure.alone.count.to_string()),
        "{text}"
    );
    assert!(
        line("beside ").contains(&format!(
            "{}{:>10.2}",
            figure.beside.count, figure.beside_secs
        )),
        "{text}"
    );
    let ratio = figure.beside.p99_us / figure.alone.p99_us;
    assert!(
        line("beside / alone").contains(&format!("p99 {ratio:.2}×")),
        "{text}"
    );
}

/// The store's segments are half the corpus, whatever its size, so that a sealed one holds
/// the dead first versions: a corpus under 2 MiB is measured too.
#[test]
fn puts_beside_a_compaction_fit_a_small_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::synthetic(400, 3);
    assert!(corpus.text_bytes() < 2 << 20, "{}", corpus.text_bytes());
    let figure = store_bench::compacting::puts_beside_compaction(
        dir.path(),
        &corpus,
        Duration::from_millis(5),
        Duration::ZERO,
    )
    .unwrap();
    assert!(figure.bytes_out > 0, "{figure:?}");
}

#[cfg(not(feature = "peers"))]
#[test]
fn asking_for_peers_without_the_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::synthetic(10, 2);
    let err = run(
        &corpus,
        &smoke_options(dir.path(), EngineSet::Peers),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("--no-peers"), "{err}");
}

#[test]
fn ratios_point_towards_the_better_figure() {
    assert_eq!(Workload::GetUniform.ratio(200.0, 100.0), 2.0);
    assert_eq!(Workload::SpaceFresh.ratio(1.0, 2.0), 2.0);
    assert_eq!(Workload::ReopenFirstGet.ratio(4.0, 1.0), 0.25);
}

/// Runs the `textstore-bench` binary with `args`, for its quick form: each workload for a
/// few milliseconds.
fn textstore_bench(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_textstore-bench"))
        .args(args)
        .output()
        .unwrap()
}

/// Checks that `stdout` holds each of `sections`, in that order.
fn assert_sections_in_order(stdout: &str, sections: &[&str]) {
    let at: Vec<usize> = sections
        .iter()
        .map(|section| {
            stdout
                .find(section)
                .unwrap_or_else(|| panic!("no {section:?} in {stdout}"))
        })
        .collect();
    assert!(at.is_sorted(), "{stdout}");
}

/// The names of the entries of `dir`, sorted.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The binary end to end, as `cargo xtask bench` runs it but in its quick form and
/// without the opening's part: both corpora, each part printed in order, each corpus's
/// report written where it says, and no scratch left.
#[test]
fn the_binary_measures_both_corpora_and_leaves_their_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = textstore_bench(&[
        "--quick".as_ref(),
        "--no-peers".as_ref(),
        "--no-open".as_ref(),
        "--docs".as_ref(),
        "150".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stdout = String::from_utf8(run.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_sections_in_order(
        &stdout,
        &[
            "== corpus: synthetic\n",
            "== corpus: rust-docs\n",
            "== disk\n",
        ],
    );
    assert!(!stdout.contains("== opening"), "{stdout}");
    assert_eq!(entries(&out), ["rust-docs", "synthetic"]);
    for corpus in ["synthetic", "rust-docs"] {
        assert_eq!(
            entries(&out.join(corpus)),
            ["ratios.svg", "report.json", "report.md"]
        );
        let json = std::fs::read_to_string(out.join(corpus).join("report.json")).unwrap();
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        // The Rust docs' corpus takes every n-th file and skips those that are not UTF-8.
        let docs = report["corpus"]["docs"].as_u64().unwrap();
        assert!(
            docs == 150 || (corpus == "rust-docs" && (100..150).contains(&docs)),
            "{corpus}: {docs}"
        );
        let seq_write = report["limits"]["seq_write_bytes_per_sec"]
            .as_f64()
            .unwrap();
        assert!(seq_write > 0.0, "{corpus}: {seq_write}");
    }
    assert!(stderr.contains("reports in"), "{stderr}");
}

/// The binary measures what it is asked to: a corpus of its own, cut to `--docs`, without
/// the opening's part, as JSON on stdout; the opening's part alone (which starts the binary
/// again as writer processes), each part printed in order and written where it says; and a
/// corpus it cannot read is a failure that names it.
#[test]
fn the_binary_measures_what_it_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for i in 0..30 {
        std::fs::write(files.join(format!("{i}.txt")), format!("document {i}\n")).unwrap();
    }
    let out = dir.path().join("corpus-out");
    let run = textstore_bench(&[
        "--quick".as_ref(),
        "--no-peers".as_ref(),
        "--no-open".as_ref(),
        "--json".as_ref(),
        "--corpus".as_ref(),
        files.as_os_str(),
        "--docs".as_ref(),
        "20".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["corpus"], "corpus");
    assert_eq!(reports[0]["report"]["corpus"]["docs"], 20);
    assert_eq!(entries(&out), ["corpus"]);

    let out = dir.path().join("open-out");
    let run = textstore_bench(&[
        "--quick".as_ref(),
        "--no-peers".as_ref(),
        "--only-open".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!stdout.contains("== corpus"), "{stdout}");
    assert_sections_in_order(
        &stdout,
        &[
            "== opening and processes\n",
            "== beside a compaction\n",
            "== disk\n",
        ],
    );
    assert_eq!(entries(&out), ["compacting.txt", "opening.txt"]);
    for (file, section) in [
        ("opening.txt", "== opening and processes\n"),
        ("compacting.txt", "== beside a compaction\n"),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            stdout.contains(&format!("{section}{text}")),
            "{file}: {text}"
        );
    }
    let opening = std::fs::read_to_string(out.join("opening.txt")).unwrap();
    for line in [
        "reopen + first get",
        "reopen after SIGKILL of a writer",
        "a reader process while a writer process commits",
        "commit submitted -> visible",
    ] {
        assert!(opening.contains(line), "no {line:?} in {opening}");
    }
    assert!(!opening.contains("LMDB"), "--no-peers: {opening}");
    let compacting = std::fs::read_to_string(out.join("compacting.txt")).unwrap();
    assert!(
        compacting.starts_with("durable puts beside a compaction"),
        "{compacting}"
    );

    let missing = dir.path().join("no-such-corpus");
    let run = textstore_bench(&[
        "--quick".as_ref(),
        "--no-open".as_ref(),
        "--corpus".as_ref(),
        missing.as_os_str(),
        "--out".as_ref(),
        dir.path().join("missing-out").as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.starts_with("textstore-bench: ") && stderr.contains("no-such-corpus"),
        "{stderr}"
    );
}

/// The reopens after a killed writer process: the clean reopen, then one round per kill,
/// each after the writer ran its share of the time, each finding what that writer
/// committed; the store removed after.
#[test]
fn a_killed_writer_process_leaves_a_store_that_reopens_with_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_textstore-bench"));
    let kill = store_bench::opening::kill_reopen(dir.path(), 2_000, exe, 0.2).unwrap();
    assert_eq!(kill.docs, 2_000);
    // Milliseconds: a store of 2,000 documents opens in well under a second, after a kill
    // too, and in more than a microsecond.
    let ms = 0.001..1_000.0;
    assert!(ms.contains(&kill.clean_ms), "{kill:?}");
    let after: Vec<f64> = kill.rounds.iter().map(|round| round.after_secs).collect();
    assert_eq!(after, [0.2, 0.8, 1.6]);
    for round in &kill.rounds {
        assert!(ms.contains(&round.ms), "{round:?}");
        assert!(round.writer_commits > 0, "{round:?}");
        // Each commit puts one document: the journal holds at most the round's commits.
        assert!(
            round.journal_frames <= round.journal_changes
                && round.journal_changes <= round.writer_commits,
            "{round:?}"
        );
    }
    assert!(
        kill.rounds.iter().any(|round| round.journal_changes > 0),
        "{kill:?}"
    );
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

/// The reads across processes: a reader in the writer's process and one in this process,
/// each counting gets and seeing the writer's commits, the writer's commits timed.
#[test]
fn readers_in_and_beside_a_writer_process_read_and_see_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_textstore-bench"));
    let reads = store_bench::opening::process_reads(dir.path(), exe, 0.1).unwrap();
    for figure in [
        reads.inside_gets_per_sec,
        reads.outside_gets_per_sec,
        reads.gets_ratio,
        reads.inside_visible_us,
        reads.outside_visible_us,
        reads.commit_us,
    ] {
        assert!(figure.is_finite() && figure > 0.0, "{reads:?}");
    }
    // A reader makes tens of thousands of gets a second, even in a debug build: a count
    // over a tenth of a second not divided by it would be a few hundred. The ratio is the
    // median of the rounds' own, near the ratio of the medians.
    assert!(reads.inside_gets_per_sec > 2_000.0, "{reads:?}");
    assert!(reads.outside_gets_per_sec > 2_000.0, "{reads:?}");
    // Microseconds: a commit and its sight in another thread or process take more than
    // one and less than a second.
    for us in [
        reads.inside_visible_us,
        reads.outside_visible_us,
        reads.commit_us,
    ] {
        assert!((1.0..1e6).contains(&us), "{reads:?}");
    }
    let of_medians = reads.outside_gets_per_sec / reads.inside_gets_per_sec;
    assert!(
        (of_medians / 4.0..of_medians * 4.0).contains(&reads.gets_ratio),
        "{reads:?}"
    );
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}
