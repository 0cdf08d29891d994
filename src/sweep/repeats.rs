//! `sweep --repeat N`: each point run N times, each repeat a normal run linked to the
//! others by `repeat: {group, index, count}` (the group `{sweep id}-p{index}`), and the
//! figures the sweep judges and prints: the means across the repeats.

use crate::schema::{LatencySummary, Metadata, RepeatLink, Status};

/// The most repeats of one point.
pub const MAX_REPEATS: u32 = 100;

/// The repeat group of point `index` of sweep `id`.
pub fn group(id: &str, index: u32) -> String {
    format!("{id}-p{index}")
}

/// The link of repeat `index` of `count` of point `point` of sweep `id`.
pub fn link(id: &str, point: u32, index: u32, count: u32) -> RepeatLink {
    RepeatLink {
        group: group(id, point),
        index,
        count,
        extra: Default::default(),
    }
}

/// The stored repeats of one point of a sweep run with `count` repeats, by repeat index
/// (`None`: still to run). A run of another group or count is not one of them (a stored
/// point run without repeats is the only repeat of a one-repeat sweep); of two runs
/// with the same repeat index, the later one in `stored` wins.
pub fn slots(stored: Vec<Metadata>, count: u32) -> Vec<Option<Metadata>> {
    let mut out: Vec<Option<Metadata>> = vec![None; count as usize];
    for m in stored {
        let i = match &m.repeat {
            _ if count == 1 && m.repeat.as_ref().is_none_or(|r| r.count == 1) => 0,
            Some(r) if r.count == count && r.index < count => r.index as usize,
            _ => continue,
        };
        // A finished run of a slot wins over one left running (a shard retried elsewhere).
        let running = m.status == crate::schema::Status::Running;
        if running
            && out[i]
                .as_ref()
                .is_some_and(|o| o.status != crate::schema::Status::Running)
        {
            continue;
        }
        out[i] = Some(m);
    }
    out
}

type Of = fn(&crate::schema::Latencies) -> Option<&LatencySummary>;
type Slot = fn(&mut crate::schema::Latencies) -> &mut Option<LatencySummary>;

fn mean(vals: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut n, mut sum) = (0u32, 0.0);
    for v in vals {
        n += 1;
        sum += v;
    }
    (n > 0).then(|| sum / n as f64)
}

/// The point's figures across its repeats: the last repeat's metadata with its req/s,
/// output tok/s and latency percentiles replaced by their means over the repeats that had
/// a success, and its counts summed; the status is `interrupted` if any repeat was, the
/// repeats' status if they share one, else `partial`. One repeat: that repeat unchanged.
/// This is what the early-stop rules judge and the table prints; it is never stored.
pub fn summary(runs: &[Metadata]) -> Metadata {
    let mut out = runs.last().expect("at least one repeat").clone();
    if runs.len() < 2 {
        return out;
    }
    let ok: Vec<&Metadata> = runs
        .iter()
        .filter(|m| m.results.success_count > 0)
        .collect();
    let r = &mut out.results;
    r.success_count = runs
        .iter()
        .map(|m| m.results.success_count)
        .fold(0, u64::saturating_add);
    r.failure_count = runs
        .iter()
        .map(|m| m.results.failure_count)
        .fold(0, u64::saturating_add);
    if let Some(v) = mean(ok.iter().map(|m| m.results.throughput_requests_per_sec)) {
        r.throughput_requests_per_sec = v;
    }
    if let Some(v) = mean(ok.iter().map(|m| m.results.output_tokens_per_sec)) {
        r.output_tokens_per_sec = v;
    }
    if let Some(l) = r.latency_ms.as_mut() {
        let pick: [(Of, Slot); 3] = [
            (|l| l.ttft.as_ref(), |l| &mut l.ttft),
            (|l| l.tpot.as_ref(), |l| &mut l.tpot),
            (|l| l.e2e.as_ref(), |l| &mut l.e2e),
        ];
        for (of, slot) in pick {
            let all: Vec<&LatencySummary> = ok
                .iter()
                .filter_map(|m| m.results.latency_ms.as_deref().and_then(of))
                .collect();
            let Some(s) = slot(l).as_mut() else { continue };
            if all.len() != ok.len() || all.is_empty() {
                continue;
            }
            s.mean = mean(all.iter().map(|x| x.mean)).unwrap_or(s.mean);
            s.p50 = mean(all.iter().map(|x| x.p50)).unwrap_or(s.p50);
            s.p90 = mean(all.iter().map(|x| x.p90)).unwrap_or(s.p90);
            s.p95 = mean(all.iter().map(|x| x.p95)).unwrap_or(s.p95);
            s.p99 = mean(all.iter().map(|x| x.p99)).unwrap_or(s.p99);
            s.count = all.iter().map(|x| x.count).fold(0, u64::saturating_add);
            // a percentile's interval belongs to one run, not to the mean
            s.ci = None;
        }
    }
    let statuses: Vec<Status> = runs.iter().map(|m| m.status).collect();
    out.status = if statuses.contains(&Status::Interrupted) {
        Status::Interrupted
    } else if statuses.iter().all(|s| *s == statuses[0]) {
        statuses[0]
    } else {
        Status::Partial
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(i: u32, rps: f64) -> Metadata {
        let mut m = Metadata::new(
            crate::schema::SourceKind::Run,
            "benchkeep",
            "vllm",
            "m",
            chrono::Utc::now(),
        );
        m.test_id = format!("r{i}");
        m.status = Status::Completed;
        m.results.success_count = 10;
        m.results.throughput_requests_per_sec = rps;
        m.repeat = Some(link("s", 0, i, 3));
        m
    }

    #[test]
    fn the_summary_is_the_mean_and_the_slots_follow_the_repeat_index() {
        let runs = vec![run(0, 10.0), run(1, 20.0), run(2, 30.0)];
        let s = summary(&runs);
        assert_eq!(s.results.throughput_requests_per_sec, 20.0);
        assert_eq!(s.results.success_count, 30);
        assert_eq!(s.test_id, "r2");
        let got = slots(vec![runs[2].clone(), runs[0].clone()], 3);
        assert_eq!(got[0].as_ref().map(|m| m.test_id.as_str()), Some("r0"));
        assert!(got[1].is_none());
        assert_eq!(got[2].as_ref().map(|m| m.test_id.as_str()), Some("r2"));
        // another count is another plan's run
        assert!(slots(runs.clone(), 4).iter().all(Option::is_none));
        assert!(
            slots(runs.clone(), 1)[0].is_none(),
            "nor is a repeat of 3 a run of 1"
        );
        let mut bad = run(1, 0.0);
        bad.status = Status::Interrupted;
        assert_eq!(summary(&[runs[0].clone(), bad]).status, Status::Interrupted);
    }
}
