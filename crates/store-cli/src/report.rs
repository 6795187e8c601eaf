//! `textstore stat`: the store's size and shape, for people or for machines.

use std::fmt::Write;

use store_metrics::{Metrics, Thresholds, health, prometheus};
use store_mmap::{IndexLoad, Store};

use crate::Outcome;

/// How `stat` prints.
pub(crate) enum Format {
    Text,
    Json,
    Prometheus,
}

pub(crate) fn stat(store: &Store, format: Format) -> Outcome<String> {
    let s = store.stats()?;
    // This process ran no operations: the snapshot carries the store's gauges, and the
    // advice rests on them.
    let snapshot = Metrics::new().snapshot().with_stats(&s);
    let health = health(&snapshot, &Thresholds::default());
    let json = match format {
        Format::Prometheus => return Ok(prometheus(&snapshot)),
        Format::Json => true,
        Format::Text => false,
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
            "file_bytes": s.file_bytes(),
            "allocated_bytes": s.allocated_bytes(),
            "mapped_bytes": s.mapped_bytes(),
            "index_memory_bytes": s.index_memory_bytes(),
            "index_file_bytes": s.index_file_bytes(),
            "last_seq": s.last_seq(),
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
    row("text", format!("{} bytes", s.text_bytes()));
    row("live records", format!("{} bytes", s.live_bytes()));
    row(
        "dead records",
        format!(
            "{} bytes ({:.1}% of records)",
            s.dead_bytes(),
            s.dead_ratio() * 100.0
        ),
    );
    row("segments", s.segments().to_string());
    row(
        "files",
        format!(
            "{} bytes ({} allocated on disk)",
            s.file_bytes(),
            s.allocated_bytes()
        ),
    );
    row("index memory", format!("{} bytes", s.index_memory_bytes()));
    row("last sequence", s.last_seq().to_string());
    row(
        "max document",
        format!("{} bytes", store.max_document_bytes()),
    );
    row(
        "segment capacity",
        format!("{} bytes", store.segment_capacity()),
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
