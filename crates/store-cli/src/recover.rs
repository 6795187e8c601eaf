//! `textstore recover SRC DEST`: the report, for people on stderr or for machines as JSON.

use std::io::Write;
use std::path::Path;

use store_mmap::{DamagedRecord, Problem, RecoverReport};

use crate::report::counted;
use crate::{Failure, Outcome, write_out};

/// Prints `report` and fails with exit code 3 when something was lost.
pub(crate) fn print(
    report: &RecoverReport,
    src: &Path,
    dest: &Path,
    json: bool,
    out: &mut impl Write,
) -> Outcome {
    if json {
        let value = to_json(report, src, dest);
        write_out(out, format!("{value:#}\n").as_bytes())?;
    } else {
        for problem in &report.damage {
            eprintln!("damaged: {problem}");
        }
        if let Some(torn) = &report.torn_tail {
            eprintln!(
                "torn final write, {} intact records of it copied: {torn}",
                report.torn_records
            );
        }
        if report.abandoned_records > 0 {
            eprintln!(
                "a batch spanning segments never completed: its {} intact records were not copied",
                report.abandoned_records
            );
        }
        for record in &report.damaged_records {
            eprintln!("{}", describe(record));
        }
    }
    let older = report.older_versions().count();
    let lost = report.lost().count();
    let summary = format!(
        "copied {} ({} bytes of text) from {} into {}; {} in {}, {} deleted",
        counted(report.documents, "document"),
        report.text_bytes,
        src.display(),
        dest.display(),
        counted(report.records_intact, "intact record"),
        counted(report.segments, "segment"),
        counted(report.deleted, "document")
    );
    if report.is_complete() {
        eprintln!("textstore: everything was recovered: {summary}");
        return Ok(());
    }
    Err(Failure {
        code: 3,
        message: format!(
            "something was lost: {} damaged ranges ({} bytes){}; of the {} damaged records named by a surviving header or the index, {} came back at an older version and {} have no intact version; {summary}",
            report.damage.len(),
            report.damage.iter().map(|p| p.end - p.offset).sum::<u64>(),
            if report.torn_tail.is_some() {
                " and a torn final write"
            } else {
                ""
            },
            report.damaged_records.len(),
            older,
            lost
        ),
    })
}

fn describe(record: &DamagedRecord) -> String {
    let what = if record.tombstone { "delete" } else { "put" };
    let outcome = match record.recovered_seq {
        None => "no version of it is intact".to_owned(),
        Some(seq) if seq < record.seq => format!("it comes back at its older version, seq {seq}"),
        Some(seq) => format!("a newer version, seq {seq}, is intact: nothing lost"),
    };
    format!(
        "latest version may be lost: document {} ({what} at seq {}, {} offset {}): {outcome}",
        record.id,
        record.seq,
        record.path.display(),
        record.offset
    )
}

pub(crate) fn problem_json(problem: &Problem) -> serde_json::Value {
    serde_json::json!({
        "path": problem.path.display().to_string(),
        "start": problem.offset,
        "end": problem.end,
        "what": problem.what,
    })
}

fn record_json(record: &DamagedRecord) -> serde_json::Value {
    serde_json::json!({
        "id": record.id.to_string(),
        "seq": record.seq,
        "tombstone": record.tombstone,
        "path": record.path.display().to_string(),
        "offset": record.offset,
        "recovered_seq": record.recovered_seq,
    })
}

fn to_json(report: &RecoverReport, src: &Path, dest: &Path) -> serde_json::Value {
    serde_json::json!({
        "src": src.display().to_string(),
        "dest": dest.display().to_string(),
        "complete": report.is_complete(),
        "segments": report.segments,
        "records_intact": report.records_intact,
        "documents": report.documents,
        "text_bytes": report.text_bytes,
        "deleted": report.deleted,
        "damage": report.damage.iter().map(problem_json).collect::<Vec<_>>(),
        "torn_tail": report.torn_tail.as_ref().map(problem_json),
        "torn_records": report.torn_records,
        "abandoned_records": report.abandoned_records,
        "damaged_records": report.damaged_records.iter().map(record_json).collect::<Vec<_>>(),
        "older_versions": report.older_versions().map(record_json).collect::<Vec<_>>(),
        "lost": report.lost().map(record_json).collect::<Vec<_>>(),
    })
}
