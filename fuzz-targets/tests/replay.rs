//! The fuzz targets, bounded, in the normal test suite (stable Rust):
//!
//! 1. `replay`: every file of `fuzz/corpus/<target>/` and
//!    `fuzz/regressions/<target>/` through the target;
//! 2. `mutations`: proptest cases made by mutating those files (bit flips,
//!    inserted and deleted bytes, tokens of `fuzz/dict/<target>.dict`,
//!    splices of two inputs) and plain random bytes.
//!
//! Each call must finish within [`MAX_TIME`] and never have more than
//! [`MAX_BYTES`] allocated at once.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_fuzz_targets::bounds::{measure, Counting};
use berth_fuzz_targets::{Target, TARGETS};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Per call (an unoptimised build on a busy CI machine; calls take
/// milliseconds).
const MAX_TIME: Duration = Duration::from_secs(3);
/// Live bytes per call (the largest limit a target sets is 256 KiB of
/// decompressed tar; parsing the default seccomp profile takes ~1 MiB).
const MAX_BYTES: usize = 64 << 20;
/// Most files kept in a target's corpus (see fuzz/README.md: minimise it).
const MAX_CORPUS_FILES: usize = 250;
/// Proptest cases per target: mutated corpus files, then random bytes.
const MUTATION_CASES: u32 = 1024;
const RANDOM_CASES: u32 = 256;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn target(name: &str) -> &'static Target {
    berth_fuzz_targets::target(name).unwrap_or_else(|| panic!("no target {name}"))
}

/// The files of `fuzz/<dir>/<target>/`, sorted; none if it does not exist.
fn files(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(dir).join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Vec<u8>)> = rd
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    out.sort();
    out
}

/// Runs `t` on `data` under the bounds; a panic is reported with `what`.
fn run_bounded(t: &Target, data: &[u8], what: &str) {
    let cost = match catch_unwind(AssertUnwindSafe(|| measure(|| (t.run)(data)))) {
        Ok(c) => c,
        Err(panic) => {
            eprintln!("target {} panicked on {what}", t.name);
            resume_unwind(panic)
        }
    };
    assert!(cost.time <= MAX_TIME, "target {} took {:?} on {what}", t.name, cost.time);
    assert!(cost.peak_bytes <= MAX_BYTES, "target {} had {} bytes allocated on {what}", t.name, cost.peak_bytes);
}

fn replay(name: &str) {
    let t = target(name);
    let corpus = files("corpus", name);
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is empty or missing: run the fuzzer (fuzz/README.md)");
    assert!(corpus.len() <= MAX_CORPUS_FILES, "fuzz/corpus/{name}/ has {} files: minimise it with cargo fuzz cmin", corpus.len());
    for (path, data) in corpus.iter().chain(&files("regressions", name)) {
        run_bounded(t, data, &path.display().to_string());
    }
}

/// `fuzz/dict/<target>.dict` (libFuzzer's format: `name="value"` or
/// `"value"` per line, `\\`, `\"` and `\xNN` escapes, `#` comments).
fn dictionary(name: &str) -> Vec<Vec<u8>> {
    let Ok(text) = std::fs::read_to_string(fuzz_dir().join("dict").join(format!("{name}.dict"))) else { return Vec::new() };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let quoted = &l[l.find('"').unwrap_or_else(|| panic!("{name}.dict: {l}"))..];
            let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or_else(|| panic!("{name}.dict: {l}"));
            unescape(inner).unwrap_or_else(|| panic!("{name}.dict: bad escape in {l}"))
        })
        .collect()
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'x' => {
                out.push(u8::from_str_radix(s.get(i + 2..i + 4)?, 16).ok()?);
                i += 4;
            }
            c @ (b'\\' | b'"') => {
                out.push(*c);
                i += 2;
            }
            // libFuzzer knows no other escape.
            _ => return None,
        }
    }
    Some(out)
}

/// One edit of an input.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Token(Index, Index),
    Splice(Index, Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(0u8),
        Just(0xff),
        Just(b'"'),
        Just(b'\\'),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b':'),
        Just(b'='),
        Just(b'\n'),
        Just(b'/'),
        any::<u8>()
    ];
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), interesting).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Mutation::Token(i, t)),
        (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(i, o, f)| Mutation::Splice(i, o, f)),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation, inputs: &[Vec<u8>], dict: &[Vec<u8>]) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    match m {
        Mutation::FlipBit(i, bit) if !data.is_empty() => {
            let k = i.index(data.len());
            data[k] ^= 1 << bit;
        }
        Mutation::SetByte(i, b) if !data.is_empty() => {
            let k = i.index(data.len());
            data[k] = *b;
        }
        Mutation::Insert(i, bytes) => {
            let k = at(i, data.len());
            data.splice(k..k, bytes.iter().copied());
        }
        Mutation::Delete(i, n) if !data.is_empty() => {
            let k = i.index(data.len());
            let end = (k + n).min(data.len());
            data.drain(k..end);
        }
        Mutation::Token(i, t) if !dict.is_empty() => {
            let k = at(i, data.len());
            data.splice(k..k, dict[t.index(dict.len())].iter().copied());
        }
        Mutation::Splice(i, other, from) if !inputs.is_empty() => {
            // The head of this input, the tail of another.
            let o = &inputs[other.index(inputs.len())];
            let k = at(i, data.len());
            let f = at(from, o.len());
            data.truncate(k);
            data.extend_from_slice(&o[f..]);
        }
        _ => {}
    }
}

