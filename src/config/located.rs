//! Where in a TOML file something is wrong, said the way a person fixes it: file, line,
//! column, the field as written, and a hint. Shared by the config and by provisioning's stack
//! file (`provision::spec`); it knows nothing of either's schema.

use std::{
    fmt,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

/// A config error located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Why a file could not become a [`Config`] (or a stack spec).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}{}", read_hint(source))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<ConfigError>),
}

/// What to do about a file that cannot be read.
fn read_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            " (a relative path is taken from the current directory; without --config the embedded default is served)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (the user netalias runs as must be able to read it)"
        }
        _ => "",
    }
}

/// A semantic error at a place in a TOML file, before it is turned into a [`ConfigError`].
pub struct Violation {
    pub span: Range<usize>,
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new<T>(at: &Spanned<T>, field: String, message: String) -> Self {
        Violation {
            span: at.span(),
            field,
            message,
        }
    }

    /// Names the file, line and column of this violation in `text`.
    pub fn locate(self, text: &str, file: &str) -> ConfigError {
        locate(text, file, Some(self.span), self.field, self.message)
    }
}

fn locate(
    text: &str,
    file: &str,
    span: Option<Range<usize>>,
    field: String,
    message: String,
) -> ConfigError {
    let (line, column) = span.map_or((1, 1), |s| line_column(text, s.start));
    let message = plain_types(&message);
    let hint = hint_for(&field, &message);
    ConfigError {
        file: file.to_string(),
        line,
        column,
        field,
        message,
        hint,
    }
}

/// Reads `path` and hands its text and name to `parse`.
pub fn load_file<T>(
    path: &Path,
    parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
) -> Result<T, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string()).map_err(|e| LoadError::Invalid(Box::new(e)))
}

/// Deserializes TOML `text` into `T`; errors name `file`, the line, the column and the field path.
pub fn parse_located<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|e| locate(text, file, e.span(), String::new(), e.message().to_string()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = display_path(e.path());
        let inner = e.into_inner();
        locate(text, file, inner.span(), field, inner.message().to_string())
    })
}

/// Deserializes an integer that must lie in `MIN..=MAX`, so that no number in a file can
/// overflow a duration or a buffer later; the error names the range and is located like any
/// other (file, line, field).
pub fn bounded<'de, D, T, const MIN: u64, const MAX: u64>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = i128::deserialize(deserializer)?;
    if value < i128::from(MIN) || value > i128::from(MAX) {
        return Err(serde::de::Error::custom(format!(
            "{value} is out of range: give a whole number from {MIN} to {MAX}"
        )));
    }
    // In range, so it fits u64; and MAX was chosen to fit T.
    T::try_from(value as u64)
        .map_err(|_| serde::de::Error::custom(format!("{value} does not fit this field")))
}

/// [`bounded`] for an optional number.
pub fn bounded_opt<'de, D, T, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    bounded::<D, T, MIN, MAX>(deserializer).map(Some)
}

fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    let text = text
        .split('.')
        .filter(|segment| !segment.starts_with("$__serde_spanned"))
        .collect::<Vec<_>>()
        .join(".");
    if text == "." { String::new() } else { text }
}

/// 1-based line and column of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// serde's words for a Rust type (`expected i128`) in the words of the file (`expected a whole
/// number`): the reader wrote TOML, not Rust.
fn plain_types(message: &str) -> String {
    let mut text = message.to_string();
    for rust in [
        "i128", "i64", "i32", "i16", "i8", "u128", "u64", "u32", "u16", "u8", "usize",
    ] {
        text = text.replace(
            &format!("expected {rust}"),
            "expected a whole number (no quotes)",
        );
    }
    text.replace("expected a boolean", "expected true or false (no quotes)")
}

fn hint_for(field: &str, message: &str) -> Option<String> {
    let last = field.rsplit('.').next().unwrap_or(field);
    let hint = if message.contains("out of range") {
        "numbers are bounded so that none can overflow a timer or a buffer; the default is in the commented config/netalias.toml"
    } else if message.contains("unknown field") {
        "check the spelling against the accepted keys listed above"
    } else if message.contains("expected a sequence") {
        return Some(format!(
            "`{last}` takes a list: put the value in brackets, e.g. {last} = [\"...\"]"
        ));
    } else if message.contains("is used twice") {
        "give each endpoint its own name; more names for one endpoint go in its `aliases`"
    } else if message.contains("is already the address of") {
        "each endpoint on a network has its own address; check for a copied line"
    } else if message.contains("outside the network's subnet") {
        "give an address inside the subnet, or widen the subnet"
    } else if message.contains("is not an IPv4 address") {
        "write IPv4 addresses, e.g. \"10.0.0.5\" or [\"10.0.0.5\", \"10.0.0.6\"]; IPv6 ones go under `aaaa`"
    } else if message.contains("is not an IPv6 address") {
        "write IPv6 addresses, e.g. \"fd00::5\"; IPv4 ones go under `a`"
    } else if message.contains("TXT string") || message.contains("TXT strings") {
        "split the text into several strings of at most 255 octets: \"name\" = [\"part 1\", \"part 2\"]"
    } else if message.contains("a CNAME name has no other data") {
        "keep the CNAME and give its target the records, or drop the CNAME"
    } else if message.contains("CNAME for itself") || message.contains("the CNAME chain") {
        "point the CNAME at another name"
    } else if message.contains("not a usable DNS name") {
        "use letters, digits, '-' and '_' in dot-separated labels"
    } else if message.contains("whole number") {
        "write the number without quotes, e.g. ttl = 5"
    } else if last.starts_with("subnet6") {
        "write an IPv6 network in CIDR form, e.g. \"fd00:72::/64\""
    } else if last.starts_with("subnet") || last.starts_with("ip_range") {
        "write an IPv4 network in CIDR form, e.g. \"172.72.0.0/16\" (no dot before the slash)"
    } else if last.starts_with("gateway") {
        "write one IPv4 address inside the subnet, not its network or broadcast address, e.g. \"172.72.0.1\""
    } else if last.starts_with("ipv4") {
        "write one IPv4 address, e.g. \"172.72.0.2\""
    } else if last.starts_with("ipv6") {
        "write one IPv6 address, e.g. \"fd00:72::2\""
    } else if last.starts_with("upstreams") {
        "write \"IP\" or \"IP:PORT\", e.g. \"127.0.0.1:5300\""
    } else if last.starts_with("listen") {
        "write \"IP:PORT\", e.g. \"127.0.0.1:1053\" or \"[::1]:1053\""
    } else if last.starts_with("name") || last.starts_with("aliases") || last.starts_with("domain")
    {
        "use letters, digits, '-' and '_' in dot-separated labels"
    } else {
        return None;
    };
    Some(hint.to_string())
}
