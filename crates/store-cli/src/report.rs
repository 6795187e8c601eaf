//! `textstore stat`: the store's size and shape, for people or for machines.

use std::fmt::Write;

use indicatif::HumanBytes;
use store_metrics::{Metrics, Thresholds, health, prometheus};
use store_mmap::{IndexLoad, Store, VerifyReport};

use crate::Outcome;

/// How `stat` prints.
pub(crate) enum Format {
    /// For people: sizes rounded to binary units, or `exact` byte counts.
    Text {
        exact: bool,
    },
    Json,
    Prometheus,
}

pub(crate) fn stat(store: &Store, format: Format) -> Outcome<String> {
    let s = store.stats()?;
    let disk = store.disk_space()?;
    // This process ran no operations: the snapshot carries the store's gauges, and the
    // advice rests on them.
    let snapshot = Metrics::new().snapshot().with_stats(&s).with_stats(&disk);
    let health = health(&snapshot, &Thresholds::default());
    let (json, exact) = match format {
        Format::Prometheus => return Ok(prometheus(&snapshot)),
        Format::Json => (true, true),
        Format::Text { exact } => (false, exact),
    };
    let size = |bytes: u64| {
        if exact {
            format!("{bytes} bytes")
        } else {
            HumanBytes(bytes).to_string()
        }
    };
    let recovery = store.recovery();
    let index = match &recovery.index {
        IndexLoad::Loaded { entries } => format!("loaded ({entries} entries)"),
        IndexLoad::Missing => "missing, rebuilt from data".to_owned(),
        IndexLoad::Discarded { reason } => format!("discarded ({reason}), rebuilt from data"),
        other => format!("{other:?}"),
    };
    if json {
        let mut value = serde_json::json!({
            "documents": s.documents(),
            "text_bytes": s.text_bytes(),
            "live_bytes": s.live_bytes(),
            "dead_bytes": s.dead_bytes(),
            "dead_ratio": s.dead_ratio(),
            "segments": s.segments(),
            "spare_files": s.spare_files(),
            "spare_bytes": s.spare_bytes(),
            "file_bytes": s.file_bytes(),
            "allocated_bytes": s.allocated_bytes(),
            "mapped_bytes": s.mapped_bytes(),
            "index_memory_bytes": s.index_memory_bytes(),
            "index_file_bytes": s.index_file_bytes(),
            "last_seq": s.last_seq(),
            "index_changes": s.index_changes(),
            "checkpoints": s.checkpoints(),
            "checkpoint_failures": s.checkpoint_failures(),
            "index_rebuilds": s.index_rebuilds(),
            "change_floor": store.change_floor(),
            "filesystem_available_bytes": disk.available_bytes(),
            "compaction_copy_bytes": s.compaction_copy_bytes(),
        });
        let extra = serde_json::json!({
            "store": store.dir().display().to_string(),
            "max_document_bytes": store.max_document_bytes(),
            "segment_capacity": store.segment_capacity(),
            "recovery": {
                "index": index,
                "records_replayed": recovery.records_replayed,
                "dropped_tail": recovery.dropped_tail.as_ref().map(|d| serde_json::json!({
                    "path": d.path.display().to_string(),
                    "offset": d.offset,
                    "records": d.records,
                    "reason": d.reason,
                })),
            },
            "advice": health.advice.iter().map(|a| serde_json::json!({
                "severity": a.severity.name(),
                "code": a.code,
                "message": a.message,
            })).collect::<Vec<_>>(),
        });
        if let (Some(value), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
            value.extend(extra);
        }
        return Ok(format!("{value:#}\n"));
    }
    let mut out = String::new();
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "{name:<20} {value}");
    };
    row("store", store.dir().display().to_string());
    row("documents", s.documents().to_string());
    row("text", size(s.text_bytes()));
    row("live records", size(s.live_bytes()));
    row(
        "dead records",
        format!(
            "{} ({:.1}% of records)",
            size(s.dead_bytes()),
            s.dead_ratio() * 100.0
        ),
    );
    row("segments", s.segments().to_string());
    row(
        "spare files",
        format!("{} ({})", s.spare_files(), size(s.spare_bytes())),
    );
    row(
        "files",
        format!(
            "{} ({} allocated on disk)",
            size(s.file_bytes()),
            size(s.allocated_bytes())
        ),
    );
    row("index file", size(s.index_file_bytes()));
    row("index memory", size(s.index_memory_bytes()));
    row("last sequence", s.last_seq().to_string());
    row("change floor", store.change_floor().to_string());
    row("max document", size(store.max_document_bytes()));
    row(
        "segment capacity",
        size(u64::from(store.segment_capacity())),
    );
    row("file system free", size(disk.available_bytes()));
    row(
        "compaction copies",
        format!(
            "{} (the live records of segments with dead ones)",
            size(s.compaction_copy_bytes())
        ),
    );
    row("index on open", index);
    if let Some(dropped) = &recovery.dropped_tail {
        row(
            "recovery",
            format!(
                "cut a torn tail of {} at offset {} ({} uncommitted records): {}",
                dropped.path.display(),
                dropped.offset,
                dropped.records,
                dropped.reason
            ),
        );
    }
    if health.advice.is_empty() {
        let _ = writeln!(out, "{:<20} none", "advice");
    }
    for advice in &health.advice {
        let _ = writeln!(out, "{:<20} {advice}", "advice");
    }
    Ok(out)
}

/// `n` and `noun`, the noun in the plural unless `n` is one: "1 segment", "3 segments".
pub(crate) fn counted(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// `verify --json`: the counts, and every problem with its file and byte range.
pub(crate) fn verify_json(report: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "clean": report.is_clean(),
        "segments": report.segments,
        "records_ok": report.records_ok,
        "documents_checked": report.documents_checked,
        "problems": report.problems.iter().map(crate::recover::problem_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn a_count_of_one_takes_the_singular() {
        assert_eq!(counted(1u64, "segment"), "1 segment");
        assert_eq!(counted(0u64, "segment"), "0 segments");
        assert_eq!(counted(5u64, "intact record"), "5 intact records");
    }
}
