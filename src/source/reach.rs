//! Why an engine could not be reached, said so that a person can act on it: the address
//! tried, the operating system's own reason, and the fix for the common ones (the socket's
//! permissions, no engine at that path, nothing listening at that port).
//!
//! Pure text: it reads errors and addresses, never the engine itself.

use std::io::ErrorKind;

/// Where the engine's socket is when nothing else is said (bollard's default too).
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The engine address a client uses: `host` if given, else `DOCKER_HOST`, else the local
/// socket.
pub fn engine_address(host: Option<&str>) -> String {
    host.map(str::to_string)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"))
}

/// Whether `url` is an engine address netalias can use: `unix:///absolute/path`,
/// `tcp://HOST:PORT` or `http://HOST:PORT`. The error says what is wrong and gives an example.
pub fn check_engine_url(url: &str) -> Result<(), String> {
    if let Some(path) = url.strip_prefix("unix://") {
        return if path.starts_with('/') {
            Ok(())
        } else {
            Err(format!(
                "`{url}`: a unix socket needs an absolute path, e.g. unix://{DEFAULT_SOCKET}"
            ))
        };
    }
    if let Some(authority) = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("http://"))
    {
        let authority = authority.trim_end_matches('/');
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        return if has_port {
            Ok(())
        } else {
            Err(format!(
                "`{url}`: give a host and a port, e.g. tcp://127.0.0.1:2375"
            ))
        };
    }
    Err(format!(
        "`{url}` is not an engine address: use unix:///path/to/docker.sock, tcp://HOST:PORT or http://HOST:PORT"
    ))
}

/// The operating system's error behind `error`, if there is one in its chain.
fn os_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e std::io::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = e.source();
    }
    None
}

/// Why `address` could not be reached, from `error`: the OS's reason and what to do, or the
/// error's own text when it carries no OS error.
pub fn unreachable_reason(address: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let socket = address.strip_prefix("unix://");
    match (os_error(error), socket) {
        (Some(io), Some(path)) if io.kind() == ErrorKind::PermissionDenied => format!(
            "permission denied on {path} ({io}); add the user to the socket's group (`docker`), or run the image with --group-add $(stat -c %g {path})"
        ),
        (Some(io), Some(path)) if io.kind() == ErrorKind::NotFound => format!(
            "no socket at {path} ({io}); is the engine running here? Give its address with --docker-host"
        ),
        (Some(io), Some(path)) if io.kind() == ErrorKind::ConnectionRefused => {
            format!("nothing accepts connections on {path} ({io}); is the engine running?")
        }
        (Some(io), None) if io.kind() == ErrorKind::ConnectionRefused => format!(
            "nothing listens at {address} ({io}); is the engine (or its proxy) up, and the port right?"
        ),
        (Some(io), _) => io.to_string(),
        (None, _) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_addresses_are_checked_with_an_example() {
        for good in [
            "unix:///var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "http://dockerproxy:2375/",
        ] {
            assert_eq!(check_engine_url(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("foo", "is not an engine address"),
            ("/var/run/docker.sock", "unix:///path"),
            ("unix://docker.sock", "absolute path"),
            ("tcp://127.0.0.1", "host and a port"),
        ] {
            let error = check_engine_url(bad).expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn the_os_reason_is_found_in_the_chain_and_explained() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Wrapper(#[source] std::io::Error);
        let denied = Wrapper(std::io::Error::from(ErrorKind::PermissionDenied));
        let reason = unreachable_reason("unix:///var/run/docker.sock", &denied);
        assert!(
            reason.contains("permission denied on /var/run/docker.sock"),
            "{reason}"
        );
        assert!(reason.contains("--group-add"), "{reason}");
        let missing = Wrapper(std::io::Error::from(ErrorKind::NotFound));
        let reason = unreachable_reason("unix:///nope.sock", &missing);
        assert!(reason.contains("no socket at /nope.sock"), "{reason}");
        let refused = Wrapper(std::io::Error::from(ErrorKind::ConnectionRefused));
        let reason = unreachable_reason("tcp://127.0.0.1:2375", &refused);
        assert!(
            reason.contains("nothing listens at tcp://127.0.0.1:2375"),
            "{reason}"
        );
    }
}
