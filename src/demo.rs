//! `benchkeep demo`: the README's first command. Two built-in simulators (a vLLM-like and
//! an Ollama-like server) start in-process on 127.0.0.1; the same small synthetic workload
//! runs against each through the real `run` path into the store; the comparison of the two
//! runs is printed. About 10-15 seconds, nothing outside the machine is touched.

use std::time::Duration;

use anyhow::Result;

use crate::client::{Api, BaseUrl};
use crate::load::source::{Input, Synthetic};
use crate::load::{LoadSpec, RunOutcome, RunPlan};
use crate::sim::{self, Profile, SimConfig};
use crate::store::Store;

/// The demo's workload.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub requests: u64,
    pub concurrency: u32,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub quiet: bool,
    /// The command line, already redacted, for `source.command`.
    pub command: Option<String>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            requests: 32,
            concurrency: 8,
            input_tokens: 128,
            output_tokens: 32,
            quiet: false,
            command: None,
        }
    }
}

/// The two servers the demo compares: (platform, profile, model).
pub const SERVERS: [(&str, Profile, &str); 2] = [
    (
        "vllm-serve",
        Profile::Vllm,
        "meta-llama/Llama-3.2-3B-Instruct",
    ),
    ("ollama", Profile::Ollama, "llama3.2:3b"),
];

/// Run the demo into `store`; returns both runs, vLLM first.
pub async fn demo(store: &Store, opts: &DemoOptions) -> Result<Vec<RunOutcome>> {
    let mut outcomes = Vec::new();
    for (platform, profile, model) in SERVERS {
        let mut config = SimConfig::for_profile(profile);
        config.model = model.to_string();
        if profile == Profile::Ollama {
            // OLLAMA_NUM_PARALLEL=4, as a tuned Ollama would run.
            config.num_parallel = 4;
        }
        let server = sim::start(config).await?;
        if !opts.quiet {
            eprintln!(
                "demo: {platform}-like simulator on {} serving {model}: {} requests, {} in flight, {} prompt / {} output tokens",
                server.base_url(),
                opts.requests,
                opts.concurrency,
                opts.input_tokens,
                opts.output_tokens
            );
        }
        let plan = plan(platform, model, &server.base_url(), opts)?;
        let outcome = crate::load::run(store, plan).await;
        server.shutdown().await;
        outcomes.push(outcome?);
    }
    Ok(outcomes)
}

fn plan(platform: &str, model: &str, base_url: &str, opts: &DemoOptions) -> Result<RunPlan> {
    let base = BaseUrl::parse(base_url).map_err(anyhow::Error::msg)?;
    let input = Input::Synthetic(Synthetic::fixed(opts.input_tokens, opts.output_tokens, 0));
    let mut plan = RunPlan::new(
        platform,
        model,
        base,
        Api::default_for_platform(platform),
        input,
    )
    .with_load(LoadSpec {
        concurrency: Some(opts.concurrency),
        num_requests: Some(opts.requests),
        // One warm-up request loads the model, so the comparison is of serving speed.
        warmup: 1,
        ..LoadSpec::default()
    });
    plan.client.timeout = Duration::from_secs(60);
    plan.client.idle_timeout = Duration::from_secs(30);
    plan.labels.insert("source".to_string(), "demo".to_string());
    plan.command = opts.command.clone();
    plan.quiet = opts.quiet;
    plan.grace = Duration::from_secs(3);
    Ok(plan)
}
