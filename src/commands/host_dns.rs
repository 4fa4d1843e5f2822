//! `netalias host-dns`: print (or write) what makes the host's resolver send the domains
//! netalias owns to it, and nothing else: the search domain, the config's `own_domains`, and
//! the domains of the names labels claim, asked of the running server (`/label-names`). The
//! lines themselves, and which label domains are routed or refused, come from the library's
//! `host_dns`. A server that cannot be asked costs the label domains only, said on stderr;
//! it must not fail the command or change the config's domains.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

use anyhow::Context;

use netalias::config::Config;

/// `host-dns`'s command line but for `--root`.
pub(crate) struct Options {
    pub resolver: Option<netalias::host_dns::HostResolver>,
    pub listen: Option<SocketAddr>,
    pub domain: Option<String>,
    pub config: Option<PathBuf>,
    pub write: bool,
    pub http: Option<SocketAddr>,
}

/// Where to ask the running server: `--http`, else the config's `server.http_listen` (an
/// unspecified address asked on loopback), else the default the other clients use.
fn http_address(given: Option<SocketAddr>, config: &Config) -> SocketAddr {
    if let Some(given) = given {
        return given;
    }
    match config.server.http_listen {
        Some(mut at) => {
            if at.ip().is_unspecified() {
                at.set_ip(match at.ip() {
                    IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                    IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
                });
            }
            at
        }
        None => netalias::cli::DEFAULT_HTTP
            .parse()
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 9153))),
    }
}

/// `netalias host-dns`: the snippet for the host's resolver, printed or written.
pub(crate) fn host_dns(options: Options, root: &std::path::Path) -> anyhow::Result<()> {
    use netalias::host_dns;
    let config = match &options.config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::embedded_default().context("the embedded default config is invalid")?,
    };
    let at = options
        .listen
        .or_else(|| config.server.listen.first().copied())
        .context("no listen address: give --listen")?;
    // The search domain (or the one given), then every domain the config owns.
    let mut domains: Vec<String> = options
        .domain
        .or_else(|| config.server.domain().map(str::to_string))
        .into_iter()
        .collect();
    domains.extend(config.server.own_domains());
    // Then the domains of the names labels claim, as the running server holds them now.
    let http = http_address(options.http, &config);
    match crate::commands::client::label_names(http) {
        Ok(names) => {
            let routed: Vec<&str> = domains.iter().map(String::as_str).collect();
            let labelled = host_dns::label_domains(&routed, &names);
            for skipped in &labelled.skipped {
                eprintln!("netalias: {skipped}");
            }
            domains.extend(labelled.domains);
        }
        Err(why) => eprintln!(
            "netalias: label domains not included ({why}); to include them, run this again \
             while netalias serves, or pass --http ADDR"
        ),
    }
    let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
    let resolver = options
        .resolver
        .or_else(|| host_dns::detect(root))
        .ok_or(host_dns::HostDnsError::NoneFound)?;
    let snippet = host_dns::snippet(resolver, &domains, at)?;
    let path = root.join(&snippet.path);
    if options.write {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &snippet.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}; now run: {}", path.display(), snippet.apply);
        println!("routed to netalias: {}", domains.join(" "));
        println!("to undo: {}", snippet.undo(root));
    } else {
        println!(
            "# {} ({:?}); then: {}",
            path.display(),
            resolver,
            snippet.apply
        );
        print!("{}", snippet.text);
    }
    Ok(())
}
