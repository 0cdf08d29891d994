//! The early-stop rules of a sweep: is the server saturated after this point? Too many
//! errors, a rate the server no longer keeps up with, a queue that keeps growing, or more
//! load that no longer brings more throughput. Each rule reads only what the point stored
//! (its metadata and its raw log, streamed in bounded memory), so a resumed sweep judges a
//! stored point exactly as the first run did.

use std::io::{BufRead, BufReader};

use serde_json::{Value, json};

use super::plan::{Axis, Rules};
use crate::schema::{Metadata, RequestRecord, Status};
use crate::store::{Store, nofollow};

/// Completions per second below this share of the scheduled rate: saturated.
pub const MIN_ACHIEVED: f64 = 0.9;
/// The last quarter's mean TTFT above this many times the first quarter's ...
pub const QUEUE_FACTOR: f64 = 2.0;
/// ... and above it by at least this much (ms): the queue grows.
pub const QUEUE_FLOOR_MS: f64 = 50.0;
/// Mean requests waiting in the server's queue above this: a queue, not a blip.
pub const SERVER_QUEUE_FLOOR: f64 = 1.0;
/// More concurrency giving less than this many times the best throughput so far: flat.
pub const FLAT_GAIN: f64 = 1.1;
/// Fewer finished requests than this: too few to judge a rate or a queue.
const MIN_RECORDS: u64 = 8;
/// A raw line longer than this is not read (a run's own lines are far shorter).
const MAX_LINE: u64 = 4 << 20;

/// Why a sweep stopped early: the rule (`error_rate`, `achieved_rate`, `queue_growth`,
/// `server_queue_growth`, `flat_throughput`) and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub rule: String,
    pub detail: String,
    /// `flat_throughput`: the load of the best earlier point, where the server saturated.
    pub saturated_at: Option<f64>,
}

impl Stop {
    pub fn to_json(&self) -> Value {
        let mut v = json!({"rule": self.rule, "detail": self.detail});
        if let Some(at) = self.saturated_at {
            v["saturated_at"] = json!(at);
        }
        v
    }

    pub fn from_json(v: &Value) -> Option<Stop> {
        Some(Stop {
            rule: v.get("rule")?.as_str()?.to_string(),
            detail: v
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            saturated_at: v.get("saturated_at").and_then(Value::as_f64),
        })
    }
}

/// What the rules look at for one point.
pub struct Judged<'a> {
    pub meta: &'a Metadata,
    pub axis: Axis,
    pub value: f64,
    /// `synchronous`, `throughput`, `point`.
    pub role: &'a str,
}

/// The first rule that fires for `point`, given the earlier points of the sweep. An
/// interrupted point is too short to judge; the throughput step of `--auto` overloads on
/// purpose, so only its errors and its gain over the synchronous step count.
pub fn check(store: &Store, rules: &Rules, point: &Judged, earlier: &[Judged]) -> Option<Stop> {
    check_repeats(store, rules, point, &[point.meta], earlier)
}

/// [`check`] for a point run several times (`sweep --repeat N`): `point.meta` holds the
/// means across its `repeats` (and their summed counts), which the error rate and
/// `flat_throughput` judge; the rules that read one run's own record (the server's queue,
/// a rate point's raw log) fire when they fire for more than half of the repeats.
pub fn check_repeats(
    store: &Store,
    rules: &Rules,
    point: &Judged,
    repeats: &[&Metadata],
    earlier: &[Judged],
) -> Option<Stop> {
    let m = point.meta;
    if !rules.enabled || m.status == Status::Interrupted || m.status == Status::Running {
        return None;
    }
    let r = &m.results;
    let total = r.success_count + r.failure_count;
    if total > 0 {
        let rate = r.failure_count as f64 / total as f64;
        if rate > rules.max_error_rate {
            return Some(Stop {
                rule: "error_rate".into(),
                detail: format!(
                    "{} of {total} requests failed ({:.0}%), above --max-error-rate {:.0}%",
                    r.failure_count,
                    rate * 100.0,
                    rules.max_error_rate * 100.0
                ),
                saturated_at: None,
            });
        }
    }
    if point.role != "throughput"
        && let Some(stop) = majority(repeats, |m| server_queue(m, point))
    {
        return Some(stop);
    }
    if point.axis == Axis::Concurrency || point.role == "throughput" {
        return flat(point, earlier);
    }
    if point.axis == Axis::Rate {
        return majority(repeats, |m| {
            let scan = scan(store, m)?;
            scan.achieved(point.value).or_else(|| scan.queue())
        });
    }
    None
}

