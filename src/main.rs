//! The binary edge: parse the command line, start tracing, hand each subcommand to its module
//! in `commands/`. Errors become `anyhow` here; the server itself is the library's
//! (`netalias::server`).

mod commands;

use std::process::ExitCode;

use clap::Parser;
use netalias::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_level, cli.log_format);
    let result = match cli.command {
        Command::CheckConfig { file } => return commands::check_config::check_config(&file),
        Command::Serve(args) => commands::serve::serve(args),
        Command::Records { http } => commands::client::print_records(http),
        Command::Explain {
            name,
            from,
            qtype,
            http,
        } => return commands::client::explain(&name, from.as_deref(), &qtype, http),
        Command::Provision(command) => return commands::provision::provision(command),
        Command::Health { http, ready } => return commands::client::health(http, ready),
        Command::HostDns {
            resolver,
            listen,
            domain,
            config,
            write,
            root,
            http,
        } => commands::host_dns::host_dns(
            commands::host_dns::Options {
                resolver,
                listen,
                domain,
                config,
                write,
                http,
            },
            &root,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("netalias: {}", commands::report(&error));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(directive: &str, format: LogFormat) {
    // hickory-server logs two INFO lines per query; keep them out unless asked for by name.
    let directive = if directive.contains("hickory") {
        directive.to_string()
    } else {
        format!("{directive},hickory_server=warn,hickory_proto=warn,hickory_net=warn")
    };
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|error| {
        eprintln!("netalias: bad log filter {directive:?} ({error}); using info");
        EnvFilter::new("info,hickory_server=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
