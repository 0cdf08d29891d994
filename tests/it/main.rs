//! benchkeep's integration tests, as one test binary (`cargo test --test it`): one crate to
//! build and link instead of one per file. Each module is one area; `crate::support` (in
//! tests/support/) is the harness they share.

#[path = "../support/mod.rs"]
mod support;

mod analyze_cli;
mod archive_cli;
mod bundle;
mod client_fuzz;
mod crash_matrix;
mod decide;
mod demo_cli;
mod docs_examples;
mod document_import;
mod export_trackers;
mod gate_cli;
mod guide;
mod import_formats;
mod import_guidellm_text;
mod import_real_vllm;
mod import_safety;
mod import_side_copies;
mod import_sweep_h2h;
mod ingest_analyze;
mod ingest_errors;
mod ingest_formats;
mod ingest_fuzz;
mod ingest_hostile;
mod ingest_proptest;
mod layers;
mod process_identity;
mod push_cli;
#[cfg(feature = "external-it")]
mod push_mlflow;
mod query_cli;
mod record_batch;
mod record_failure;
mod record_matrix;
mod record_secrets;
mod record_secrets_forms;
mod record_signal;
mod recover_cli;
mod repeat_cli;
mod report_cli;
mod report_h2h;
mod report_injection;
mod report_snapshots;
mod run_bounds;
mod run_cli;
mod run_e2e;
mod run_gpu;
mod run_interrupt;
mod run_secrets;
mod schema_contract;
mod server_cmd;
mod sim_cli;
mod sim_endpoints;
mod sim_faults;
mod sim_fidelity;
mod sim_timing;
mod since_and_labels;
mod store_cli;
mod store_faults;
mod store_never_follows;
mod sweep_analysis;
mod sweep_errors;
mod sweep_matrix;
mod sweep_report;
mod sweep_resume;
mod sweep_run;
mod telemetry_smi;
mod transcript_replay;
mod trust_gpu;
mod trust_h2h;
mod trust_run;
mod unfinished_and_imported;
