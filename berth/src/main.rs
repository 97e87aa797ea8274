//! The `berth` binary: a thin shell over the library crates.
//! `berth daemon` runs the engine; the other subcommands talk to it or check
//! the configuration. See ARCHITECTURE.md.

mod cli;
mod client;
mod commands;
mod daemon;
mod logging;
mod notify;

use clap::Parser;

use cli::{Cli, Command, ConfigCommand};

/// Renders every problem of a failed load, one per line.
pub fn render_problems(e: &berth_config::ConfigErrors) -> String {
    e.problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Daemon(args) => {
            if args.validate {
                commands::config_check(&args.config)
            } else {
                let log = logging::init();
                let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
                rt.block_on(daemon::run(args, log))
            }
        }
        Command::Config(ConfigCommand::Check(args)) => commands::config_check(&args),
        Command::Reload(args) => client_runtime().block_on(commands::reload(args)),
        Command::Runtimes(args) => client_runtime().block_on(commands::runtimes(args)),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            0
        }
        Command::Man => commands::man(),
    };
    std::process::exit(code);
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}
