//! Tuning matrices: `--matrix NAME=V1,V2` specs, their combinations (every value of every
//! axis, the first axis varying slowest), `{NAME}` placeholders filled into a command line,
//! the matrix id, and the loop that records one run per combination, linked by
//! `sweep: {id, index, axis: "matrix", role: "combination", settings}`.
//!
//! A failing combination never stops the others; a Ctrl-C or SIGTERM does (the current
//! run is recorded as `interrupted`, the rest are not started).

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use super::{RecordRequest, Recorded};
use crate::error::Error;
use crate::schema::{Status, SweepLink};
use crate::store::{Store, ids};

/// Most combinations one matrix may have.
pub const MAX_COMBINATIONS: usize = 256;

/// One `--matrix NAME=V1,V2,...` axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

/// A combination: each axis name with its value, in the order of the `--matrix` flags.
pub type Settings = Vec<(String, String)>;

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse one `--matrix NAME=V1,V2` spec.
pub fn parse_axis(spec: &str) -> Result<Axis, Error> {
    let bad = |why: &str| {
        Error::usage(format!(
            "--matrix {spec:?}: {why}; write NAME=V1,V2,... (e.g. --matrix max_num_seqs=64,128)"
        ))
    };
    let (name, values) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let name = name.trim();
    if !is_name(name) {
        return Err(bad(
            "the name must be letters, digits and `_`, not starting with a digit",
        ));
    }
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(bad("an empty value"));
    }
    if let Some(v) = values.iter().find(|v| v.contains(['{', '}'])) {
        return Err(bad(&format!("the value {v:?} holds a brace")));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(bad(&format!("the value {v:?} is given twice")));
        }
    }
    Ok(Axis {
        name: name.to_string(),
        values,
    })
}

/// Every combination of the axes (the first axis varies slowest). Errors: a name given
/// twice, or more than [`MAX_COMBINATIONS`].
pub fn combinations(axes: &[Axis]) -> Result<Vec<Settings>, Error> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.name == a.name) {
            return Err(Error::usage(format!(
                "--matrix {}: the name is given twice; list all its values in one --matrix {}=V1,V2",
                a.name, a.name
            )));
        }
    }
    let total = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|n| *n <= MAX_COMBINATIONS)
        .ok_or_else(|| {
            Error::usage(format!(
                "--matrix: {} make more than {MAX_COMBINATIONS} combinations; give fewer values",
                axes.iter()
                    .map(|a| format!("{} values of {}", a.values.len(), a.name))
                    .collect::<Vec<_>>()
                    .join(" x ")
            ))
        })?;
    let mut out: Vec<Settings> = vec![Vec::new()];
    for a in axes {
        out = out
            .into_iter()
            .flat_map(|s| {
                a.values.iter().map(move |v| {
                    let mut s = s.clone();
                    s.push((a.name.clone(), v.clone()));
                    s
                })
            })
            .collect();
    }
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// The `{NAME}` placeholders in `text` (a `${NAME}` is the shell's, left alone), with
/// their byte ranges.
fn placeholders(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find('{') {
        let start = i + off;
        i = start + 1;
        if start > 0 && bytes[start - 1] == b'$' {
            continue;
        }
        if let Some(len) = text[start + 1..].find('}') {
            let name = &text[start + 1..start + 1 + len];
            if is_name(name) {
                out.push((start..start + len + 2, name));
                i = start + len + 2;
            }
        }
    }
    out
}

/// Fill the placeholders of `text` with the combination's values.
pub fn fill(text: &str, settings: &Settings) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, name) in placeholders(text) {
        if let Some((_, v)) = settings.iter().find(|(n, _)| n == name) {
            out.push_str(&text[at..range.start]);
            out.push_str(v);
            at = range.end;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// Check a command line (and the paths given beside it) against the axes: every
/// placeholder names an axis, and every axis is used in the command.
pub fn check_placeholders(command: &[String], paths: &[&str], axes: &[Axis]) -> Result<(), Error> {
    let mut used = std::collections::BTreeSet::new();
    for text in command
        .iter()
        .map(String::as_str)
        .chain(paths.iter().copied())
    {
        for (_, name) in placeholders(text) {
            if !axes.iter().any(|a| a.name == name) {
                return Err(Error::usage(format!(
                    "the command holds the placeholder {{{name}}}, but no --matrix {name}=... is given; add it, or write ${{{name}}} for a shell variable"
                )));
            }
            if command.iter().any(|c| c == text) {
                used.insert(name.to_string());
            }
        }
    }
    if let Some(a) = axes.iter().find(|a| !used.contains(&a.name)) {
        return Err(Error::usage(format!(
            "--matrix {}: the command never uses {{{}}}; put it where the value goes, e.g. --{} {{{}}}",
            a.name,
            a.name,
            a.name.replace('_', "-"),
            a.name
        )));
    }
    Ok(())
}

/// A setting's value for `config`: a number when it reads as one, else the text.
pub fn config_value(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.to_string())),
        _ => Value::String(v.to_string()),
    }
}

