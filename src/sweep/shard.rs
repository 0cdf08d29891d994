//! Fleets: one sweep split across machines. A [`Shard`] is `index/count`; point `k` of
//! the plan belongs to shard `k % count` (round robin), so every shard runs loads from
//! the whole range and the shards take about the same time. The shards share one sweep id
//! (given, never reserved) and each writes only its own points.

use crate::error::Error;

/// The most shards one sweep may be split into.
pub const MAX_SHARDS: u32 = crate::catalog::shards::MAX_SHARDS;
/// The longest sweep id a user may give.
pub const MAX_ID_LEN: usize = 128;

/// Which part of a sweep this process runs, and where that was read from (`--shard-index`,
/// `JOB_COMPLETION_INDEX`, `SLURM_ARRAY_TASK_ID`), recorded with every point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    pub source: String,
}

impl Shard {
    /// A checked shard: `count` in 1..=MAX_SHARDS and `index < count`. `index_from` and
    /// `count_from` name the flag or variable each came from, for the error.
    pub fn new(index: u32, count: u32, index_from: &str, count_from: &str) -> Result<Shard, Error> {
        if count == 0 || count > MAX_SHARDS {
            return Err(Error::usage(format!(
                "{count_from} {count}: the number of shards must be between 1 and {MAX_SHARDS}"
            )));
        }
        if index >= count {
            return Err(Error::usage(format!(
                "{index_from} {index}: a shard index must be below the shard count {count} ({count_from}); shards are numbered 0..{}",
                count - 1
            )));
        }
        Ok(Shard {
            index,
            count,
            source: index_from.to_string(),
        })
    }

    /// Whether point `k` of the plan is this shard's.
    pub fn owns(&self, k: u32) -> bool {
        k % self.count == self.index
    }

    /// The plan index of this shard's `n`-th point (0-based).
    pub fn nth(&self, n: usize) -> u32 {
        (self.index as u64 + self.count as u64 * n as u64).min(u32::MAX as u64) as u32
    }

    /// `index/count`, as `sweep.shard` records it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// `index/count` back into numbers (None when it does not read as one).
pub fn parse_label(s: &str) -> Option<(u32, u32)> {
    crate::schema::SweepLink {
        shard: Some(s.to_string()),
        ..Default::default()
    }
    .shard_parts()
}

/// A sweep id a user gives (`--sweep-id`, `BENCHKEEP_SWEEP_ID`): letters, digits, `.`,
/// `_` and `-`, not starting with `.` or `-`, at most [`MAX_ID_LEN`] characters, so it is
/// safe as a file name and the same on every machine. `from` names the flag or variable.
pub fn check_id(from: &str, id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        return Ok(());
    }
    let shown: String = id.chars().take(MAX_ID_LEN).collect();
    Err(Error::usage(format!(
        "{from} {shown:?}: a sweep id is 1 to {MAX_ID_LEN} letters, digits, '.', '_' or '-', not starting with '.' or '-' (e.g. sweep-llama-nightly-42)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_split() {
        let s = Shard::new(1, 3, "--shard-index", "--shard-count").unwrap();
        let mine: Vec<u32> = (0..8).filter(|&k| s.owns(k)).collect();
        assert_eq!(mine, vec![1, 4, 7]);
        assert_eq!((0..3).map(|n| s.nth(n)).collect::<Vec<_>>(), mine);
        assert_eq!(s.label(), "1/3");
        assert_eq!(parse_label("1/3"), Some((1, 3)));
        assert_eq!(parse_label("3/3"), None);
        assert_eq!(parse_label("x"), None);
        // Every point belongs to exactly one shard.
        for k in 0..50 {
            let owners = (0..3)
                .filter(|&i| Shard::new(i, 3, "a", "b").unwrap().owns(k))
                .count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn bad_shards_name_their_source() {
        let e = Shard::new(3, 3, "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID 3") && e.contains("0..2"),
            "{e}"
        );
        let e = Shard::new(0, 0, "--shard-index", "--shard-count")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--shard-count 0"), "{e}");
    }

    #[test]
    fn sweep_ids() {
        assert!(check_id("--sweep-id", "sweep-a.b_c-42").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", "../x", &"a".repeat(129)] {
            let e = check_id("--sweep-id", bad).unwrap_err().to_string();
            assert!(e.contains("--sweep-id"), "{e}");
        }
    }
}
