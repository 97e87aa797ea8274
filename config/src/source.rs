//! Where a setting came from, and the problems found in the settings.
//!
//! Every value in the effective config remembers its [`Source`], so that every
//! [`Problem`] can name the file (or flag) the user has to fix.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The origin of a setting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "at")]
pub enum Source {
    /// Built into berth.
    Builtin,
    /// A command-line flag, e.g. `--add-runtime`.
    Flag(String),
    /// A JSON file: `daemon.json` or a drop-in in `runtimes.d/`.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One thing wrong with the configuration.
///
/// Loading and validation collect every problem in one pass; callers get a
/// sorted list (see [`sort_problems`]), never just the first one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file or flag to fix.
    pub source: Source,
    /// What the problem is about: a key path such as `runtimes.gvisor.runtimeArgs`,
    /// or `runtime gvisor`. Used for sorting and shown before the message.
    pub subject: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    pub fn new(source: &Source, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { source: source.clone(), subject: subject.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: {}: {}", self.source, self.subject, self.message)
        }
    }
}

/// Sorts problems into the stable order berth reports them in: by subject
/// (so all problems of runtime `a` come before those of runtime `b`), then by
/// source, then by message. Exact duplicates are dropped.
pub fn sort_problems(problems: &mut Vec<Problem>) {
    problems.sort_by(|a, b| {
        (&a.subject, &a.source, &a.message).cmp(&(&b.subject, &b.source, &b.message))
    });
    problems.dedup();
}

/// The error of a failed load or reload: every problem found, sorted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{}", render(.problems))]
pub struct ConfigErrors {
    pub problems: Vec<Problem>,
}

impl ConfigErrors {
    pub fn new(mut problems: Vec<Problem>) -> Self {
        sort_problems(&mut problems);
        ConfigErrors { problems }
    }
    pub fn single(problem: Problem) -> Self {
        ConfigErrors { problems: vec![problem] }
    }
}

fn render(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut s = format!("{} problems in the configuration:", many.len());
            for p in many {
                s.push_str("\n  - ");
                s.push_str(&p.to_string());
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_sort_by_subject_then_source() {
        let f1 = Source::File("/b.json".into());
        let f2 = Source::File("/a.json".into());
        let mut v = vec![
            Problem::new(&f1, "runtime z", "bad"),
            Problem::new(&f1, "runtime a", "bad"),
            Problem::new(&f2, "runtime a", "bad"),
            Problem::new(&f2, "runtime a", "bad"),
        ];
        sort_problems(&mut v);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].source, f2);
        assert_eq!(v[1].source, f1);
        assert_eq!(v[2].subject, "runtime z");
    }

    #[test]
    fn display_names_the_source() {
        let p = Problem::new(&Source::Flag("--add-runtime".into()), "runtime x", "oops");
        assert_eq!(p.to_string(), "flag --add-runtime: runtime x: oops");
        let e = ConfigErrors::new(vec![p.clone(), Problem::new(&Source::Builtin, "", "two")]);
        assert!(e.to_string().starts_with("2 problems in the configuration:"));
    }
}
