//! `benchkeep sweep`: many runs of one plan under a rising load, each a normal run in the
//! store linked by `sweep.id`, resumable point by point.
//!
//! [`run`] probes the server once, reserves the sweep's id ([`resume::reserve`]) or loads
//! the stored points of the sweep to resume ([`resume::stored_points`]), then asks
//! [`steps::next`] for one point after another: a stored point is taken as it is, a
//! missing one is run by [`crate::load::run`] with the sweep's link in its metadata. After
//! each point the early-stop rules ([`saturation`]) or the goodput verdict ([`goodput`])
//! are recorded in the point's `sweep` and the caller is told (it prints and refreshes the
//! derived files, once per point).

pub mod goodput;
pub mod plan;
pub mod repeats;
pub mod resume;
pub mod saturation;
pub mod shard;
mod steps;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use serde_json::{Value, json};

pub use plan::{Axis, Combination, Mode, Rules, Spec, parse_values};
pub use saturation::Stop;
pub use shard::Shard;

use crate::schema::{Metadata, ServerInfo, SweepLink};
use crate::store::Store;
use steps::Step;

/// One point of a sweep as it ended.
#[derive(Debug, Clone)]
pub struct Point {
    pub index: u32,
    /// `point`, `synchronous`, `throughput`, `goodput`.
    pub role: String,
    pub axis: Axis,
    pub value: f64,
    /// The run of the point (the last repeat of a point run several times).
    pub meta: Metadata,
    /// Every repeat of the point, by repeat index (`meta` alone without `--repeat`).
    pub repeats: Vec<Metadata>,
    /// The point's figures: the means across its repeats ([`repeats::summary`]; `meta`
    /// itself for one repeat). Never stored.
    pub summary: Metadata,
    /// Stored by an earlier run of this sweep and taken as it is (`--resume`).
    pub resumed: bool,
    /// The early-stop rule this point fired.
    pub stop: Option<Stop>,
    /// A goodput probe's figures and verdict.
    pub probe: Option<goodput::Probe>,
}

/// A finished (or stopped) sweep.
#[derive(Debug)]
pub struct Outcome {
    pub id: String,
    pub points: Vec<Point>,
    /// Stopped by SIGINT/SIGTERM: `--resume` continues it.
    pub interrupted: bool,
    /// The max-goodput search's answer.
    pub answer: Option<goodput::Answer>,
    /// Why the plan ended before its last point without a rule firing (`--auto` without
    /// headroom).
    pub note: Option<String>,
    /// Points a crash had left `running`, finished by `recover` on `--resume`.
    pub recovered: Vec<String>,
    /// Writing the store failed (exit 4); the points before are kept.
    pub store_error: Option<anyhow::Error>,
}

