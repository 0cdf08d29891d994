use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "benchkeep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Built-in OpenAI + Ollama server with set latencies (tests, dry runs, demos).
    Simulate(benchkeep::cli::simulate::SimulateArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => benchkeep::cli::simulate::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
