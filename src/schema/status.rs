//! A run's life-cycle state (`status` in the metadata), its names on disk and in tables.

use serde::{Deserialize, Serialize};

/// Life-cycle state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Started, not finished yet (or its process died: see `verify` and `recover`).
    Running,
    /// Every request succeeded.
    Completed,
    /// Some requests failed, or some lines could not be read.
    Partial,
    /// Nothing succeeded, or the command failed.
    Failed,
    /// Stopped early (Ctrl-C, SIGTERM, kill -9 then `recover`).
    Interrupted,
}

impl Status {
    /// Every status, in life-cycle order.
    pub const ALL: [Status; 5] = [
        Status::Running,
        Status::Completed,
        Status::Partial,
        Status::Failed,
        Status::Interrupted,
    ];

    /// The status named `name` as [`Status::as_str`] writes it.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The lowercase name used on disk and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Partial => "partial",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }

    /// Whether the run is finished (anything but `running`).
    pub fn is_final(self) -> bool {
        self != Status::Running
    }
}
