//! Load generation: what a run is ([`plan`]), where requests come from ([`source`];
//! synthetic prompts [`synthetic`], their lengths [`lengths`], sized by the server's count
//! [`calibrate`] or a local tokenizer file [`tokenizer`]), when they are due ([`schedule`]), the run itself ([`driver`]), the raw
//! log ([`writer`]), the server's `/metrics` (`scrape`), and what the user
//! sees ([`progress`]; the end-of-run text is [`crate::report::detail::run_summary`]).
//!
//! Memory stays bounded in the number of requests and tokens: finished records go straight
//! to the raw log through a bounded channel, and the statistics live in
//! [`crate::metrics::Aggregator`], which bounds its samples.

pub mod calibrate;
pub mod driver;
pub mod lengths;
mod loops;
pub mod plan;
pub mod progress;
pub mod schedule;
mod scrape;
pub mod source;
pub mod stall;
pub mod synthetic;
pub mod tokenizer;
pub mod writer;

pub use driver::{RunOutcome, probe_server, run};
pub use plan::{GpuPlan, LoadSpec, RunPlan};
