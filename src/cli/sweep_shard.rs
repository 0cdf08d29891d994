//! `sweep --shard-index I --shard-count N --sweep-id ID`: which part of a sweep this
//! process runs and which sweep it joins, from the flags or from the batch scheduler's
//! environment (Kubernetes Indexed Jobs' `JOB_COMPLETION_INDEX`, Slurm job arrays'
//! `SLURM_ARRAY_*`), read here once (the library never reads the environment).

use clap::Args;

use super::sweep::SweepArgs;
use crate::error::Error;
use crate::load::RunPlan;
use crate::store::ids::file_safe;
use crate::sweep::shard::check_id;
use crate::sweep::{Mode, Shard, Spec};

/// A sweep split across machines (docs/team.md, "Fleets").
#[derive(Debug, Args, Clone, Default)]
pub struct FleetArgs {
    /// Run only this shard's points: point k of the list when k % --shard-count is this
    /// (0-based). Default: $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), else
    /// $SLURM_ARRAY_TASK_ID (Slurm job array).
    #[arg(long, value_name = "I")]
    pub shard_index: Option<String>,
    /// How many shards the sweep is split into. Default: $SLURM_ARRAY_TASK_COUNT in a
    /// Slurm job array; required with JOB_COMPLETION_INDEX (the Job's completions).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<String>,
    /// Create or join the sweep ID (every shard gives the same one); points of this shard
    /// already stored under it are kept and not rerun. Default: $BENCHKEEP_SWEEP_ID, else
    /// in a Slurm array sweep-PLATFORM-MODEL-slurm-$SLURM_ARRAY_JOB_ID.
    #[arg(long, value_name = "ID", conflicts_with = "resume")]
    pub sweep_id: Option<String>,
}

/// The shard and sweep id of `sweep`, from its flags and the process environment; a
/// split of `--auto` or the goodput search (each point chosen from the ones before) is
/// refused unless it splits a `--matrix`'s combinations.
pub fn of(
    args: &SweepArgs,
    base: &RunPlan,
    mode: &Mode,
) -> Result<(Option<Shard>, Option<String>), Error> {
    let env = |k: &str| std::env::var(k).ok();
    let (shard, id) = if args.resume.is_some() {
        // `--resume ID` names the sweep: a shard of it resumes its own points.
        (self::shard(&args.fleet, &env)?, None)
    } else {
        resolve(&args.fleet, &env, &base.platform, &base.model)?
    };
    if let Some(s) = &shard
        && args.servers.matrix.is_empty()
        && !matches!(mode, Mode::List { .. })
    {
        return Err(Error::usage(format!(
            "shard {} (from {}): --auto and the max-goodput search choose each point from the ones before, so they cannot be split; split a --concurrency or --rate list, or the combinations of --matrix",
            s.label(),
            s.source
        )));
    }
    Ok((shard, id))
}

/// One line on stderr saying which shard of which sweep this process runs.
pub fn announce(spec: &Spec, quiet: bool) {
    if let Some(s) = &spec.shard
        && !quiet
    {
        eprintln!(
            "Shard {} (from {}) of sweep {}: points k with k % {} = {}",
            s.label(),
            s.source,
            spec.sweep_id
                .as_deref()
                .or(spec.resume.as_deref())
                .unwrap_or("?"),
            s.count,
            s.index
        );
    }
}

/// The shard and the sweep id this process uses: (shard, id), from the flags and then
/// `env` (a variable's value by name).
pub fn resolve(
    args: &FleetArgs,
    env: &dyn Fn(&str) -> Option<String>,
    platform: &str,
    model: &str,
) -> Result<(Option<Shard>, Option<String>), Error> {
    let shard = shard(args, env)?;
    let id = match (&args.sweep_id, env("BENCHKEEP_SWEEP_ID")) {
        (Some(id), _) => Some(("--sweep-id", id.clone())),
        (None, Some(id)) if !id.is_empty() => Some(("BENCHKEEP_SWEEP_ID", id)),
        _ => None,
    };
    let id = match (id, &shard) {
        (Some((from, id)), _) => {
            check_id(from, &id)?;
            Some(id)
        }
        (None, None) => None,
        (None, Some(s)) => match env("SLURM_ARRAY_JOB_ID").filter(|j| !j.is_empty()) {
            Some(job) => {
                let id = format!(
                    "sweep-{}-{}-slurm-{}",
                    file_safe(platform),
                    file_safe(model),
                    file_safe(&job)
                );
                check_id("SLURM_ARRAY_JOB_ID", &id)?;
                Some(id)
            }
            None => {
                return Err(Error::usage(format!(
                    "shard {} (from {}): the shards of a sweep must share its id; give every shard the same --sweep-id ID (or BENCHKEEP_SWEEP_ID), e.g. the Job's uid (examples/kubernetes/sweep-indexed-job.yaml)",
                    s.label(),
                    s.source
                )));
            }
        },
    };
    Ok((shard, id))
}

fn number(from: &str, v: &str) -> Result<u32, Error> {
    v.trim().parse::<u32>().map_err(|_| {
        Error::usage(format!(
            "{from} {:?}: not a whole number (shards are numbered 0, 1, 2, ...)",
            crate::schema::truncate(v, 40)
        ))
    })
}

