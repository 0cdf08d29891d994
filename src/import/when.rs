//! When an imported run ran: its own time as its tool wrote it (GuideLLM's benchmark
//! `start_time`, AIPerf's and inference-benchmarker's `start_time`, vLLM's `date`, llmperf's
//! `timestamp`), else the source file's modification time, else the import time; the
//! metadata says which (`source.timestamp_from`).
//!
//! Times without a zone (vLLM's `date` `YYYYMMDD-HHMMSS`, AIPerf's `start_time`) are local
//! times of the machine that ran the tool: they are read in the UTC offset the caller gives
//! (the importing machine's, from the CLI), else as UTC.

use std::path::Path;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

/// The format of benchkeep's own `timestamp` (ISO-8601, UTC, seconds).
const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Where a run's `timestamp` came from (`source.timestamp_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The file's own record of when the run started.
    File,
    /// The file has no time: its modification time.
    FileMtime,
    /// Neither: the import time.
    ImportTime,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::FileMtime => "file_mtime",
            Origin::ImportTime => "import_time",
        }
    }
}

/// A time as a tool wrote it, as benchkeep's `timestamp`; `None` when it is not one of the
/// forms tools write (RFC 3339 with a zone, or a local time `YYYY-MM-DDTHH:MM:SS[.f]`,
/// `YYYY-MM-DD HH:MM:SS[.f]`, `YYYYMMDD-HHMMSS`).
pub fn parse(text: &str, local: Option<FixedOffset>) -> Option<String> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Some(at.with_timezone(&Utc).format(FORMAT).to_string());
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y%m%d-%H%M%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())?;
    let offset = local.unwrap_or(FixedOffset::east_opt(0)?);
    let at = offset.from_local_datetime(&naive).single()?;
    Some(at.with_timezone(&Utc).format(FORMAT).to_string())
}

/// The run's own time: from `started` (the tool's), else the file's modification time,
/// else `None` (the import time stands).
pub fn own_time(
    started: Option<&str>,
    path: &Path,
    local: Option<FixedOffset>,
) -> Option<(String, Origin)> {
    if let Some(t) = started.and_then(|s| parse(s, local)) {
        return Some((t, Origin::File));
    }
    let mtime = std::fs::symlink_metadata(path).ok()?.modified().ok()?;
    let at: DateTime<Utc> = mtime.into();
    Some((at.format(FORMAT).to_string(), Origin::FileMtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_tools_write() {
        let z = |s| parse(s, None);
        assert_eq!(
            z("2026-03-01T10:15:00+02:00").unwrap(),
            "2026-03-01T08:15:00Z"
        );
        assert_eq!(z("2026-03-01T10:15:00Z").unwrap(), "2026-03-01T10:15:00Z");
        assert_eq!(z("20260301-101500").unwrap(), "2026-03-01T10:15:00Z");
        assert_eq!(
            z("2026-12-02T14:08:57.441042").unwrap(),
            "2026-12-02T14:08:57Z"
        );
        let east = FixedOffset::east_opt(3600);
        assert_eq!(
            parse("20260301-101500", east).unwrap(),
            "2026-03-01T09:15:00Z"
        );
        // A zone in the text wins over the local offset.
        assert_eq!(
            parse("2026-03-01T10:15:00Z", east).unwrap(),
            "2026-03-01T10:15:00Z"
        );
        for bad in ["", "yesterday", "20261301-101500", "1772360100"] {
            assert_eq!(z(bad), None, "{bad}");
        }
    }

    #[test]
    fn without_a_time_the_file_mtime_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        std::fs::write(&p, b"{}").unwrap();
        let (t, from) = own_time(None, &p, None).unwrap();
        assert_eq!(from, Origin::FileMtime);
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
        let (t, from) = own_time(Some("20260301-101500"), &p, None).unwrap();
        assert_eq!((t.as_str(), from), ("2026-03-01T10:15:00Z", Origin::File));
        assert_eq!(
            own_time(Some("nonsense"), &dir.path().join("gone"), None),
            None
        );
    }
}
