//! benchkeep: run, record, analyze and compare LLM inference benchmarks, and never lose a
//! result.
//!
//! Data flows one way: a source (a live server, an offline command, a results file) becomes
//! [`schema::RequestRecord`]s, which go to the raw log, are aggregated by [`metrics`] into
//! the `results` of a [`schema::Metadata`] file in the [`store`], from which [`report`]
//! derives summaries and comparisons. The binary is a thin layer over [`cli`].

pub mod analyze;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod demo;
pub mod derive;
pub mod digest;
pub mod error;
pub mod import;
pub mod ingest;
pub mod load;
pub mod metrics;
pub mod record;
pub mod recover;
pub mod redact;
pub mod report;
pub mod schema;
pub mod sim;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod userfile;