fn shard(args: &FleetArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Shard>, Error> {
    let slurm = env("SLURM_ARRAY_TASK_ID").is_some();
    let (index, index_from) = if let Some(i) = &args.shard_index {
        (number("--shard-index", i)?, "--shard-index")
    } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
        (number("JOB_COMPLETION_INDEX", &i)?, "JOB_COMPLETION_INDEX")
    } else if let Some(i) = env("SLURM_ARRAY_TASK_ID") {
        let id = number("SLURM_ARRAY_TASK_ID", &i)?;
        // `--array=1-3` numbers the tasks from 1; `--array=0-9:2` steps by 2.
        let min = match env("SLURM_ARRAY_TASK_MIN") {
            Some(m) => number("SLURM_ARRAY_TASK_MIN", &m)?,
            None => 0,
        };
        let step = match env("SLURM_ARRAY_TASK_STEP") {
            Some(s) => number("SLURM_ARRAY_TASK_STEP", &s)?.max(1),
            None => 1,
        };
        if id < min || (id - min) % step != 0 {
            return Err(Error::usage(format!(
                "SLURM_ARRAY_TASK_ID {id}: not in the array from SLURM_ARRAY_TASK_MIN {min} by SLURM_ARRAY_TASK_STEP {step}; give --shard-index and --shard-count"
            )));
        }
        ((id - min) / step, "SLURM_ARRAY_TASK_ID")
    } else {
        if args.shard_count.is_some() {
            return Err(Error::usage(
                "--shard-count without a shard index: give --shard-index I (or run in a Kubernetes Indexed Job or a Slurm job array)",
            ));
        }
        return Ok(None);
    };
    let (count, count_from) = if let Some(n) = &args.shard_count {
        (number("--shard-count", n)?, "--shard-count")
    } else if let Some(n) = env("SLURM_ARRAY_TASK_COUNT").filter(|_| slurm) {
        (
            number("SLURM_ARRAY_TASK_COUNT", &n)?,
            "SLURM_ARRAY_TASK_COUNT",
        )
    } else {
        return Err(Error::usage(format!(
            "{index_from} {index}: give the number of shards with --shard-count N (in a Kubernetes Indexed Job: its completions)"
        )));
    };
    Shard::new(index, count, index_from, count_from).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(
        args: FleetArgs,
        vars: &[(&str, &str)],
    ) -> Result<(Option<Shard>, Option<String>), Error> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        resolve(&args, &env, "vllm", "org/m")
    }

    fn flags(i: Option<&str>, n: Option<&str>, id: Option<&str>) -> FleetArgs {
        FleetArgs {
            shard_index: i.map(Into::into),
            shard_count: n.map(Into::into),
            sweep_id: id.map(Into::into),
        }
    }

    #[test]
    fn flags_win_over_the_environment() {
        let (s, id) = with(
            flags(Some("2"), Some("3"), Some("fleet-1")),
            &[("JOB_COMPLETION_INDEX", "0")],
        )
        .unwrap();
        let s = s.unwrap();
        assert_eq!(
            (s.index, s.count, s.source.as_str()),
            (2, 3, "--shard-index")
        );
        assert_eq!(id.as_deref(), Some("fleet-1"));
        assert_eq!(with(FleetArgs::default(), &[]).unwrap(), (None, None));
    }

    #[test]
    fn kubernetes_indexed_job() {
        let (s, id) = with(
            flags(None, Some("4"), None),
            &[
                ("JOB_COMPLETION_INDEX", "3"),
                ("BENCHKEEP_SWEEP_ID", "uid-9"),
            ],
        )
        .unwrap();
        assert_eq!(s.unwrap().source, "JOB_COMPLETION_INDEX");
        assert_eq!(id.as_deref(), Some("uid-9"));
        // No count, or no shared id: exit 2 saying what to give.
        let e = with(FleetArgs::default(), &[("JOB_COMPLETION_INDEX", "1")]).unwrap_err();
        assert!(e.to_string().contains("--shard-count"), "{e}");
        let e = with(
            flags(None, Some("2"), None),
            &[("JOB_COMPLETION_INDEX", "1")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("--sweep-id"), "{e}");
        let e = with(
            flags(None, Some("2"), None),
            &[("JOB_COMPLETION_INDEX", "x")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX \"x\""), "{e}");
        let e = with(
            flags(None, Some("2"), Some("a")),
            &[("JOB_COMPLETION_INDEX", "2")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX 2"), "{e}");
    }

    #[test]
    fn slurm_array() {
        let env = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_JOB_ID", "777"),
        ];
        let (s, id) = with(FleetArgs::default(), &env).unwrap();
        let s = s.unwrap();
        assert_eq!((s.index, s.count), (2, 3));
        assert_eq!(id.as_deref(), Some("sweep-vllm-org-m-slurm-777"));
        let e = with(
            FleetArgs::default(),
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "nan"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_COUNT"), "{e}");
    }

    #[test]
    fn bad_flags_exit_2_naming_the_flag() {
        for (f, word) in [
            (flags(Some("3"), Some("3"), Some("a")), "--shard-index 3"),
            (flags(Some("0"), Some("0"), Some("a")), "--shard-count 0"),
            (flags(Some("-1"), Some("2"), Some("a")), "--shard-index"),
            (flags(None, Some("2"), Some("a")), "--shard-count"),
            (flags(Some("0"), Some("2"), Some("a/b")), "--sweep-id"),
        ] {
            let e = with(f, &[]).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{e}");
            assert!(e.to_string().contains(word), "{word}: {e}");
        }
    }
}