/// A matrix id `matrix-{platform}-{model}-{date}[-N]` no run in the store uses yet.
pub fn new_id(store: &Store, platform: &str, model: &str, date: &str) -> Result<String> {
    let taken: std::collections::BTreeSet<String> = store
        .load_all()?
        .runs
        .into_iter()
        .filter_map(|m| m.sweep.map(|s| s.id))
        .collect();
    let base = format!(
        "matrix-{}-{}-{date}",
        ids::file_safe(platform),
        ids::file_safe(model)
    );
    (1..=100_000u32)
        .map(|n| ids::candidate(&base, n))
        .find(|id| !taken.contains(id))
        .ok_or_else(|| Error::StoreIo(format!("no free matrix id for {base}")).into())
}

/// The link a combination's run carries.
pub fn link(id: &str, index: usize, settings: &Settings) -> SweepLink {
    SweepLink {
        id: id.to_string(),
        index: index as u32,
        axis: "matrix".into(),
        value: index as f64,
        role: "combination".into(),
        settings: settings.iter().cloned().collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

/// What became of one combination.
#[derive(Debug)]
pub struct Outcome {
    pub index: usize,
    pub settings: Settings,
    /// The recorded run, or why nothing could be recorded (e.g. the program is missing).
    pub run: Result<Recorded, String>,
}

/// Record each combination's request in turn (each carries its `sweep` link).
/// `on_done` sees each outcome as it ends. Stops after a run that was interrupted, and
/// before the next one when a Ctrl-C or SIGTERM came between two runs. `Err` only when the
/// store could not be read or written before anything ran.
pub fn record_all(
    store: &Store,
    combos: Vec<(Settings, RecordRequest)>,
    mut on_done: impl FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let between = super::child::SignalGuard::install().map_err(|e| {
        anyhow::Error::new(e).context("cannot install the signal handlers that catch Ctrl-C")
    })?;
    let mut outcomes = Vec::new();
    for (index, (settings, req)) in combos.into_iter().enumerate() {
        if between.received().is_some() {
            break;
        }
        let run = super::record(store, req).map_err(|e| format!("{e:#}"));
        let stop = matches!(&run, Ok(r) if r.metadata.status == Status::Interrupted);
        let outcome = Outcome {
            index,
            settings,
            run,
        };
        on_done(&outcome);
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    drop(between);
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes(specs: &[&str]) -> Vec<Axis> {
        specs.iter().map(|s| parse_axis(s).unwrap()).collect()
    }

    #[test]
    fn specs_parse_or_name_the_flag() {
        assert_eq!(
            parse_axis("max_num_seqs=64, 128").unwrap(),
            Axis {
                name: "max_num_seqs".into(),
                values: vec!["64".into(), "128".into()]
            }
        );
        for bad in ["x", "=1", "1x=2", "a-b=1", "a=", "a=1,,2", "a=1,1", "a={b}"] {
            let e = parse_axis(bad).unwrap_err().to_string();
            assert!(e.starts_with("--matrix"), "{bad}: {e}");
        }
    }

    #[test]
    fn combinations_vary_the_first_axis_slowest() {
        let c = combinations(&axes(&["a=1,2", "b=x,y,z"])).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[0],
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert_eq!(
            c[5],
            vec![("a".into(), "2".into()), ("b".into(), "z".into())]
        );
        let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let spec_a = format!("a={}", many.join(","));
        let spec_b = format!("b={}", many.join(","));
        let e = combinations(&axes(&[&spec_a, &spec_b])).unwrap_err();
        assert!(e.to_string().contains("more than 256"), "{e}");
        assert!(combinations(&axes(&["a=1", "a=2"])).is_err());
    }

    #[test]
    fn placeholders_fill_and_check() {
        let s: Settings = vec![("gmu".into(), "0.9".into()), ("len".into(), "2048".into())];
        assert_eq!(
            fill("--x={gmu} {len}/{gmu} ${HOME} {\"a\":1}", &s),
            "--x=0.9 2048/0.9 ${HOME} {\"a\":1}"
        );
        let a = axes(&["gmu=0.9", "len=2048"]);
        let cmd: Vec<String> = ["run", "--g", "{gmu}", "--l={len}", "sh", "${PATH}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        check_placeholders(&cmd, &["out-{gmu}.jsonl"], &a).unwrap();
        let e = check_placeholders(&cmd, &["out-{nope}.jsonl"], &a).unwrap_err();
        assert!(e.to_string().contains("{nope}"), "{e}");
        // Used only in a path, not in the command: the command would be the same each time.
        let e = check_placeholders(&cmd[..3], &["o-{len}.jsonl"], &a).unwrap_err();
        assert!(e.to_string().starts_with("--matrix len"), "{e}");
    }

    #[test]
    fn config_values_are_numbers_when_they_can_be() {
        assert_eq!(config_value("64"), serde_json::json!(64));
        assert_eq!(config_value("0.85"), serde_json::json!(0.85));
        assert_eq!(config_value("fp8"), serde_json::json!("fp8"));
        assert_eq!(config_value("nan"), serde_json::json!("nan"));
    }
}