/// Run (or resume) a sweep. `on_point` is called once per point, stored or new.
pub async fn run(
    store: &Store,
    spec: &Spec,
    on_point: &mut dyn FnMut(&Point) -> Result<()>,
) -> Result<Outcome> {
    let fingerprint = spec.fingerprint();
    let stop_flag = watch_signals()?;
    let mut server: Option<ServerInfo> = None;
    let shard = spec.shard.as_ref();
    let (id, mut stored, recovered) = match (&spec.resume, &spec.sweep_id) {
        (Some(id), _) => {
            let (points, recovered) = resume::own_points(store, id, &fingerprint, shard, false)?;
            (id.clone(), points, recovered)
        }
        (None, Some(id)) => {
            // A fleet's shards share the id: claim it unless another shard did, then take
            // this shard's points a crashed or retried run of it stored.
            let (points, recovered) = resume::own_points(store, id, &fingerprint, shard, true)?;
            resume::claim(store, id, &fingerprint, spec.base.command.as_deref())?;
            (id.clone(), points, recovered)
        }
        (None, None) => {
            server = Some(crate::load::probe_server(&spec.base).await?);
            let id = resume::reserve(
                store,
                &spec.base.platform,
                &spec.base.model,
                &fingerprint,
                spec.base.command.as_deref(),
            )?;
            (id, Default::default(), Vec::new())
        }
    };
    let mut out = Outcome {
        id: id.clone(),
        points: Vec::new(),
        interrupted: false,
        answer: None,
        note: None,
        recovered,
        store_error: None,
    };
    loop {
        let step = match steps::next(spec, &out.points) {
            Step::Run(s) => s,
            Step::Done { answer, note } => {
                out.answer = answer;
                out.note = note;
                break;
            }
        };
        let count = spec.repeat.max(1);
        let have = stored.remove(&step.index).unwrap_or_default();
        for m in &have {
            steps::check_stored(m, &step)?;
        }
        let mut slots = repeats::slots(have, count);
        let resumed = slots.iter().all(Option::is_some);
        for r in 0..count {
            if slots[r as usize].is_some() {
                continue;
            }
            if stop_flag.load(Ordering::SeqCst) {
                out.interrupted = true;
                break;
            }
            if server.is_none() {
                server = Some(crate::load::probe_server(&spec.base).await?);
            }
            let mut plan = spec.base.clone().with_load(step.load.clone());
            plan.server = server.clone();
            plan.sweep = Some(link(&id, &step, &fingerprint, spec));
            plan.repeat = (count > 1).then(|| repeats::link(&id, step.index, r, count));
            let o = crate::load::run(store, plan).await?;
            if let Some(e) = o.store_error {
                out.store_error = Some(e);
                break;
            }
            slots[r as usize] = Some(o.metadata);
            if o.interrupted {
                out.interrupted = true;
                break;
            }
        }
        let runs: Vec<Metadata> = slots.into_iter().flatten().collect();
        if out.store_error.is_some() || runs.is_empty() {
            break;
        }
        let meta = runs.last().expect("not empty").clone();
        let summary = repeats::summary(&runs);
        let mut point = Point {
            index: step.index,
            role: step.role.to_string(),
            axis: step.axis,
            value: step.value,
            meta,
            repeats: runs,
            summary,
            resumed,
            stop: None,
            probe: None,
        };
        if let Err(e) = judge(store, spec, &mut point, &out.points) {
            out.store_error = Some(e);
            out.points.push(point);
            break;
        }
        on_point(&point)?;
        let stop = point.stop.is_some();
        out.points.push(point);
        if stop || out.interrupted {
            break;
        }
    }
    Ok(out)
}

/// The point's link: id, index, axis, value, role, and the extra keys `mode` and
/// `plan_sha256` (documented in the metadata schema).
fn link(id: &str, step: &steps::Planned, fingerprint: &str, spec: &Spec) -> SweepLink {
    let mut extra = serde_json::Map::new();
    extra.insert("mode".into(), json!(steps::mode_name(&spec.mode)));
    extra.insert("plan_sha256".into(), json!(fingerprint));
    if let Some(sh) = &spec.shard {
        extra.insert("shard_source".into(), json!(sh.source));
        // How many points the whole plan has, so that the report can tell a shard that
        // ran all of its points from one that was cut off.
        if let Mode::List { values, .. } = &spec.mode {
            extra.insert("planned".into(), json!(values.len()));
        }
    }
    if let Some(c) = &spec.combination {
        extra.insert(
            "matrix".into(),
            match &c.shard {
                Some(sh) => json!({"id": c.matrix_id, "index": c.index, "shard": sh}),
                None => json!({"id": c.matrix_id, "index": c.index}),
            },
        );
    }
    SweepLink {
        id: id.to_string(),
        index: step.index,
        axis: step.axis.name().to_string(),
        value: step.value,
        role: step.role.to_string(),
        settings: spec
            .combination
            .as_ref()
            .map(|c| c.settings.iter().cloned().collect())
            .unwrap_or_default(),
        shard: spec.shard.as_ref().map(shard::Shard::label),
        extra,
    }
}

