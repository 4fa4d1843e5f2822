//! `netalias host-dns`: print (or write) what makes the host's resolver send only the search
//! domain to netalias; the lines themselves come from the library's `host_dns`.

use std::net::SocketAddr;

use anyhow::Context;

use netalias::config::Config;

/// `netalias host-dns`: the snippet for the host's resolver, printed or written.
/// `netalias host-dns`: the snippet for the host's resolver, printed or written.
pub(crate) fn host_dns(
    resolver: Option<netalias::host_dns::HostResolver>,
    listen: Option<SocketAddr>,
    domain: Option<String>,
    config: Option<std::path::PathBuf>,
    write: bool,
    root: &std::path::Path,
) -> anyhow::Result<()> {
    use netalias::host_dns;
    let config = match &config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::embedded_default().context("the embedded default config is invalid")?,
    };
    let at = listen
        .or_else(|| config.server.listen.first().copied())
        .context("no listen address: give --listen")?;
    // The search domain (or the one given), then every domain the config owns.
    let mut domains: Vec<String> = domain
        .or_else(|| config.server.domain().map(str::to_string))
        .into_iter()
        .collect();
    domains.extend(config.server.own_domains());
    let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
    let resolver = resolver
        .or_else(|| host_dns::detect(root))
        .ok_or(host_dns::HostDnsError::NoneFound)?;
    let snippet = host_dns::snippet(resolver, &domains, at)?;
    let path = root.join(&snippet.path);
    if write {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &snippet.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}; now run: {}", path.display(), snippet.apply);
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