fn mutations(name: &str) {
    let t = target(name);
    let inputs: Vec<Vec<u8>> = files("corpus", name).into_iter().chain(files("regressions", name)).map(|(_, d)| d).collect();
    let dict = dictionary(name);
    let config = |cases| Config { cases, failure_persistence: None, max_shrink_iters: 512, ..Config::default() };

    let mutated = (any::<Index>(), prop::collection::vec(mutation(), 1..8));
    TestRunner::new(config(MUTATION_CASES))
        .run(&mutated, |(pick, edits)| {
            let mut data = if inputs.is_empty() { Vec::new() } else { inputs[pick.index(inputs.len())].clone() };
            for m in &edits {
                apply(&mut data, m, &inputs, &dict);
            }
            data.truncate(t.max_len);
            run_bounded(t, &data, &format!("the mutated input {:?}", String::from_utf8_lossy(&data)));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("target {name}: {e}"));

    let random = prop::collection::vec(any::<u8>(), 0..t.max_len.min(2048));
    TestRunner::new(config(RANDOM_CASES))
        .run(&random, |data| {
            run_bounded(t, &data, &format!("the random input {data:?}"));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("target {name}: {e}"));
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        /// The targets this file tests, in `TARGETS` order.
        const TESTED: &[&str] = &[$(stringify!($name)),*];
        $(
            mod $name {
                #[test]
                fn replay() {
                    super::replay(stringify!($name));
                }

                #[test]
                fn mutations() {
                    super::mutations(stringify!($name));
                }
            }
        )*
    };
}

targets!(create, filters, glob, change, tar, manifest, logs_query, log_opts, seccomp, security_opts);

/// Every target has its tests here and a fuzz binary in fuzz/, and every
/// fuzz binary and corpus belongs to a target.
#[test]
fn targets_fuzz_binaries_and_corpora_agree() {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(names, TESTED, "add the target to targets!(…) in this file");
    let listed = |dir: &str, suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(fuzz_dir().join(dir))
            .unwrap_or_else(|e| panic!("fuzz/{dir}: {e}"))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort();
    assert_eq!(listed("fuzz_targets", ".rs"), sorted, "fuzz/fuzz_targets/ and TARGETS differ");
    assert_eq!(listed("corpus", ""), sorted, "fuzz/corpus/ and TARGETS differ");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let script = std::fs::read_to_string(fuzz_dir().join("run")).unwrap();
    for t in TARGETS {
        let body = std::fs::read_to_string(fuzz_dir().join("fuzz_targets").join(format!("{}.rs", t.name))).unwrap();
        assert!(body.contains(&format!("berth_fuzz_targets::{}(data)", t.name)), "fuzz_targets/{}.rs calls another function", t.name);
        assert!(manifest.contains(&format!("name = \"{}\"", t.name)), "fuzz/Cargo.toml has no [[bin]] {}", t.name);
        assert!(script.contains(&format!("[{}]={}", t.name, t.max_len)), "fuzz/run gives {} another max_len than {}", t.name, t.max_len);
        for (path, data) in files("corpus", t.name) {
            assert!(data.len() <= t.max_len, "{} is longer than the target's max_len {}", path.display(), t.max_len);
        }
    }
    for dir in ["regressions", "dict"] {
        if let Ok(rd) = std::fs::read_dir(fuzz_dir().join(dir)) {
            for e in rd {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                let n = n.strip_suffix(".dict").unwrap_or(&n);
                assert!(names.contains(&n), "fuzz/{dir}/{n} belongs to no target");
            }
        }
    }
}

#[test]
fn the_bounds_see_a_large_allocation() {
    let cost = measure(|| {
        let v = vec![1u8; 8 << 20];
        std::hint::black_box(&v);
    });
    assert!(cost.peak_bytes >= 8 << 20, "{cost:?}");
    let cost = measure(|| {});
    assert!(cost.peak_bytes < 1 << 10, "{cost:?}");
}
