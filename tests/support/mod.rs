//! The harness the integration tests share.

pub mod record;
pub mod report;
pub mod run;
pub mod sim;
