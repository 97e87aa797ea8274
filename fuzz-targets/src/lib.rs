//! # berth-fuzz-targets
//!
//! The body of every fuzz target, one function per parser family that takes
//! client input. `fuzz/` (cargo-fuzz, libFuzzer, nightly features) wraps each
//! in a `fuzz_target!`; `tests/replay.rs` runs the same functions on stable
//! Rust in the normal test suite: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`, then a bounded number of proptest cases,
//! each under a time and an allocation bound. Both sides call [`TARGETS`],
//! so they cannot drift apart.
//!
//! A target takes raw bytes, calls the public parsers with them and checks
//! what must hold of any answer (errors say something, results stay within
//! their limits). A panic is a bug; so is a hang or an allocation the input
//! does not justify.
//!
//! Nothing here is used by the daemon: the crate is a workspace member only
//! so that CI builds and tests it.

mod archive;
pub mod bounds;
mod change;
mod create;
mod filters;
mod logs;
mod security;

pub use archive::{manifest, tar};
pub use change::change;
pub use create::create;
pub use filters::{filters, glob};
pub use logs::{log_opts, logs_query};
pub use security::{seccomp, security_opts};

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name: the binary in `fuzz/fuzz_targets/` and the directory of its
    /// corpus and regressions.
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// The longest input worth generating (libFuzzer's `-max_len`, the
    /// harness's bound); the target itself accepts any length.
    pub max_len: usize,
    /// What an input is, for `fuzz/README.md` and failure messages.
    pub input: &'static str,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "create",
        run: create,
        max_len: 16 << 10,
        input: "a create body (JSON); `NAME\\0BODY` also gives the `?name=` value",
    },
    Target { name: "filters", run: filters, max_len: 4 << 10, input: "the `filters` query value (JSON)" },
    Target { name: "glob", run: glob, max_len: 2 << 10, input: "`PATTERN\\0NAME`: a `reference` filter glob and a name" },
    Target { name: "change", run: change, max_len: 4 << 10, input: "`--change` lines, one per line" },
    Target { name: "tar", run: tar, max_len: 64 << 10, input: "an archive as a client uploads it (tar, gzip, …)" },
    Target { name: "manifest", run: manifest, max_len: 8 << 10, input: "the manifest.json of a `docker save` archive" },
    Target {
        name: "logs_query",
        run: logs_query,
        max_len: 1 << 10,
        input: "the query string of `GET /containers/{id}/logs` (and other query values)",
    },
    Target { name: "log_opts", run: log_opts, max_len: 1 << 10, input: "a log driver on the first line, `key=value` options after" },
    Target { name: "seccomp", run: seccomp, max_len: 32 << 10, input: "a seccomp profile in Docker's format (JSON)" },
    Target {
        name: "security_opts",
        run: security_opts,
        max_len: 2 << 10,
        input: "lines that are each a `--security-opt`, capability, device cgroup rule and `--device`",
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// `A\0B` → (`Some(A)`, `B`); without a NUL byte, (`None`, everything).
pub(crate) fn split_nul(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    }
}

/// The input as text (invalid UTF-8 replaced: the API only ever hands the
/// parsers strings).
pub(crate) fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The lines of the input.
pub(crate) fn lines(data: &[u8]) -> Vec<String> {
    text(data).split('\n').map(str::to_owned).collect()
}
