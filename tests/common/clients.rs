//! Real resolver clients in a container: glibc's and musl's `getaddrinfo` and Go's pure
//! resolver, built statically from `tests/clients/` into `netalias-test/clients:1` by
//! `tests/build-client-image.sh` (nothing pulled). A test runs one as a container's entrypoint
//! and reads what the library returned, not what a DNS tool would.

use std::{net::Ipv4Addr, process::Command, sync::Once};

pub const IMAGE: &str = "netalias-test/clients:1";

/// A resolver library, by the binary that links it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    Glibc,
    Musl,
    Go,
}

impl Library {
    pub const ALL: [Library; 3] = [Library::Glibc, Library::Musl, Library::Go];

    /// The binary in the image: `resolve NAME [COUNT] [INTERVAL_MS]`.
    pub fn binary(self) -> &'static str {
        match self {
            Library::Glibc => "/bin/resolve-glibc",
            Library::Musl => "/bin/resolve-musl",
            Library::Go => "/bin/resolve-go",
        }
    }
}

/// One lookup as the library returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// The addresses in the library's order; `None` when it failed (then `error` says why).
    pub addresses: Option<Vec<Ipv4Addr>>,
    pub error: String,
    pub millis: f64,
}

impl Lookup {
    pub fn first(&self) -> Option<Ipv4Addr> {
        self.addresses.as_ref().and_then(|a| a.first().copied())
    }
}

static BUILD: Once = Once::new();

/// Builds the client image once per test process (the script skips an up-to-date image).
pub fn image() -> &'static str {
    BUILD.call_once(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/build-client-image.sh");
        let status = Command::new("bash")
            .arg(script)
            .status()
            .expect("run tests/build-client-image.sh");
        assert!(status.success(), "tests/build-client-image.sh failed");
    });
    IMAGE
}

/// The lookups a client printed ("OK MS ADDR..." / "FAIL MS REASON" per line).
pub fn parse(output: &str) -> Vec<Lookup> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let verdict = words.next()?;
            let millis: f64 = words.next()?.parse().ok()?;
            match verdict {
                "OK" => Some(Lookup {
                    addresses: Some(words.filter_map(|w| w.parse().ok()).collect()),
                    error: String::new(),
                    millis,
                }),
                "FAIL" => Some(Lookup {
                    addresses: None,
                    error: words.collect::<Vec<_>>().join(" "),
                    millis,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_lines_are_read_back() {
        let got = parse("OK 1.5 10.0.0.2 10.0.0.3\nFAIL 2500.0 Name does not resolve\nnoise\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].first(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(got[1].addresses, None);
        assert_eq!(got[1].error, "Name does not resolve");
    }
}
