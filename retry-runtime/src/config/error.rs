//! What a rejected configuration says: every problem found, each with its file (or
//! environment variable), line, column and key, and what to write instead.

use std::fmt;

/// One mistake in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    source: String,
    line: usize,
    column: usize,
    key: String,
    message: String,
}

impl Problem {
    pub(crate) fn new(
        source: &str,
        line: usize,
        column: usize,
        key: &str,
        message: String,
    ) -> Self {
        Problem {
            source: source.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message,
        }
    }

    /// The file's path, `<text>` for [`apply`](super::apply), or the environment variable.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The line (1-based; 0 for an environment variable).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column (1-based; 0 for an environment variable).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The key (or section or name) at fault.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong and what to write instead.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: `{}`: {}",
                self.source, self.line, self.column, self.key, self.message
            )
        }
    }
}

/// A configuration that was not applied (nothing of it was): every problem in it.
///
/// ```
/// let err = retry_runtime::config::apply("[retry.\"nowhere\"]\nattempts = 0\n").unwrap_err();
/// let first = &err.problems()[0];
/// assert_eq!((first.line(), first.key()), (2, "attempts"));
/// println!("{err}"); // <text>:2:1: `attempts`: 0 is not a number of attempts: …
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        ConfigError { problems }
    }

    /// Every problem, in the order of the text.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl From<Problem> for ConfigError {
    fn from(p: Problem) -> Self {
        ConfigError::new(vec![p])
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration not applied (the running one is unchanged):"
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
