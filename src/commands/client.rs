//! The commands that ask a running server over its HTTP side: `records`, `explain` and
//! `health`, and `host-dns`'s question for the names labels claim. One request each
//! (`ask_server`); they print, the server decides.

use std::{collections::BTreeMap, net::SocketAddr, process::ExitCode};

use anyhow::Context;

/// GET `path` with `query` from a running server's HTTP endpoint: its status and body,
/// whatever the status; `Err` says why it could not be asked (the one place the subcommands
/// that talk to a running server make a request).
fn ask_server(
    http: SocketAddr,
    path: &str,
    query: &[(&str, &str)],
) -> Result<(ureq::http::StatusCode, String), String> {
    ask_server_within(http, path, query, None)
}

/// [`ask_server`], given up after `timeout` when one is given.
fn ask_server_within(
    http: SocketAddr,
    path: &str,
    query: &[(&str, &str)],
    timeout: Option<std::time::Duration>,
) -> Result<(ureq::http::StatusCode, String), String> {
    let url = format!("http://{http}{path}");
    let mut request = ureq::get(&url)
        .config()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build();
    for (key, value) in query {
        request = request.query(key, value);
    }
    let mut response = request
        .call()
        .map_err(|error| format!("cannot reach {url} ({error}); is `server.http_listen` set?"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|error| format!("cannot read {url}'s answer ({error})"))?;
    Ok((response.status(), body))
}

/// `netalias explain`: the running server's account of one name; 1 when it cannot give one.
pub(crate) fn explain(name: &str, from: Option<&str>, qtype: &str, http: SocketAddr) -> ExitCode {
    let mut query = vec![("name", name), ("type", qtype)];
    if let Some(from) = from {
        query.push(("from", from));
    }
    match ask_server(http, "/explain", &query) {
        Ok((status, body)) => {
            print!("{body}");
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("netalias: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `netalias records`: the running server's table.
pub(crate) fn print_records(http: SocketAddr) -> anyhow::Result<()> {
    let (status, body) = ask_server(http, "/records", &[]).map_err(anyhow::Error::msg)?;
    if !status.is_success() {
        anyhow::bail!("/records answered {status}: {}", body.trim());
    }
    let records: BTreeMap<String, BTreeMap<String, Vec<String>>> =
        serde_json::from_str(&body).context("/records did not return the expected JSON")?;
    println!(
        "{:<24} {:<32} MEMBERS (next answer's order)",
        "NETWORK", "NAME"
    );
    for (network, names) in records {
        for (name, members) in names {
            // SRV data has spaces of its own ("0 1 8080 web1.net."): a comma between those.
            let separator = if members.iter().any(|m| m.contains(' ')) {
                ", "
            } else {
                " "
            };
            println!("{network:<24} {name:<32} {}", members.join(separator));
        }
    }
    Ok(())
}

/// The names `netalias.names` labels claim, from a running server's `/label-names` (for
/// `host-dns`); `Err` says why there are none to be had: not reachable within a few seconds,
/// or an answer that is not the list (a server older than this command: 404).
pub(crate) fn label_names(http: SocketAddr) -> Result<Vec<String>, String> {
    let (status, body) = ask_server_within(
        http,
        "/label-names",
        &[],
        Some(std::time::Duration::from_secs(5)),
    )?;
    if !status.is_success() {
        return Err(format!(
            "http://{http}/label-names answered {status}: {}",
            body.trim()
        ));
    }
    serde_json::from_str(&body)
        .map_err(|error| format!("http://{http}/label-names is not a list of names ({error})"))
}

/// `netalias health`: 0 when /healthz (or /readyz) says so; otherwise 1, saying why (for
/// /readyz, which source has not synced yet).
pub(crate) fn health(http: SocketAddr, ready: bool) -> ExitCode {
    let path = if ready { "/readyz" } else { "/healthz" };
    match ask_server(http, path, &[]) {
        Ok((status, _)) if status.is_success() => ExitCode::SUCCESS,
        Ok((status, body)) => {
            eprintln!("netalias: {path}: {status} {}", body.trim());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("netalias: {error}");
            ExitCode::FAILURE
        }
    }
}
