//! Settings read once at start-up into typed values.
//!
//! Binaries read the process environment; tests hand in a map, so that no test
//! ever mutates the environment of the process it runs in. Every bad value is
//! collected and reported at once, one line each, instead of failing on the
//! first and making the operator restart again and again.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use secrecy::SecretSlice;

/// Where settings come from.
pub trait Source {
    /// The raw value of `name`, if it is set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct EnvSource;

impl Source for EnvSource {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Every setting that could not be used, one line each.
#[derive(Debug)]
pub struct ConfigError {
    pub lines: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for line in &self.lines {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads typed settings from a [`Source`] and keeps a list of the bad ones.
///
/// Each getter returns the default when the value is bad, so that reading
/// can continue and the caller learns about every problem from
/// [`Reader::finish`].
pub struct Reader<'a> {
    source: &'a dyn Source,
    errors: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(source: &'a dyn Source) -> Self {
        Self {
            source,
            errors: Vec::new(),
        }
    }

    /// The trimmed value of `name`; an empty value counts as unset.
    pub fn raw(&self, name: &str) -> Option<String> {
        self.source
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    /// A value parsed with `FromStr`, such as a number or a socket address.
    pub fn parse<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(value) => value,
                Err(err) => {
                    self.fail(name, format!("{raw:?} is not valid: {err}"));
                    default
                }
            },
        }
    }

    /// A number that must lie in `range`.
    pub fn number<T>(&mut self, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
        T::Err: fmt::Display,
    {
        let value = self.parse(name, default);
        if !range.contains(&value) {
            self.fail(
                name,
                format!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            );
            return default;
        }
        value
    }

    /// A duration such as `1h`, `90s` or `250ms`.
    pub fn duration(&mut self, name: &str, default: Duration) -> Duration {
        match self.raw(name) {
            None => default,
            Some(raw) => match humantime::parse_duration(&raw) {
                Ok(value) => value,
                Err(err) => {
                    self.fail(
                        name,
                        format!("{raw:?} is not a duration like 30s or 1h: {err}"),
                    );
                    default
                }
            },
        }
    }

    /// A duration that must lie in `range`: a zero timeout or poll interval
    /// would break the service quietly, so every duration has its bounds.
    pub fn duration_in(
        &mut self,
        name: &str,
        default: Duration,
        range: std::ops::RangeInclusive<Duration>,
    ) -> Duration {
        let value = self.duration(name, default);
        if !range.contains(&value) {
            self.fail(
                name,
                format!(
                    "{} is out of range {} to {}",
                    readable(value),
                    readable(*range.start()),
                    readable(*range.end())
                ),
            );
            return default;
        }
        value
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.raw(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(v) => {
                self.fail(name, format!("{v:?} is not true or false"));
                default
            }
        }
    }

    /// A list separated by commas; blanks are dropped.
    pub fn list(&mut self, name: &str, default: &[&str]) -> Vec<String> {
        match self.raw(name) {
            None => default.iter().map(|s| (*s).to_owned()).collect(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// A secret given either inline in `name` or in the file named by
    /// `name_FILE` (the usual way to mount secrets in containers).
    ///
    /// The value never appears in an error line.
    pub fn secret_text(&mut self, name: &str) -> Option<String> {
        let file_var = format!("{name}_FILE");
        match (self.raw(name), self.raw(&file_var)) {
            (Some(_), Some(_)) => {
                self.fail(name, format!("set either {name} or {file_var}, not both"));
                None
            }
            (Some(value), None) => Some(value),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
                Err(err) => {
                    self.fail(&file_var, format!("cannot read {path}: {err}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// A base64 secret key of at least `min_len` bytes.
    pub fn secret_key(&mut self, name: &str, min_len: usize) -> Option<SecretSlice<u8>> {
        let text = self.secret_text(name)?;
        match decode_key(&text) {
            Some(bytes) if bytes.len() >= min_len && !is_weak(&bytes) => Some(bytes.into()),
            Some(bytes) if bytes.len() < min_len => {
                self.fail(
                    name,
                    format!(
                        "the key has {} bytes; at least {min_len} are needed",
                        bytes.len()
                    ),
                );
                None
            }
            Some(_) => {
                self.fail(
                    name,
                    "the key is weak (one byte repeated); generate a random one",
                );
                None
            }
            None => {
                self.fail(name, "the key is not valid base64");
                None
            }
        }
    }

    /// Records a bad value for `name`.
    pub fn fail(&mut self, name: &str, message: impl fmt::Display) {
        self.errors.push(format!("{name}: {message}"));
    }

    /// Ok when every value read was usable.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { lines: self.errors })
        }
    }
}

/// A duration as a person writes it: whole days, hours or minutes in one
/// unit (humantime would make 90 days "2months 29days 2h 52m 48s").
fn readable(value: Duration) -> String {
    let secs = value.as_secs();
    match secs {
        0 => humantime::format_duration(value).to_string(),
        _ if value.subsec_nanos() != 0 => humantime::format_duration(value).to_string(),
        _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        _ if secs.is_multiple_of(3_600) => format!("{}h", secs / 3_600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// Decodes a key written in standard or URL-safe base64, padded or not.
pub fn decode_key(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// A key with few distinct bytes is a placeholder or a pattern, not random:
/// 32 random bytes have about 30 distinct values, fewer than 16 almost never.
pub fn is_weak(bytes: &[u8]) -> bool {
    let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
    distinct < (bytes.len() / 2).min(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(readable(Duration::from_secs(7_776_000)), "90d");
        assert_eq!(readable(Duration::from_secs(7_200)), "2h");
        assert_eq!(readable(Duration::from_secs(60)), "1m");
        assert_eq!(readable(Duration::from_secs(90)), "90s");
        assert_eq!(readable(Duration::from_millis(250)), "250ms");
    }
    use secrecy::ExposeSecret;

    fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reports_every_bad_value_once() {
        let src = source(&[("A", "x"), ("B", "5m"), ("C", "maybe"), ("D", "70000")]);
        let mut reader = Reader::new(&src);
        assert_eq!(reader.parse::<u16>("A", 1), 1);
        assert_eq!(
            reader.duration("B", Duration::ZERO),
            Duration::from_secs(300)
        );
        assert!(!reader.bool("C", false));
        assert_eq!(reader.number::<u32>("D", 10, 1..=1000), 10);
        let err = reader.finish().unwrap_err();
        assert_eq!(err.lines.len(), 3, "{err}");
        assert!(err.lines[0].starts_with("A: "));
        assert!(err.lines[2].starts_with("D: "));
    }

    #[test]
    fn secret_keys_are_checked_and_never_echoed() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 40]);
        let good = base64::engine::general_purpose::STANDARD.encode((0u8..40).collect::<Vec<_>>());
        let src = source(&[("WEAK", &key), ("SHORT", "c2hvcnQ="), ("GOOD", &good)]);
        let mut reader = Reader::new(&src);
        assert!(reader.secret_key("WEAK", 32).is_none());
        assert!(reader.secret_key("SHORT", 32).is_none());
        let good_key = reader.secret_key("GOOD", 32).unwrap();
        assert_eq!(good_key.expose_secret().len(), 40);
        let err = reader.finish().unwrap_err().to_string();
        assert!(!err.contains(&key) && !err.contains("c2hvcnQ"), "{err}");
    }
}
