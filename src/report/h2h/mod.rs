//! Head-to-head: runs grouped like for like, with ratios to a baseline platform.
//!
//! Two runs are comparable when they used the same input and the same model family
//! (rules below, also in `docs/reports.md`). For each group, the latest usable run of each
//! platform is put side by side with its ratio to the baseline platform; runs of a
//! platform that has several in the group show their spread. A run that has no partner is
//! listed with the reason, and is never put in a ratio.
//!
//! * **Model family**: the label `family` if set, else the model name; then lowercased, the
//!   org prefix (`google/`) and a `:latest` tag dropped, split on anything that is not a
//!   letter or digit, the tokens `it`, `instruct` and `chat` dropped, and the rest joined:
//!   `google/gemma-3-4b-it`, `gemma3:4b` and `gemma3-4b` are all `gemma34b`.
//! * **Input**: the label `input` if set; else `test.input_sha256` when it names the
//!   requests (it differs from `test.raw_sha256`: an imported results file's own hash says
//!   nothing about the prompts); else the synthetic workload spec in `test.synthetic`.
//!   A run with none of these has an unknown input and is never paired.
//! * **Load**: runs of `benchkeep run` are paired only at the same load (`test.load`:
//!   concurrency, or rate, arrival, burstiness and concurrency cap; and `max_tokens`);
//!   a run at another load is listed unpaired with the reason, never put in a ratio.
//!   Runs that record no load (imported results files) pair with each other.
//! * **Interrupted runs**: each platform shows its latest completed run; an interrupted
//!   run is shown only when the platform has no other, and the group's note marks it.
//! * **Baseline platform**: the one asked for (`--baseline-platform`,
//!   `BENCHKEEP_BASELINE_PLATFORM`), else a platform named `ollama*`, else the
//!   alphabetically first.

mod comparable;
mod group;
mod metrics;

pub use comparable::{
    InputKey, UNKNOWN_INPUT, input_key, load_key, model_family, normalize_family, short_hash, slug,
    truncate, unusable_reason,
};
pub use group::{Entry, Group, HeadToHead, Settings, Spread, Unpaired, build};
pub use metrics::{
    Better, METRICS, MetricDef, fmt_ratio, fmt_value, success_percent, tokens_per_joule,
};
