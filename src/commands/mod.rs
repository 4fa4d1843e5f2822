//! One module per subcommand, each the binary's edge for it: read the arguments, call the
//! library, print, pick the exit code. Decisions live in the library.

pub(crate) mod check_config;
pub(crate) mod client;
pub(crate) mod host_dns;
pub(crate) mod provision;
pub(crate) mod serve;

/// An error and its causes on one line, each said once: a message that already quotes its
/// cause (`cannot read x: No such file or directory (os error 2)`) is not followed by it again.
pub(crate) fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