/// The stop a rule gives for more than half of the repeats (the first one's), noting how
/// many when there are several.
fn majority(repeats: &[&Metadata], rule: impl Fn(&Metadata) -> Option<Stop>) -> Option<Stop> {
    let fired: Vec<Stop> = repeats.iter().filter_map(|m| rule(m)).collect();
    if fired.len() * 2 <= repeats.len() {
        return None;
    }
    let n = fired.len();
    let mut first = fired.into_iter().next()?;
    if repeats.len() > 1 {
        first.detail = format!("{} (in {n} of {} repeats)", first.detail, repeats.len());
    }
    Some(first)
}

/// The server's own queue (`results.server_view.series`, vLLM's
/// `num_requests_waiting`) grew during the point: its mean over the last quarter of its
/// rise (the time up to its peak) is above [`QUEUE_FACTOR`] times the first quarter's and
/// above [`SERVER_QUEUE_FLOOR`]. A closed loop's steady queue (a full batch) does not
/// grow; `flat_throughput` judges that.
fn server_queue(m: &Metadata, point: &Judged) -> Option<Stop> {
    let s = m.results.server_view.as_ref()?.series.clone()?;
    if let (Some(first), Some(last)) = (s.waiting_first_quarter, s.waiting_last_quarter)
        && last > SERVER_QUEUE_FLOOR
        && last > QUEUE_FACTOR * first
    {
        return Some(Stop {
            rule: "server_queue_growth".into(),
            detail: format!(
                "the server's waiting requests grew from {first:.1} (first quarter of its rise) to {last:.1} (last quarter) at {} {}",
                point.axis.name(),
                point.value
            ),
            saturated_at: None,
        });
    }
    None
}

/// More requests in flight than any earlier point, and not 10% more throughput than the
/// best of them.
fn flat(point: &Judged, earlier: &[Judged]) -> Option<Stop> {
    let x = point.meta.results.throughput_requests_per_sec;
    let best = earlier
        .iter()
        .filter(|e| {
            e.axis == Axis::Concurrency
                && e.value < point.value
                && e.meta.status != Status::Interrupted
        })
        .max_by(|a, b| {
            let (a, b) = (
                a.meta.results.throughput_requests_per_sec,
                b.meta.results.throughput_requests_per_sec,
            );
            a.total_cmp(&b)
        })?;
    let b = best.meta.results.throughput_requests_per_sec;
    if b > 0.0 && x < FLAT_GAIN * b {
        return Some(Stop {
            rule: "flat_throughput".into(),
            detail: format!(
                "{:.2} req/s at concurrency {} is less than {:.0}% more than {b:.2} req/s at concurrency {}: more load no longer brings more throughput",
                x,
                point.value,
                (FLAT_GAIN - 1.0) * 100.0,
                best.value
            ),
            saturated_at: Some(best.value),
        });
    }
    None
}

/// What a rate point's raw log says: the spans of its schedule and of its completions,
/// and the mean time to first token of its first and last quarters.
#[derive(Debug, Default)]
struct Scan {
    scheduled: Span,
    finished: Span,
    first_q: Mean,
    last_q: Mean,
}

#[derive(Debug, Default)]
struct Span {
    n: u64,
    lo: f64,
    hi: f64,
}

impl Span {
    fn add(&mut self, t: f64) {
        if self.n == 0 {
            (self.lo, self.hi) = (t, t);
        } else {
            self.lo = self.lo.min(t);
            self.hi = self.hi.max(t);
        }
        self.n += 1;
    }

    /// Events per second over the span (`n - 1` gaps).
    fn rate(&self) -> Option<f64> {
        (self.n >= MIN_RECORDS && self.hi > self.lo)
            .then(|| (self.n - 1) as f64 / (self.hi - self.lo))
    }
}

#[derive(Debug, Default)]
struct Mean {
    n: u64,
    sum: f64,
}

impl Mean {
    fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

impl Scan {
    /// Completions per second below 90% of the rate the requests were scheduled at (the
    /// realized schedule, so that a Poisson draw's chance is not taken for saturation).
    fn achieved(&self, offered: f64) -> Option<Stop> {
        let done = self.finished.rate()?;
        let scheduled = self.scheduled.rate().unwrap_or(offered);
        (done < MIN_ACHIEVED * scheduled).then(|| Stop {
            rule: "achieved_rate".into(),
            detail: format!(
                "requests finished at {done:.2}/s while they were sent at {scheduled:.2}/s (offered {offered}/s): below {:.0}%, the server no longer keeps up",
                MIN_ACHIEVED * 100.0
            ),
            saturated_at: None,
        })
    }

