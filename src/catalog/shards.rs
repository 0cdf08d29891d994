//! Which shards of a sweep split across machines (`sweep.shard` = `index/count`) have
//! stored their points: complete, stopped early, still running, cut off, or missing, read
//! from the points alone (any order, from any number of machines).

use serde::Serialize;

use crate::schema::{Metadata, Status};

/// The most shards a sweep may be split into (`sweep --shard-count` takes it from here).
pub const MAX_SHARDS: u32 = 1000;
/// The most points a sweep's plan may have (`sweep::plan::MAX_POINTS` takes it from here).
pub const MAX_PLANNED: u64 = 1000;

/// One shard's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardState {
    pub index: u32,
    /// `complete` (every point of the shard is stored, finished), `stopped` (a
    /// saturation rule ended it early: the rest was skipped on purpose), `running` (a
    /// point is still running), `incomplete` (points are missing: a shard cut off or
    /// still to be resumed), `missing` (no point at all).
    pub state: &'static str,
    /// Finished points of the shard stored.
    pub points: usize,
    /// Points the shard was planned to run, when the points record the plan's size.
    pub planned: Option<usize>,
}

/// The shards of one sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shards {
    pub count: u32,
    /// Shards that ran all they had to (complete, or stopped early by a rule): the sweep
    /// is whole when this equals `count` (`query --sweep ID --metric shards.done`).
    pub done: usize,
    pub shards: Vec<ShardState>,
}

/// The shards of the sweep whose runs (finished or running) are `members`; None when its
/// points were not split.
pub fn of(runs: &[Metadata], members: &[usize]) -> Option<Shards> {
    let parts = |i: usize| runs[i].sweep.as_ref().and_then(|l| l.shard_parts());
    // Bounded like the sweep command's own limits: a hostile point cannot make it count
    // a billion shards.
    let count = members
        .iter()
        .filter_map(|&i| parts(i))
        .map(|p| p.1)
        .filter(|&n| n <= MAX_SHARDS)
        .max()?;
    let planned = members
        .iter()
        .filter_map(|&i| runs[i].sweep.as_ref()?.extra.get("planned")?.as_u64())
        .filter(|&p| p <= MAX_PLANNED)
        .max()
        .map(|p| p as usize);
    let shards = (0..count)
        .map(|index| {
            let mine: Vec<&Metadata> = members
                .iter()
                .filter(|&&i| parts(i) == Some((index, count)))
                .map(|&i| &runs[i])
                .collect();
            let mut finished: Vec<u32> = mine
                .iter()
                .filter(|m| m.status != Status::Running)
                .filter_map(|m| m.sweep.as_ref().map(|l| l.index))
                .collect();
            finished.sort_unstable();
            finished.dedup();
            let expected = planned.map(|p| (index as usize..p).step_by(count as usize).count());
            let all_there = planned.is_none_or(|p| {
                (index as usize..p)
                    .step_by(count as usize)
                    .all(|k| finished.binary_search(&(k as u32)).is_ok())
            });
            let stopped = mine.iter().any(|m| {
                m.sweep
                    .as_ref()
                    .is_some_and(|l| l.extra.contains_key("stop"))
            });
            let state = if mine.is_empty() {
                if expected == Some(0) {
                    "complete"
                } else {
                    "missing"
                }
            } else if mine.iter().any(|m| {
                // A point still running, unless its index was finished by a rerun.
                m.status == Status::Running
                    && m.sweep
                        .as_ref()
                        .is_some_and(|l| finished.binary_search(&l.index).is_err())
            }) {
                "running"
            } else if all_there {
                "complete"
            } else if stopped {
                "stopped"
            } else {
                "incomplete"
            };
            ShardState {
                index,
                state,
                points: finished.len(),
                planned: expected,
            }
        })
        .collect::<Vec<ShardState>>();
    let done = shards
        .iter()
        .filter(|s| matches!(s.state, "complete" | "stopped"))
        .count();
    Some(Shards {
        count,
        done,
        shards,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::of;
    use crate::schema::{Metadata, SourceKind, Status, SweepLink};

    /// A point of sweep `s` at plan index `k`, run by shard `k % 3` of 3 (plan of 7).
    fn point(k: u32, status: Status, stop: bool) -> Metadata {
        let mut m = Metadata::new(SourceKind::Run, "f", "p", "m", chrono::Utc::now());
        m.status = status;
        let mut extra = serde_json::Map::new();
        extra.insert("planned".into(), json!(7));
        if stop {
            extra.insert("stop".into(), json!({"rule": "flat_throughput"}));
        }
        m.sweep = Some(Box::new(SweepLink {
            id: "s".into(),
            index: k,
            axis: "concurrency".into(),
            value: k as f64 + 1.0,
            role: "point".into(),
            shard: Some(format!("{}/3", k % 3)),
            extra,
            ..Default::default()
        }));
        m
    }

    #[test]
    fn states_from_the_points_in_any_order() {
        use Status::{Completed, Running};
        // Shard 0 owns 0, 3, 6 (all there, stored out of order); shard 1 owns 1, 4
        // (4 missing); shard 2 owns 2, 5 (none stored).
        let runs = vec![
            point(6, Completed, false),
            point(1, Completed, false),
            point(3, Completed, false),
            point(0, Completed, false),
        ];
        let s = of(&runs, &[0, 1, 2, 3]).unwrap();
        let states: Vec<_> = s
            .shards
            .iter()
            .map(|x| (x.state, x.points, x.planned))
            .collect();
        assert_eq!(
            states,
            vec![
                ("complete", 3, Some(3)),
                ("incomplete", 1, Some(2)),
                ("missing", 0, Some(2))
            ]
        );
        assert_eq!(s.done, 1);
        // Shard 1 stopped early at its first point; shard 2 is still running its first.
        let runs = vec![
            point(1, Completed, true),
            point(2, Running, false),
            point(0, Completed, false),
        ];
        let s = of(&runs, &[0, 1, 2]).unwrap();
        let states: Vec<_> = s.shards.iter().map(|x| x.state).collect();
        assert_eq!(states, vec!["incomplete", "stopped", "running"]);
        // A point left running and rerun to the end elsewhere: the rerun counts.
        let runs = vec![
            point(2, Running, false),
            point(2, Completed, false),
            point(5, Completed, false),
        ];
        let s = of(&runs, &[0, 1, 2]).unwrap();
        assert_eq!(s.shards[2].state, "complete");
        // Not split: no shards; a hostile count is not believed.
        let mut m = point(0, Completed, false);
        m.sweep.as_mut().unwrap().shard = None;
        assert_eq!(of(&[m.clone()], &[0]), None);
        m.sweep.as_mut().unwrap().shard = Some("0/4000000000".into());
        assert_eq!(of(&[m], &[0]), None);
    }
}
