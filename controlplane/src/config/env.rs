//! Reading variables: unset and blank are the same, and every wrong value is refused with
//! the variable's name and what it must be (`PORT: must be a whole number, not 'eighty'`).

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// A variable that is missing or wrong, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

pub(super) fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// The variables, through a lookup (the process environment in `main`, a map in tests).
pub(super) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The value of `name`; `None` when unset or blank.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value of `name`, or `default`.
    pub(super) fn text(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.into())
    }

    pub(super) fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    /// A whole number, or `default` when unset.
    pub(super) fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| error(name, format!("must be a whole number, not '{v}'"))),
        }
    }

    /// A whole number within `range`, or `default` when unset.
    pub(super) fn ranged(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let value = self.number(name, default)?;
        if !range.contains(&value) {
            let (low, high) = range.into_inner();
            return Err(error(name, format!("must be between {low} and {high}")));
        }
        Ok(value)
    }

    /// `true`/`1` or `false`/`0`; false when unset.
    pub(super) fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.get(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(error(name, format!("must be true or false, not '{other}'"))),
        }
    }

    /// An IP address to listen on (`localhost` is 127.0.0.1), 127.0.0.1 when unset.
    pub(super) fn host(&self, name: &'static str) -> Result<IpAddr, ConfigError> {
        match self.get(name) {
            None => Ok(IpAddr::from([127, 0, 0, 1])),
            Some(h) if h == "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
            Some(h) => h
                .parse()
                .map_err(|_| error(name, format!("must be an IP address, not '{h}'"))),
        }
    }

    /// A JetStream stream name ([`streams::setup::is_stream_name`]), or `default`.
    pub(super) fn stream_name(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<String, ConfigError> {
        let stream = self.text(name, default);
        if !streams::setup::is_stream_name(&stream) {
            return Err(error(
                name,
                format!(
                    "must be {} (a JetStream stream name)",
                    streams::setup::STREAM_NAME_RULE
                ),
            ));
        }
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<T>(pairs: &[(&str, &str)], read: impl FnOnce(&Env) -> T) -> T {
        let lookup = |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        };
        read(&Env::new(&lookup))
    }

    #[test]
    fn blank_is_unset() {
        assert_eq!(with(&[("X", "  ")], |env| env.text("X", "d")), "d");
        assert_eq!(with(&[("X", "")], |env| env.number("X", 7).unwrap()), 7);
    }

    #[test]
    fn a_number_that_is_not_one_is_named_and_quoted() {
        let err = with(&[("PORT", "eighty")], |env| env.number("PORT", 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PORT: must be a whole number, not 'eighty'"
        );
    }

    #[test]
    fn a_number_outside_its_range_says_the_range() {
        let err = with(&[("N", "0")], |env| env.ranged("N", 5, 1..=100)).unwrap_err();
        assert_eq!(err.to_string(), "N: must be between 1 and 100");
        assert_eq!(with(&[], |env| env.ranged("N", 5, 1..=100).unwrap()), 5);
    }

    #[test]
    fn a_flag_is_true_false_1_or_0() {
        assert!(with(&[("F", "1")], |env| env.flag("F").unwrap()));
        assert!(!with(&[], |env| env.flag("F").unwrap()));
        let err = with(&[("F", "yes")], |env| env.flag("F")).unwrap_err();
        assert_eq!(err.to_string(), "F: must be true or false, not 'yes'");
    }

    #[test]
    fn a_host_is_an_ip_address_or_localhost() {
        let host = with(&[("HOST", "localhost")], |env| env.host("HOST").unwrap());
        assert_eq!(host.to_string(), "127.0.0.1");
        let host = with(&[("HOST", "0.0.0.0")], |env| env.host("HOST").unwrap());
        assert_eq!(host.to_string(), "0.0.0.0");
        let err = with(&[("HOST", "example.com")], |env| env.host("HOST")).unwrap_err();
        assert_eq!(err.variable, "HOST");
    }

    #[test]
    fn a_stream_name_is_checked_by_the_one_rule_and_named() {
        let err = with(&[("S", "A.B")], |env| env.stream_name("S", "D")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "S: must be 1-64 characters of [A-Za-z0-9_-] (a JetStream stream name)"
        );
        assert_eq!(with(&[], |env| env.stream_name("S", "D").unwrap()), "D");
    }
}
