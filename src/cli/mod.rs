//! Command-line glue: one module per subcommand, each turning clap flags into the
//! library's plain configuration.

pub mod simulate;