    /// The last quarter of the requests waited far longer for their first token than the
    /// first quarter.
    fn queue(&self) -> Option<Stop> {
        let (a, b) = (self.first_q.get()?, self.last_q.get()?);
        (b > QUEUE_FACTOR * a && b - a > QUEUE_FLOOR_MS).then(|| Stop {
            rule: "queue_growth".into(),
            detail: format!(
                "the last quarter's mean time to first token, {b:.0} ms, is over {QUEUE_FACTOR}x the first quarter's, {a:.0} ms: the queue keeps growing"
            ),
            saturated_at: None,
        })
    }
}

/// Stream the point's raw log once: O(1) memory whatever its length.
fn scan(store: &Store, m: &Metadata) -> Option<Scan> {
    let total = m.test.num_requests;
    if total < MIN_RECORDS || !crate::store::is_store_relative(&m.test.output_file) {
        return None;
    }
    let quarter = (total / 4).max(1);
    let file = nofollow::open_read(&store.resolve(&m.test.output_file)).ok()?;
    let mut reader = BufReader::new(file);
    let mut s = Scan::default();
    let mut line = Vec::new();
    let mut i = 0u64;
    loop {
        line.clear();
        let n = std::io::Read::take(&mut reader, MAX_LINE)
            .read_until(b'\n', &mut line)
            .ok()?;
        if n == 0 {
            break;
        }
        let Ok(rec) = serde_json::from_slice::<RequestRecord>(&line) else {
            continue;
        };
        if let Some(t) = rec.scheduled_s.or(rec.sent_s) {
            s.scheduled.add(t);
        }
        if rec.ok
            && let Some(t) = rec.end_s
        {
            s.finished.add(t);
        }
        let wait = if rec.ok {
            rec.ttft_ms.or(rec.e2e_ms)
        } else {
            None
        };
        if let Some(w) = wait {
            if i < quarter {
                s.first_q.n += 1;
                s.first_q.sum += w;
            } else if i >= total.saturating_sub(quarter) {
                s.last_q.n += 1;
                s.last_q.sum += w;
            }
        }
        i += 1;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_on_repeats_fires_for_more_than_half_of_them() {
        let run = |id: &str| {
            let mut m = Metadata::new(
                crate::schema::SourceKind::Run,
                "benchkeep",
                "vllm",
                "m",
                chrono::Utc::now(),
            );
            m.test_id = id.into();
            m
        };
        let (a, b, c) = (run("a"), run("b"), run("c"));
        let rule = |fires: &'static [&'static str]| {
            move |m: &Metadata| {
                fires.contains(&m.test_id.as_str()).then(|| Stop {
                    rule: "queue_growth".into(),
                    detail: format!("in {}", m.test_id),
                    saturated_at: None,
                })
            }
        };
        assert_eq!(majority(&[&a, &b, &c], rule(&["b"])), None);
        let s = majority(&[&a, &b, &c], rule(&["b", "c"])).expect("two of three");
        assert_eq!(s.detail, "in b (in 2 of 3 repeats)");
        // two of four is not more than half
        let d = run("d");
        assert_eq!(majority(&[&a, &b, &c, &d], rule(&["a", "d"])), None);
        // one run: the rule as it is, its detail unchanged
        assert_eq!(majority(&[&a], rule(&["a"])).unwrap().detail, "in a");
    }

    #[test]
    fn rates_and_queues() {
        let mut s = Scan::default();
        for i in 0..20 {
            s.scheduled.add(i as f64 * 0.1);
            s.finished.add(1.0 + i as f64 * 0.1);
        }
        assert_eq!(s.achieved(10.0), None);
        let mut slow = Scan::default();
        for i in 0..20 {
            slow.scheduled.add(i as f64 * 0.1);
            slow.finished.add(1.0 + i as f64 * 0.2);
        }
        assert_eq!(slow.achieved(10.0).unwrap().rule, "achieved_rate");
        slow.first_q = Mean { n: 5, sum: 500.0 };
        slow.last_q = Mean { n: 5, sum: 1500.0 };
        assert_eq!(slow.queue().unwrap().rule, "queue_growth");
        // Tiny latencies doubling are noise, not a queue.
        slow.first_q = Mean { n: 5, sum: 5.0 };
        slow.last_q = Mean { n: 5, sum: 50.0 };
        assert_eq!(slow.queue(), None);
    }
}
