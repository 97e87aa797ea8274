//! Command-line definitions (clap). Flags mirror dockerd's where dockerd has them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "A container engine with a runtime layer operators can trust", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the Docker Engine API on a unix socket, containers through containerd.
    Daemon(DaemonArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask the running daemon to reload its configuration, and show what changed.
    Reload(ReloadArgs),
    /// List the runtimes of the running daemon.
    Runtimes(RuntimesArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of berth and its subcommands.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration (file, drop-ins and flags) and print every problem; exit 1 if any.
    Check(ConfigArgs),
}

/// The flags that make up the configuration (shared by `daemon` and `config check`).
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Daemon configuration file; `runtimes.d/*.json` beside it holds drop-in runtimes.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Register an additional OCI runtime as NAME=PATH (repeatable).
    #[arg(long, value_name = "NAME=PATH")]
    pub add_runtime: Vec<String>,
    /// Default OCI runtime for containers [default: runc].
    #[arg(long, value_name = "NAME")]
    pub default_runtime: Option<String>,
    /// Root directory of persistent state [default: /var/lib/berth].
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Root directory of execution state [default: /run/berth].
    #[arg(long, value_name = "DIR")]
    pub exec_root: Option<PathBuf>,
    /// Socket to listen on, unix:///path (repeatable) [default: unix:///run/berth/berth.sock].
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Use this containerd socket instead of starting berth's own containerd.
    #[arg(long, value_name = "SOCKET")]
    pub containerd: Option<PathBuf>,
    /// Enable debug logging.
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Log level: debug, info, warn, error, fatal [default: info].
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl ConfigArgs {
    pub fn to_flags(&self) -> berth_config::Flags {
        berth_config::Flags {
            config_file: self.config_file.clone(),
            add_runtime: self.add_runtime.clone(),
            default_runtime: self.default_runtime.clone(),
            data_root: self.data_root.clone(),
            exec_root: self.exec_root.clone(),
            hosts: self.hosts.clone(),
            containerd: self.containerd.clone(),
            debug: self.debug.then_some(true),
            log_level: self.log_level.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Validate the configuration and exit.
    #[arg(long)]
    pub validate: bool,
}

/// Where the CLI finds the daemon.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Daemon socket to connect to.
    #[arg(short = 'H', long = "host", env = "BERTH_HOST", default_value = berth_config::load::DEFAULT_HOST, value_name = "HOST")]
    pub host: String,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Validate and show the diff without applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the daemon's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RuntimesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<RuntimesAction>,
}

#[derive(Debug, Subcommand)]
pub enum RuntimesAction {
    /// Print the runtime table for a cluster: containerd CRI runtime handlers
    /// (TOML) or Kubernetes RuntimeClass objects (YAML).
    Export {
        #[arg(long, value_parser = ["containerd", "runtimeclass"])]
        format: String,
    },
}
