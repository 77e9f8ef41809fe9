//! How `keelson` exits: one meaning per code, for every verb.

use std::process::ExitCode;

/// The exit codes, as `keelson --help` lists them.
pub const HELP: &str = "\
Exit codes:
  0  done (diff: no differences)
  1  done, and the answer is no: diff found differences; a sync, render, check or
     pipeline run failed
  2  could not run: a usage error, a bad configuration, or a repository or cluster
     that could not be reached";

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; for `diff`, no differences.
    Success,
    /// Done, and the answer is no (for `diff`, as `kubectl diff`: differences).
    Failure,
    /// Could not run.
    Error,
}

impl Exit {
    /// `keelson diff` found differences (`kubectl diff`'s 1).
    pub const DIFFERENCES: Exit = Exit::Failure;
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(match e {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Error => 2,
        })
    }
}

/// The one error printer: the error and its causes on one line, then exit 2. A cause
/// already worded in the message before it (typed errors name their cause) is not
/// repeated.
pub fn report(error: &anyhow::Error) -> Exit {
    eprintln!("error: {}", one_line(error));
    Exit::Error
}

fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_named_once() {
        let io = std::io::Error::other("disk full");
        let e = anyhow::Error::new(io).context("writing x");
        assert_eq!(one_line(&e), "writing x: disk full");
        let e = anyhow::anyhow!("render: a.yaml: bad").context("target shop");
        assert_eq!(one_line(&e), "target shop: render: a.yaml: bad");
    }
}
