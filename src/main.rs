use callcap::analyze::{self, UsageError};
use callcap::cli::{Cli, Cmd, ColorChoice};
use callcap::commands;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.color {
        ColorChoice::Always => crossterm::style::force_color_output(true),
        ColorChoice::Never => crossterm::style::force_color_output(false),
        ColorChoice::Auto => {}
    }
    let result = match cli.command {
        Some(Cmd::Analyze(args)) => {
            let archive = args.archive;
            analyze::run(&args).and_then(|p| commands::archive_if(archive, Some(p)))
        }
        Some(cmd) => commands::run(Some(cmd)),
        None => commands::run(None),
    };
    match result {
        Ok(Some(path)) => {
            // The bundle's path is always the last line of stdout.
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            // A bundle that lacks something was still written: its path
            // stays the last line of stdout.
            if let Some(inc) = e.downcast_ref::<callcap::bundle::export::Incomplete>() {
                println!("{}", inc.path.display());
            }
            eprintln!("callcap: {e}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
