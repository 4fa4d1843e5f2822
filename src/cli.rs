//! Command-line interface (clap derive): the definitions, and how `serve`'s flags outrank the
//! config file ([`ServeArgs::apply_to`], the one place they are merged, at start and on every
//! reload). `main.rs` acts on them.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

const EXAMPLES: &str = "\
Examples:
  netalias serve                                   serve the embedded demo records on 127.0.0.1:1053
  netalias serve --docker                          serve exactly the engine's user-defined networks
  netalias serve --config config/netalias.toml     serve a file; edits and SIGHUP reload it
  netalias serve --listen 127.0.0.1:5353 --listen [::1]:5353 --ttl 5
  NETALIAS_LOG=debug netalias serve                more logging (any tracing filter works)
  netalias serve --docker --listen 127.0.0.1:1053  also serve every user-defined Docker network
  netalias serve --docker --attach-bridges         and answer on each bridge gateway, port 53;
                                                   containers then ask NAME.docker with --dns <gateway>
  netalias serve --upstream 127.0.0.1:5300         forward names it does not own
  netalias check-config config/netalias.toml       exit 0 if the file is good
  netalias provision plan config/stack.toml        what apply would do to the engine
  netalias provision apply config/stack.toml       create the seed's networks, volumes, containers
  kdig @127.0.0.1 -p 1053 app                      ask it: three web servers, in rotation";

