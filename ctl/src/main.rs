//! portctl: the command-line client of portctl.

mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "portctl",
    version,
    about = "Attach, detach and inspect portable service images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--json=` formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum JsonFormat {
    Pretty,
    Short,
}

#[derive(Subcommand)]
enum Command {
    /// Check an image against the portable-image requirements, offline (no daemon needed).
    Validate(validate::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCTL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Engine errors carry their causes in their messages already.
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