/// Apply the early-stop rules (or the goodput verdict) to a point, and record the result in
/// its `sweep.stop` (`sweep.goodput`) unless it is there already.
fn judge(store: &Store, spec: &Spec, point: &mut Point, earlier: &[Point]) -> Result<()> {
    let (key, value) = if let Mode::Goodput { target, .. } = spec.mode {
        let probe = steps::probe_of(&point.meta, point.value, earlier);
        point.probe = Some(probe);
        ("goodput", probe.to_json(target))
    } else {
        fn judged(p: &Point) -> saturation::Judged<'_> {
            saturation::Judged {
                meta: &p.summary,
                axis: p.axis,
                value: p.value,
                role: if p.role == "throughput" {
                    "throughput"
                } else {
                    "point"
                },
            }
        }
        let before: Vec<_> = earlier.iter().map(judged).collect();
        let repeats: Vec<&Metadata> = point.repeats.iter().collect();
        let Some(stop) =
            saturation::check_repeats(store, &spec.rules, &judged(point), &repeats, &before)
        else {
            return Ok(());
        };
        let v = stop.to_json();
        point.stop = Some(stop);
        ("stop", v)
    };
    let Some(link) = point.meta.sweep.as_mut() else {
        return Ok(());
    };
    if link.extra.get(key) == Some(&value) {
        return Ok(());
    }
    link.extra.insert(key.into(), value);
    store.replace(&point.meta)
}

/// SIGINT/SIGTERM between points: no next point starts (a point running then is stopped
/// by its own handler in [`crate::load::run`]).
fn watch_signals() -> Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = Arc::new(AtomicBool::new(false));
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot handle SIGINT: {e}"))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("cannot handle SIGTERM: {e}"))?;
    let f = flag.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            f.store(true, Ordering::SeqCst);
        }
    });
    Ok(flag)
}

/// A point's figures for tables and `--json` (the means across its repeats, with their
/// repeats and t-intervals, for a point run several times).
pub fn point_json(p: &Point) -> Value {
    let r = &p.summary.results;
    let lat = r.latency_ms.as_ref();
    let total = r.success_count + r.failure_count;
    let mut v = json!({
        "index": p.index,
        "role": p.role,
        "axis": p.axis.name(),
        "value": p.value,
        "test_id": p.meta.test_id,
        "status": p.summary.status.to_string(),
        "resumed": p.resumed,
        "requests": total,
        "success_percent": if total == 0 { 0.0 } else { crate::schema::round(100.0 * r.success_count as f64 / total as f64, 2) },
        "requests_per_sec": r.throughput_requests_per_sec,
        "output_tokens_per_sec": r.output_tokens_per_sec,
        "total_time_seconds": r.total_time_seconds,
        "ttft_p50_ms": lat.and_then(|l| l.ttft.as_ref()).map(|s| s.p50),
        "ttft_p99_ms": lat.and_then(|l| l.ttft.as_ref()).map(|s| s.p99),
        "tpot_p50_ms": lat.and_then(|l| l.tpot.as_ref()).map(|s| s.p50),
        "goodput_requests_per_sec": r.goodput.as_ref().map(|g| g.requests_per_sec),
        "stop": p.stop.as_ref().map(Stop::to_json),
        "probe": p.probe.as_ref().and_then(|pr| {
            p.meta.sweep.as_ref().and_then(|s| s.extra.get("goodput")).cloned().or_else(|| Some(json!({"attainment": pr.attainment()})))
        }),
    });
    if p.repeats.len() > 1 {
        let runs: Vec<&Metadata> = p.repeats.iter().collect();
        let curve = crate::metrics::sweep::Point::of_repeats(&runs);
        v["repeats"] = json!(p.repeats.len());
        v["repeat_test_ids"] = json!(p.repeats.iter().map(|m| &m.test_id).collect::<Vec<_>>());
        v["intervals"] = json!(curve.map(|c| c.intervals).unwrap_or_default());
    }
    v
}
