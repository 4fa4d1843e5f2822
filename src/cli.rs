//! Command-line interface (clap derive). Definitions only: `main.rs` acts on them.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  netalias serve                                   serve the embedded default on 127.0.0.1:1053
  netalias serve --config config/netalias.toml     serve a file; edits and SIGHUP reload it
  netalias serve --listen 127.0.0.1:5353 --listen [::1]:5353 --ttl 5
  NETALIAS_LOG=debug netalias serve                more logging (any tracing filter works)
  netalias serve --docker --listen 127.0.0.1:1053  also serve every user-defined Docker network
  netalias serve --docker --attach-bridges         and answer on each bridge gateway, port 53
  netalias check-config config/netalias.toml       exit 0 if the file is good
  kdig @127.0.0.1 -p 1053 app                      ask it: three web servers, in rotation";

#[derive(Debug, Parser)]
#[command(name = "netalias", version, about = "DNS for Docker container networks: names, aliases and exact round robin", after_help = EXAMPLES)]
pub struct Cli {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, global = true, env = "NETALIAS_LOG", default_value = "info")]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer DNS queries over UDP and TCP.
    #[command(after_help = EXAMPLES)]
    Serve(ServeArgs),
    /// Validate a config file: exit 0 if good, else print file, line and field and exit 1.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without it, the embedded default (config/netalias.toml) is served.
    #[arg(long, short, env = "NETALIAS_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on, UDP and TCP; repeat for more. Replaces the config's `listen`.
    #[arg(long, env = "NETALIAS_LISTEN", value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,

    /// TTL of local answers in seconds. Replaces the config's `ttl`.
    #[arg(long, env = "NETALIAS_TTL")]
    pub ttl: Option<u32>,

    /// Follow the Docker engine and serve its user-defined networks (config: docker.enabled).
    #[arg(long, env = "NETALIAS_DOCKER")]
    pub docker: bool,

    /// Docker engine address, e.g. unix:///var/run/docker.sock (default: DOCKER_HOST or the local socket).
    #[arg(long, env = "NETALIAS_DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Keep containers whose healthcheck fails in rotation.
    #[arg(long, env = "NETALIAS_INCLUDE_UNHEALTHY")]
    pub include_unhealthy: bool,

    /// Also listen on the gateway IP of every user-defined bridge (needs --docker).
    #[arg(long, env = "NETALIAS_ATTACH_BRIDGES")]
    pub attach_bridges: bool,

    /// Port for the bridge gateway listeners (config: docker.bridge_port, default 53).
    #[arg(long, env = "NETALIAS_BRIDGE_PORT")]
    pub bridge_port: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_repeats() {
        let cli = Cli::parse_from([
            "netalias",
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--listen",
            "[::1]:2",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(args.listen.len(), 2);
    }
}