#[derive(Debug, Parser)]
#[command(name = "netalias", version, about = "DNS for Docker container networks: names, aliases and exact round robin", after_help = EXAMPLES)]
pub struct Cli {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, global = true, env = "NETALIAS_LOG", default_value = "info")]
    pub log_level: String,

    /// Log lines as `text` or as `json` (one object a line, for Loki or Elasticsearch).
    #[arg(long, global = true, env = "NETALIAS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    /// Create the networks, volumes and containers a stack file declares (plan, apply, destroy, status).
    #[command(subcommand)]
    Provision(ProvisionCommand),
    /// Print the records of a running server (from its /records).
    Records {
        /// The server's HTTP address (server.http_listen).
        #[arg(long, env = "NETALIAS_HTTP", default_value = DEFAULT_HTTP)]
        http: SocketAddr,
    },
    /// Why NAME answers as it does, from a running server: who asks and what it sees, each
    /// network's members in or out of rotation and why; then the answer the server would send
    /// now (rcode, records in order, by its own answer rules, taking no rotation turn), or,
    /// for a name not ours, whether it is forwarded (and where), refused or failed.
    Explain {
        /// The name asked.
        name: String,
        /// Ask as this container (its name) or address; default: the host.
        #[arg(long)]
        from: Option<String>,
        /// The question's type (A, AAAA, SRV, PTR, TXT, ANY...). NAME given as an IP address
        /// is asked as `kdig -x` asks it: its reverse name, type PTR.
        #[arg(long = "type", default_value = "A")]
        qtype: String,
        /// The server's HTTP address (server.http_listen).
        #[arg(long, env = "NETALIAS_HTTP", default_value = DEFAULT_HTTP)]
        http: SocketAddr,
    },
    /// Print (or --write) what makes the host's resolver send the domains netalias owns to it,
    /// and only those: the search domain, `own_domains`, and the domains of the names
    /// `netalias.names` labels claim (asked of the running server); a systemd-resolved
    /// drop-in, or dnsmasq / NetworkManager `server=` lines.
    HostDns {
        /// The resolver to configure; default: the one the host uses.
        #[arg(long, value_enum)]
        resolver: Option<crate::host_dns::HostResolver>,
        /// Where netalias answers (default: the config's first listen address).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The domain to send (default: the config's server.domain).
        #[arg(long)]
        domain: Option<String>,
        /// The config to read the defaults from (default: the embedded one).
        #[arg(long, short, env = "NETALIAS_CONFIG")]
        config: Option<PathBuf>,
        /// Write the file where the resolver reads it (and say how to undo it).
        #[arg(long)]
        write: bool,
        /// The file system root to look at and write under (an image, a test).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The running server's HTTP address, asked for the names labels claim (default: the
        /// config's server.http_listen, else 127.0.0.1:9153).
        #[arg(long, env = "NETALIAS_HTTP")]
        http: Option<SocketAddr>,
    },
    /// Exit 0 if a running server is healthy, 1 if not: for a container HEALTHCHECK.
    Health {
        /// The server's HTTP address (server.http_listen).
        #[arg(long, env = "NETALIAS_HTTP", default_value = DEFAULT_HTTP)]
        http: SocketAddr,
        /// Ask /readyz (first sync done, listeners up) instead of /healthz.
        #[arg(long)]
        ready: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisionCommand {
    /// Show what apply would create, change, keep or remove, or what it would refuse.
    /// Changes nothing.
    Plan {
        #[command(flatten)]
        args: ProvisionArgs,
        /// Plan as `apply --recreate` would: recreate drifted networks with containers attached.
        #[arg(long)]
        recreate: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Make the engine match the file. A second apply reports no changes.
    Apply {
        #[command(flatten)]
        args: ProvisionArgs,
        /// Recreate networks whose settings drifted even when containers are attached.
        #[arg(long)]
        recreate: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Remove what the stack owns, in reverse dependency order. Volumes stay unless --volumes.
    Destroy {
        #[command(flatten)]
        args: ProvisionArgs,
        /// Also remove the stack's named volumes, and their data. Host directories are never removed.
        #[arg(long)]
        volumes: bool,
    },
    /// Compare the stack with the engine; exit 1 when they differ.
    Status(ProvisionArgs),
}

/// Waiting for health (`depends_on = { db = "healthy" }` waits always).
#[derive(Debug, Args, Clone, Copy)]
pub struct WaitArgs {
    /// Wait until every container with a health check is healthy; one that is not fails the
    /// apply, naming it (a recreated one is rolled back).
    #[arg(long)]
    pub wait: bool,
    /// How long each wait for health lasts, in seconds (default 120).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait_timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// The stack file, e.g. config/stack.toml.
    pub file: PathBuf,
    /// Docker engine address (default: DOCKER_HOST or the local socket).
    #[arg(long, env = "NETALIAS_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// Take over a stack of the same name that another stack file created (resources carry
    /// the creating file's path; without this, a second file is refused).
    #[arg(long)]
    pub adopt: bool,
}

/// Where `records` and `health` look by default (CoreDNS's metrics port).
pub const DEFAULT_HTTP: &str = "127.0.0.1:9153";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without it, the embedded default (config/netalias.toml) is used:
    /// its settings always, its demo records (`app`, `web1`..`web3`) only when no live source
    /// (--docker, --swarm) is on. With a file, exactly the file's records are served, plus
    /// what the live sources hold.
    #[arg(long, short, env = "NETALIAS_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on, UDP and TCP; repeat for more. Replaces the config's `listen`.
    #[arg(long, env = "NETALIAS_LISTEN", value_delimiter = ',', value_parser = trimmed::<SocketAddr>)]
    pub listen: Vec<SocketAddr>,

    /// TTL of local answers in seconds (at most 2147483647). Replaces the config's `ttl`.
    #[arg(long, env = "NETALIAS_TTL", value_parser = clap::value_parser!(u32).range(0..=2_147_483_647))]
    pub ttl: Option<u32>,

    /// Log one line per question: asker (container and network when known), question, rcode,
    /// answers, path, time (config: server.log_queries, which a reload can turn on or off).
    #[arg(long, env = "NETALIAS_LOG_QUERIES", value_parser = Switch)]
    pub log_queries: bool,

    /// Follow the Docker engine and serve its user-defined networks (config: docker.enabled).
    #[arg(long, env = "NETALIAS_DOCKER", value_parser = Switch)]
    pub docker: bool,

    /// Docker engine address, e.g. unix:///var/run/docker.sock (default: DOCKER_HOST or the local socket).
    #[arg(long, env = "NETALIAS_DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Keep containers whose healthcheck fails in rotation.
    #[arg(long, env = "NETALIAS_INCLUDE_UNHEALTHY", value_parser = Switch)]
    pub include_unhealthy: bool,

    /// Also listen on the gateway IP of every user-defined bridge (needs --docker).
    #[arg(long, env = "NETALIAS_ATTACH_BRIDGES", value_parser = Switch)]
    pub attach_bridges: bool,

    /// Also listen on the default bridge's gateway (usually 172.17.0.1), for a daemon-wide
    /// `"dns"` in daemon.json (needs --docker; config: docker.attach_default_bridge).
    #[arg(long, env = "NETALIAS_ATTACH_DEFAULT_BRIDGE", value_parser = Switch)]
    pub attach_default_bridge: bool,

    /// Port for the bridge gateway listeners (config: docker.bridge_port, default 53).
    #[arg(long, env = "NETALIAS_BRIDGE_PORT")]
    pub bridge_port: Option<u16>,

    /// Follow a Swarm manager's services and tasks on overlay networks (config: swarm.enabled).
    #[arg(long, env = "NETALIAS_SWARM", value_parser = Switch)]
    pub swarm: bool,

    /// The Swarm manager's engine address (default: the Docker address).
    #[arg(long, env = "NETALIAS_SWARM_HOST")]
    pub swarm_host: Option<String>,

    /// How often Swarm tasks are read when no event says so, in ms (default 1000).
    #[arg(long, env = "NETALIAS_SWARM_POLL_MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub swarm_poll_ms: Option<u64>,

    /// Forward names netalias does not own (config: forward.enabled).
    #[arg(long, env = "NETALIAS_FORWARD", value_parser = Switch)]
    pub forward: bool,

    /// Upstream server, IP or IP:PORT; repeat for more. Implies --forward; replaces forward.upstreams.
    #[arg(long, env = "NETALIAS_UPSTREAM", value_delimiter = ',', value_parser = upstream_trimmed)]
    pub upstream: Vec<std::net::SocketAddr>,

    /// Forward for any asker, not only loopback and known containers (an open resolver).
    #[arg(long, env = "NETALIAS_ALLOW_ANY_CLIENT", value_parser = Switch)]
    pub allow_any_client: bool,

    /// Networks (CIDRs) besides loopback that may read every record at /records; repeat for
    /// more (config: server.http_allow). Known containers see their own networks; others 403.
    #[arg(long, env = "NETALIAS_HTTP_ALLOW", value_delimiter = ',', value_parser = trimmed::<ipnet::IpNet>)]
    pub http_allow: Vec<ipnet::IpNet>,

    /// Serve Prometheus metrics and /healthz, /readyz, /records on this address (config: server.http_listen).
    #[arg(long, env = "NETALIAS_HTTP_LISTEN", visible_alias = "metrics-listen")]
    pub http_listen: Option<std::net::SocketAddr>,

    /// Networks (CIDRs) whose askers are trusted like loopback: the default view, and
    /// forwarding; repeat for more (config: server.trusted_askers, which this replaces).
    #[arg(long = "trusted-asker", env = "NETALIAS_TRUSTED_ASKERS", value_delimiter = ',', value_parser = trimmed::<ipnet::IpNet>)]
    pub trusted_askers: Vec<ipnet::IpNet>,
}

impl ServeArgs {
    /// Lays the flags over a loaded `config`: a value given replaces the file's, a switch
    /// given turns it on. Called on the file at start and again on every reload, so a flag
    /// outranks the file for as long as the server runs (a `--ttl 5` is not undone by an edit
    /// that sets `ttl = 60`), and a reload compares like with like.
    pub fn apply_to(&self, config: &mut Config) {
        let server = &mut config.server;
        if !self.listen.is_empty() {
            server.listen = self.listen.clone();
        }
        if let Some(ttl) = self.ttl {
            server.ttl = ttl;
        }
        server.log_queries |= self.log_queries;
        if self.http_listen.is_some() {
            server.http_listen = self.http_listen;
        }
        if !self.http_allow.is_empty() {
            server.http_allow = self.http_allow.clone();
        }
        if !self.trusted_askers.is_empty() {
            server.trusted_askers = self.trusted_askers.clone();
        }
        let docker = &mut config.docker;
        docker.enabled |= self.docker;
        docker.include_unhealthy |= self.include_unhealthy;
        docker.attach_bridges |= self.attach_bridges;
        docker.attach_default_bridge |= self.attach_default_bridge;
        if self.docker_host.is_some() {
            docker.host = self.docker_host.clone();
        }
        if let Some(port) = self.bridge_port {
            docker.bridge_port = port;
        }
        let swarm = &mut config.swarm;
        swarm.enabled |= self.swarm;
        if self.swarm_host.is_some() {
            swarm.host = self.swarm_host.clone();
        }
        if let Some(ms) = self.swarm_poll_ms {
            swarm.poll_interval_ms = ms;
        }
        let forward = &mut config.forward;
        forward.enabled |= self.forward || !self.upstream.is_empty();
        forward.allow_any_client |= self.allow_any_client;
        if !self.upstream.is_empty() {
            forward.upstreams = self
                .upstream
                .iter()
                .map(|u| toml::Spanned::new(0..0, u.to_string()))
                .collect();
        }
    }
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

    #[test]
    fn flags_outrank_the_file_and_leave_the_rest_as_it_says() {
        let cli = Cli::parse_from([
            "netalias",
            "serve",
            "--ttl",
            "7",
            "--listen",
            "127.0.0.1:5353",
            "--log-queries",
            "--upstream",
            "127.0.0.1:5300",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        let mut config = Config::embedded_default().expect("the embedded default loads");
        config.server.ttl = 60;
        config.server.rate_limit_per_second = 9;
        args.apply_to(&mut config);
        assert_eq!(config.server.ttl, 7);
        assert_eq!(
            config.server.listen,
            vec!["127.0.0.1:5353".parse().expect("addr")]
        );
        assert!(config.server.log_queries);
        assert!(config.forward.enabled, "--upstream turns forwarding on");
        assert_eq!(config.forward.upstreams.len(), 1);
        assert_eq!(
            config.server.rate_limit_per_second, 9,
            "not a flag: the file's"
        );
        assert!(
            !config.docker.enabled,
            "a switch not given leaves the file's"
        );
    }
}

/// One item of a comma-separated list, as people write them (`a, b`): without the spaces.
fn trimmed<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.trim().parse().map_err(|e: T::Err| e.to_string())
}

/// An upstream (`IP` or `IP:PORT`) from a list item, without its spaces.
fn upstream_trimmed(text: &str) -> Result<SocketAddr, String> {
    crate::config::parse_upstream(text.trim())
}

/// A switch that may come from the environment, read as people write one there: `1`/`0`,
/// `true`/`false`, `yes`/`no`, `on`/`off` (any case). A wrong value names both the flag and
/// the variable, since either may have given it.
#[derive(Clone, Copy, Debug)]
struct Switch;

impl clap::builder::TypedValueParser for Switch {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<bool, clap::Error> {
        let text = value.to_string_lossy();
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
            "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
            _ => {
                let flag = arg
                    .and_then(|a| a.get_long())
                    .map_or_else(String::new, |l| format!("--{l}"));
                let env = arg
                    .and_then(|a| a.get_env())
                    .map_or_else(String::new, |e| format!(" (or {})", e.to_string_lossy()));
                Err(clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "`{text}` is not a switch value for {flag}{env}: use 1 or 0, true or false, yes or no, on or off\n"
                    ),
                )
                .with_cmd(cmd))
            }
        }
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        None
    }
}
