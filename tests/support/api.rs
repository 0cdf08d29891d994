//! Every library (`benchkeep::`) path the integration tests use, re-exported in one place:
//! the tests import from here, so when src/ moves or renames an item, this file is the one
//! to fix. Grouped as the library groups them.

pub mod cli {
    pub use benchkeep::cli::run::plan as plan_run;
    pub use benchkeep::cli::{Cli, Command as CliCommand};
}

pub mod client {
    pub use benchkeep::client::events::EventReader;
    pub use benchkeep::client::lines::LineSplitter;
    pub use benchkeep::client::response::{Acc, Flow};
    pub use benchkeep::client::scan::{Memo, openai_chunk};
    pub use benchkeep::client::sse::SseAssembler;
    pub use benchkeep::client::url::base64;
    pub use benchkeep::client::{ollama, openai};
}

pub mod error {
    pub use benchkeep::error::{exit, exit_code_for};
}

pub mod derive {
    pub use benchkeep::derive::{Settings, refresh, refresh_with, write_report};
}

pub mod digest {
    pub use benchkeep::digest::{hex, sha256_hex};
}

pub mod ingest {
    pub use benchkeep::ingest::{
        DocumentFormat, Format, MAX_LINE_BYTES, Scan, parse_document, scan_file,
    };
}

pub mod load {
    pub use benchkeep::load::{RunOutcome, run};
}

pub mod record {
    pub use benchkeep::record::server::{ManagedServer, ServerCommand, ServerOptions, health_ok};
}

pub mod report {
    pub use benchkeep::report::{
        CHARTS_DIR, COMPARISON_PATH, Derived, HTML_PATH, SUMMARY_PATH, deltas, export, h2h,
    };
}

pub mod schema {
    pub use benchkeep::schema::{
        ErrorKind, HostInfo, MAX_ITL_GAPS, MAX_RAW_LINE_BYTES, Metadata, RequestRecord, Status,
    };
}

pub mod sim {
    pub use benchkeep::sim::{
        Faults, Profile, SimConfig, SimServer, SimStats, TokenModel, start, start_blocking,
    };
}

pub mod store {
    pub use benchkeep::store::Store;
    pub use benchkeep::store::catalog_file;
    pub use benchkeep::store::ids::file_safe;
    pub use benchkeep::store::remote::{Remote, RemoteConfig, packs, sync};
}

pub mod telemetry {
    pub use benchkeep::telemetry::nvml::Nvml;
}
