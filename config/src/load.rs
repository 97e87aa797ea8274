//! Reading `daemon.json`, the `runtimes.d/*.json` drop-ins and the flags into
//! one [`EffectiveConfig`].
//!
//! **Replace, not merge**: every load starts from the built-in defaults and
//! applies flags, file and drop-ins; a key removed from the file goes back to
//! its default. Every problem found is collected (never just the first) and
//! each names the file or flag it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::logconfig::{self, LogConfig};
use crate::execopts::{self, ExecOpts};
use crate::options::{self, ShimOptions};
use crate::source::{ConfigErrors, Problem, Source};

/// Where berth looks for its config file unless `--config-file` says otherwise.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// The built-in runtime names. Both are reserved: a user runtime may not use them.
pub const STOCK_RUNTIMES: [&str; 2] = ["runc", options::RUNC_SHIM];
/// The default runtime when none is configured.
pub const DEFAULT_RUNTIME: &str = "runc";
/// Levels accepted by `log-level`.
pub const LOG_LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];

/// Values given on the command line. Everything optional: absent means "not
/// given", so the file or the default applies.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config-file`: when given, the file must exist.
    pub config_file: Option<PathBuf>,
    /// `--add-runtime name=path`, repeatable.
    pub add_runtime: Vec<String>,
    pub default_runtime: Option<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    /// `-H/--host`, repeatable.
    pub hosts: Vec<String>,
    pub containerd: Option<PathBuf>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
}

/// A runtime as the user configured it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum RuntimeDef {
    /// A runc-compatible binary, run through the runc shim.
    Path {
        path: String,
        #[serde(rename = "runtimeArgs", skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// A containerd shim v2.
    Shim {
        #[serde(rename = "runtimeType")]
        runtime_type: String,
        #[serde(skip_serializing_if = "is_none")]
        options: ShimOptions,
    },
}

fn is_none(o: &ShimOptions) -> bool {
    *o == ShimOptions::None
}

/// A configured runtime and where it was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeConfig {
    #[serde(flatten)]
    pub def: RuntimeDef,
    pub source: Source,
}

/// The effective configuration: defaults + flags + file + drop-ins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EffectiveConfig {
    pub config_file: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    /// An external containerd socket; `None` = berth manages its own.
    pub containerd: Option<PathBuf>,
    pub debug: bool,
    pub log_level: String,
    pub live_restore: bool,
    /// Whether a containerd shim name that is not configured may be used when
    /// its `containerd-shim-*` binary is on PATH.
    pub allow_implicit_shims: bool,
    pub default_runtime: String,
    pub default_runtime_source: Source,
    /// Where `GET /metrics` is served (TCP); `None` = no metrics endpoint.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Default log driver of new containers (`json-file` unless set).
    pub log_driver: String,
    /// Default options of that driver (validated with it).
    pub log_opts: BTreeMap<String, String>,
    /// User runtimes (the stock ones are not in here; see the runtime table).
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    /// The seccomp profile of containers that do not choose one
    /// (`seccomp-profile`: a file in Docker's format, `builtin` or
    /// `unconfined`). The file is read and checked at every load.
    pub seccomp_profile: SeccompProfileSetting,
    /// `no-new-privileges`: containers get `NoNewPrivileges` unless they
    /// say otherwise.
    pub no_new_privileges: bool,
    /// `exec-opts` (`native.cgroupdriver`). Restart-only.
    pub exec_opts: ExecOpts,
    /// The network keys (`bridge`, `bip`, `dns`, …). Restart-only.
    pub network: crate::netconfig::NetConfig,
    /// `init`: containers run an init as PID 1 unless they say otherwise.
    pub init: bool,
    /// `init-path`: the init binary (absolute); `None` = Debian's
    /// `tini-static`, which dockerd's own `docker-init` is.
    pub init_path: Option<PathBuf>,
}

/// The daemon's seccomp profile setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompProfileSetting {
    /// berth's built-in profile (no `seccomp-profile`, or `builtin`).
    #[default]
    Builtin,
    /// No filter (`unconfined`).
    Unconfined,
    /// A profile file's content (checked when loaded).
    File { path: PathBuf, #[serde(skip)] json: Arc<String> },
}

impl EffectiveConfig {
    /// Directory of the drop-in runtime files: `runtimes.d` beside the config file.
    pub fn dropin_dir(&self) -> PathBuf {
        dropin_dir(&self.config_file)
    }
    /// The daemon's default log configuration (`log-driver`, `log-opts`),
    /// applied to containers created while this config is live.
    pub fn log_defaults(&self) -> LogConfig {
        LogConfig { driver: self.log_driver.clone(), opts: self.log_opts.clone() }
    }
    /// `<exec-root>/runtimes`: the wrapper scripts.
    pub fn wrapper_dir(&self) -> PathBuf {
        self.exec_root.join("runtimes")
    }
    /// `<exec-root>/runtime-state/<name>`: the runc state root of one runtime.
    pub fn runtime_state_root(&self, name: &str) -> PathBuf {
        self.exec_root.join("runtime-state").join(name)
    }
}

fn dropin_dir(config_file: &Path) -> PathBuf {
    config_file.parent().unwrap_or(Path::new("/")).join("runtimes.d")
}

/// A name is valid when it matches `[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}`.
pub fn valid_runtime_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-'))
}

/// Whether `name` may be handed to containerd as an implicit shim name: it
/// has a dot, does not start with one, and has no `/` (an API user must not
/// make containerd exec an arbitrary path).
pub fn permissible_shim_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.contains('.') && !name.contains('/')
}

/// The JSON type of a value, for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Settings read from `daemon.json` (all optional: absent = not set).
#[derive(Default)]
struct FileSettings {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    containerd: Option<PathBuf>,
    debug: Option<bool>,
    log_level: Option<String>,
    live_restore: Option<bool>,
    allow_implicit_shims: Option<bool>,
    default_runtime: Option<String>,
    metrics_addr: Option<String>,
    seccomp_profile: Option<String>,
    no_new_privileges: Option<bool>,
    log_driver: Option<String>,
    log_opts: Option<BTreeMap<String, String>>,
    exec_opts: Option<Vec<String>>,
    network: crate::netconfig::NetConfig,
    init: Option<bool>,
    init_path: Option<PathBuf>,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "runtimes",
    "default-runtime",
    "data-root",
    "exec-root",
    "hosts",
    "containerd",
    "debug",
    "log-level",
    "live-restore",
    "allow-implicit-shims",
    "metrics-addr",
    "seccomp-profile",
    "no-new-privileges",
    "log-driver",
    "log-opts",
    "exec-opts",
    "bridge",
    "bip",
    "default-address-pools",
    "ip",
    "dns",
    "dns-search",
    "dns-opts",
    "icc",
    "iptables",
    "ip-forward",
    "ip-masq",
    "init",
    "init-path",
];

const RUNTIME_KEYS: &[&str] = &["path", "runtimeArgs", "runtimeType", "options"];

/// What a load found, problems or not: the configuration as far as it could
/// be read, every problem, and what the problems hid.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Settings that could not be read keep their defaults here.
    pub config: EffectiveConfig,
    pub problems: Vec<Problem>,
    pub gaps: Gaps,
}

/// What the problems of a load hid: checks that depend on these (the
/// default runtime exists, a restart-only key did not change) must not
/// report a consequence of another problem as a problem of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gaps {
    /// Top-level keys whose value is not known: given with a wrong type, in
    /// both a flag and the file, or in a config file that could not be read.
    pub unknown_keys: BTreeSet<String>,
    /// Runtimes that are defined but were dropped for their problems.
    pub broken_runtimes: BTreeSet<String>,
    /// Files that could not be read at all (they may define runtimes).
    pub unreadable: Vec<Source>,
}

impl Gaps {
    /// Whether the value of top-level `key` is known.
    pub fn known(&self, key: &str) -> bool {
        !self.unknown_keys.contains(key)
    }

    fn file_unreadable(&mut self, src: &Source) {
        self.unreadable.push(src.clone());
        self.unknown_keys.extend(TOP_LEVEL_KEYS.iter().map(|k| k.to_string()));
    }
}

/// Loads the effective configuration. Returns every problem found, sorted.
pub fn load(flags: &Flags) -> Result<EffectiveConfig, ConfigErrors> {
    let loaded = load_all(flags);
    if loaded.problems.is_empty() {
        Ok(loaded.config)
    } else {
        Err(ConfigErrors::new(loaded.problems))
    }
}

/// Loads as much of the configuration as can be read, collecting every
/// problem instead of stopping at the first.
pub fn load_all(flags: &Flags) -> Loaded {
    let mut problems = Vec::new();
    let mut gaps = Gaps::default();
    let explicit = flags.config_file.is_some();
    let config_file = flags.config_file.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let file_src = Source::File(config_file.clone());

    // Runtimes from every place, in order: flags, file, drop-ins.
    let mut runtimes: BTreeMap<String, RuntimeConfig> = BTreeMap::new();
    let mut add = |name: String, rc: RuntimeConfig, problems: &mut Vec<Problem>| {
        if let Some(prev) = runtimes.get(&name) {
            problems.push(Problem::new(
                &rc.source,
                format!("runtime {name}"),
                format!("runtime {name} is defined twice: in {} and in {}; remove one", prev.source, rc.source),
            ));
        } else {
            runtimes.insert(name, rc);
        }
    };

    for (name, rc) in parse_add_runtime_flags(&flags.add_runtime, &mut problems, &mut gaps) {
        add(name, rc, &mut problems);
    }

    let mut file = FileSettings::default();
    match read_json_file(&config_file) {
        Ok(None) if explicit => {
            problems.push(Problem::new(
                &file_src,
                "",
                "config file not found; create it (`{}` is a valid empty config) or drop --config-file",
            ));
            gaps.file_unreadable(&file_src);
        }
        Ok(None) => {}
        Ok(Some(Value::Object(top))) => {
            for (name, rc) in parse_file(&top, &file_src, &mut file, &mut problems, &mut gaps) {
                add(name, rc, &mut problems);
            }
        }
        Ok(Some(other)) => {
            problems.push(Problem::new(
                &file_src,
                "",
                format!("the config must be a JSON object, got {}", json_kind(&other)),
            ));
            gaps.file_unreadable(&file_src);
        }
        Err(p) => {
            problems.push(p);
            gaps.file_unreadable(&file_src);
        }
    }

    for (name, rc) in read_dropins(&dropin_dir(&config_file), &mut problems, &mut gaps) {
        add(name, rc, &mut problems);
    }

    // Scalar settings: flag or file, never both (the user must say which wins).
    let data_root = pick("data-root", &flags.data_root, file.data_root, &file_src, &mut problems, &mut gaps)
        .unwrap_or_else(|| DEFAULT_DATA_ROOT.into());
    let exec_root = pick("exec-root", &flags.exec_root, file.exec_root, &file_src, &mut problems, &mut gaps)
        .unwrap_or_else(|| DEFAULT_EXEC_ROOT.into());
    let flag_hosts = (!flags.hosts.is_empty()).then(|| flags.hosts.clone());
    let hosts = pick("hosts", &flag_hosts, file.hosts, &file_src, &mut problems, &mut gaps)
        .unwrap_or_else(|| vec![DEFAULT_HOST.to_string()]);
    let containerd = pick("containerd", &flags.containerd, file.containerd, &file_src, &mut problems, &mut gaps);
    let debug = pick("debug", &flags.debug, file.debug, &file_src, &mut problems, &mut gaps).unwrap_or(false);
    let log_level = pick("log-level", &flags.log_level, file.log_level, &file_src, &mut problems, &mut gaps)
        .unwrap_or_else(|| "info".into());
    let default_source = match (&flags.default_runtime, &file.default_runtime) {
        (Some(_), None) => Source::Flag("--default-runtime".into()),
        (None, Some(_)) => file_src.clone(),
        _ => Source::Builtin,
    };
    let default_runtime =
        pick("default-runtime", &flags.default_runtime, file.default_runtime, &file_src, &mut problems, &mut gaps)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_RUNTIME.into());

    for (i, h) in hosts.iter().enumerate() {
        if let Err(msg) = check_host(h) {
            let src = if flag_hosts.is_some() { Source::Flag("--host".into()) } else { file_src.clone() };
            problems.push(Problem::new(&src, format!("hosts[{i}]"), msg));
        }
    }
    if !LOG_LEVELS.contains(&log_level.as_str()) {
        let src = if flags.log_level.is_some() { Source::Flag("--log-level".into()) } else { file_src.clone() };
        problems.push(Problem::new(
            &src,
            "log-level",
            format!("unknown log level {log_level:?}; use one of {}", LOG_LEVELS.join(", ")),
        ));
    }
    for (key, p) in [("data-root", &data_root), ("exec-root", &exec_root)] {
        if !p.is_absolute() {
            problems.push(Problem::new(&file_src, key, format!("must be an absolute path, got {}", p.display())));
        }
    }
    let metrics_addr = match file.metrics_addr.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(a) => match parse_metrics_addr(a) {
            Ok(addr) => Some(addr),
            Err(msg) => {
                problems.push(Problem::new(&file_src, "metrics-addr", msg));
                gaps.unknown_keys.insert("metrics-addr".into());
                None
            }
        },
    };
    if let Some(c) = &containerd {
        if !c.is_absolute() {
            problems.push(Problem::new(&file_src, "containerd", format!("must be an absolute socket path, got {}", c.display())));
        }
    }

    let seccomp_profile = match file.seccomp_profile.as_deref() {
        None | Some("") | Some("builtin") => SeccompProfileSetting::Builtin,
        Some("unconfined") => SeccompProfileSetting::Unconfined,
        Some(path) => match read_seccomp_profile(Path::new(path)) {
            Ok(json) => SeccompProfileSetting::File { path: PathBuf::from(path), json: Arc::new(json) },
            Err(why) => {
                problems.push(Problem::new(&file_src, "seccomp-profile", why));
                SeccompProfileSetting::Builtin
            }
        },
    };
    let log_driver = file.log_driver.filter(|d| !d.is_empty()).unwrap_or_else(|| logconfig::JSON_FILE.into());
    let log_opts = file.log_opts.unwrap_or_default();
    if let Err(e) = logconfig::validate(&log_driver, &log_opts) {
        let key = if matches!(e, logconfig::LogConfigError::UnknownDriver(_) | logconfig::LogConfigError::UnsupportedDriver(_)) {
            "log-driver"
        } else {
            "log-opts"
        };
        problems.push(Problem::new(&file_src, key, e.to_string()));
    }

    let exec_opts = execopts::parse(file.exec_opts.as_deref().unwrap_or_default()).unwrap_or_else(|bad| {
        for (i, msg) in bad {
            problems.push(Problem::new(&file_src, format!("exec-opts[{i}]"), msg));
        }
        gaps.unknown_keys.insert("exec-opts".into());
        ExecOpts::default()
    });

    let config = EffectiveConfig {
        config_file,
        data_root,
        exec_root,
        hosts,
        containerd,
        debug,
        log_level,
        live_restore: file.live_restore.unwrap_or(true),
        allow_implicit_shims: file.allow_implicit_shims.unwrap_or(true),
        default_runtime,
        default_runtime_source: default_source,
        metrics_addr,
        log_driver,
        log_opts,
        runtimes,
        seccomp_profile,
        no_new_privileges: file.no_new_privileges.unwrap_or(false),
        exec_opts,
        network: file.network,
        init: file.init.unwrap_or(false),
        init_path: file.init_path,
    };
    Loaded { config, problems, gaps }
}

/// Reads and checks a seccomp profile file (Docker's format).
fn read_seccomp_profile(path: &Path) -> Result<String, String> {
    if !path.is_absolute() {
        return Err(format!("must be an absolute path (or \"builtin\", \"unconfined\"), got {}", path.display()));
    }
    let mut f = fs::File::open(path).map_err(|e| format!("cannot read the seccomp profile {}: {e}", path.display()))?;
    let mut json = String::new();
    let limit = berth_security::seccomp::MAX_PROFILE_BYTES as u64 + 1;
    io::Read::read_to_string(&mut io::Read::take(&mut f, limit), &mut json)
        .map_err(|e| format!("cannot read the seccomp profile {}: {e}", path.display()))?;
    berth_security::Profile::parse(&json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(json)
}

/// `host:port`, or just `port` / `:port` for loopback (the default host).
fn parse_metrics_addr(a: &str) -> Result<std::net::SocketAddr, String> {
    let with_host = if a.parse::<u16>().is_ok() {
        format!("127.0.0.1:{a}")
    } else if let Some(p) = a.strip_prefix(':') {
        format!("127.0.0.1:{p}")
    } else {
        a.to_string()
    };
    with_host.parse().map_err(|_| format!("invalid address {a:?}: use host:port such as 127.0.0.1:9323 (a bare port means loopback)"))
}

/// A setting given both as a flag and in the file is an error, as in dockerd.
fn pick<T: Clone>(
    key: &str,
    flag: &Option<T>,
    file: Option<T>,
    file_src: &Source,
    problems: &mut Vec<Problem>,
    gaps: &mut Gaps,
) -> Option<T> {
    match (flag, file) {
        (Some(_), Some(_)) => {
            gaps.unknown_keys.insert(key.to_string());
            problems.push(Problem::new(
                file_src,
                key,
                format!("{key} is set both by flag --{key} and in the config file; remove one of them"),
            ));
            None
        }
        (Some(f), None) => Some(f.clone()),
        (None, f) => f,
    }
}

fn check_host(h: &str) -> Result<(), String> {
    if h == "fd://" {
        return Ok(()); // systemd socket activation
    }
    match h.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(()),
        Some(p) => Err(format!("unix socket path must be absolute, got {p:?}")),
        None => Err(format!("unsupported host {h:?}: berth listens on unix sockets only; use unix:///path/to.sock (or fd:// under systemd socket activation)")),
    }
}

/// Reads a JSON file. `Ok(None)` if it does not exist; an empty or
/// whitespace-only file is an empty object. A UTF-8 BOM is skipped.
fn read_json_file(path: &Path) -> Result<Option<Value>, Problem> {
    let src = Source::File(path.to_path_buf());
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Problem::new(&src, "", format!("cannot read the file: {e}"))),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Some(Value::Object(Map::new())));
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| Problem::new(&src, "", format!("invalid JSON: {e}; fix the file and retry")))
}

fn unknown_key(key: &str, valid: &[&str]) -> String {
    let norm = |s: &str| s.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect::<String>();
    let k = norm(key);
    let best = valid
        .iter()
        .map(|v| (edit_distance(&k, &norm(v)), *v))
        .min()
        .filter(|(d, _)| *d <= 2);
    match best {
        Some((_, v)) => format!("unknown key {key:?}; did you mean {v:?}?"),
        None => format!("unknown key {key:?}; valid keys are: {}", valid.join(", ")),
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_file(
    top: &Map<String, Value>,
    src: &Source,
    out: &mut FileSettings,
    problems: &mut Vec<Problem>,
    gaps: &mut Gaps,
) -> Vec<(String, RuntimeConfig)> {
    let mut runtimes = Vec::new();
    for (key, value) in top {
        let mut bad_type = |want: &str| {
            problems.push(Problem::new(src, key.as_str(), format!("must be {want}, got {}", json_kind(value))));
            gaps.unknown_keys.insert(key.clone());
        };
        match key.as_str() {
            "runtimes" => match value {
                Value::Object(m) => runtimes.extend(parse_runtime_map(m, src, "runtimes.", problems, &mut gaps.broken_runtimes)),
                Value::Null => {}
                _ => bad_type("an object of runtimes"),
            },
            "default-runtime" => match value {
                Value::String(s) => out.default_runtime = Some(s.clone()),
                _ => bad_type("a string"),
            },
            "data-root" | "exec-root" | "containerd" => match value {
                Value::String(s) => {
                    let p = Some(PathBuf::from(s));
                    match key.as_str() {
                        "data-root" => out.data_root = p,
                        "exec-root" => out.exec_root = p,
                        _ => out.containerd = p,
                    }
                }
                _ => bad_type("a string"),
            },
            "hosts" => match string_array(value) {
                Some(v) => out.hosts = Some(v),
                None => bad_type("an array of strings"),
            },
            "exec-opts" => match string_array(value) {
                Some(v) => out.exec_opts = Some(v),
                None => bad_type("an array of strings such as [\"native.cgroupdriver=systemd\"]"),
            },
            "debug" | "live-restore" | "allow-implicit-shims" | "no-new-privileges" | "init" => match value {
                Value::Bool(b) => match key.as_str() {
                    "debug" => out.debug = Some(*b),
                    "init" => out.init = Some(*b),
                    "live-restore" => out.live_restore = Some(*b),
                    "no-new-privileges" => out.no_new_privileges = Some(*b),
                    _ => out.allow_implicit_shims = Some(*b),
                },
                _ => bad_type("true or false"),
            },
            "init-path" => match value {
                Value::String(s) if s.starts_with('/') => out.init_path = Some(PathBuf::from(s)),
                Value::String(s) => problems.push(Problem::new(src, key.as_str(), format!("must be an absolute path, got {s:?}"))),
                _ => bad_type("a string: the init binary's absolute path"),
            },
            "log-level" => match value {
                Value::String(s) => out.log_level = Some(s.clone()),
                _ => bad_type("a string"),
            },
            "metrics-addr" => match value {
                Value::String(s) => out.metrics_addr = Some(s.clone()),
                _ => bad_type("a string such as \"127.0.0.1:9323\""),
            },
            "seccomp-profile" => match value {
                Value::String(s) => out.seccomp_profile = Some(s.clone()),
                _ => bad_type("a string: a profile file's path, \"builtin\" or \"unconfined\""),
            },
            "log-driver" => match value {
                Value::String(s) => out.log_driver = Some(s.clone()),
                _ => bad_type("a string such as \"json-file\""),
            },
            "log-opts" => match value {
                Value::Object(m) => {
                    let strings: Option<BTreeMap<String, String>> =
                        m.iter().map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect();
                    match strings {
                        Some(o) => out.log_opts = Some(o),
                        None => bad_type("an object of strings (write numbers quoted: {\"max-file\": \"3\"})"),
                    }
                }
                Value::Null => {}
                _ => bad_type("an object of strings such as {\"max-size\": \"10m\"}"),
            },
            k if crate::netconfig::KEYS.contains(&k) => {
                if let Err(msg) = crate::netconfig::apply(&mut out.network, k, value) {
                    problems.push(Problem::new(src, k, msg));
                    gaps.unknown_keys.insert(key.clone());
                }
            }
            other => problems.push(Problem::new(src, other, unknown_key(other, TOP_LEVEL_KEYS))),
        }
    }
    runtimes
}

fn string_array(v: &Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|e| e.as_str().map(str::to_owned)).collect()
}

/// Reads every `*.json` in the drop-in directory, in name order. Each holds
/// `{"name": {runtime object}}`.
fn read_dropins(dir: &Path, problems: &mut Vec<Problem>, gaps: &mut Gaps) -> Vec<(String, RuntimeConfig)> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            let src = Source::File(dir.into());
            problems.push(Problem::new(&src, "", format!("cannot read the drop-in directory: {e}")));
            gaps.unreadable.push(src);
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.is_dir())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let src = Source::File(path.clone());
        match read_json_file(&path) {
            Ok(Some(Value::Object(m))) => out.extend(parse_runtime_map(&m, &src, "", problems, &mut gaps.broken_runtimes)),
            Ok(Some(other)) => {
                problems.push(Problem::new(
                    &src,
                    "",
                    format!("a drop-in must be a JSON object of runtimes ({{\"name\": {{\"path\": ...}}}}), got {}", json_kind(&other)),
                ));
                gaps.unreadable.push(src);
            }
            Ok(None) => {} // removed while we were reading: not there
            Err(p) => {
                problems.push(p);
                gaps.unreadable.push(src);
            }
        }
    }
    out
}

fn parse_runtime_map(
    m: &Map<String, Value>,
    src: &Source,
    prefix: &str,
    problems: &mut Vec<Problem>,
    broken: &mut BTreeSet<String>,
) -> Vec<(String, RuntimeConfig)> {
    let mut out = Vec::new();
    for (name, value) in m {
        let subject = format!("{prefix}{name}");
        match value {
            Value::Object(obj) => match parse_runtime_object(name, obj, src, &subject, problems) {
                Some(def) => out.push((name.clone(), RuntimeConfig { def, source: src.clone() })),
                None => {
                    broken.insert(name.clone());
                }
            },
            other => {
                problems.push(Problem::new(
                    src,
                    subject,
                    format!("a runtime must be an object such as {{\"path\": \"/usr/bin/crun\"}}, got {}", json_kind(other)),
                ));
                broken.insert(name.clone());
            }
        }
    }
    out
}

/// Checks a runtime name: charset and reserved names.
fn check_name(name: &str, src: &Source, subject: &str, problems: &mut Vec<Problem>) -> bool {
    if STOCK_RUNTIMES.contains(&name) {
        problems.push(Problem::new(
            src,
            subject,
            format!("runtime name '{name}' is reserved (it is built in); choose another name"),
        ));
        return false;
    }
    if !valid_runtime_name(name) {
        problems.push(Problem::new(
            src,
            subject,
            format!(
                "invalid runtime name {name:?}: names must match [A-Za-z0-9][A-Za-z0-9_.+-]{{0,127}}"
            ),
        ));
        return false;
    }
    true
}

/// Parses and checks one runtime object (Docker's rules plus berth's).
fn parse_runtime_object(
    name: &str,
    obj: &Map<String, Value>,
    src: &Source,
    subject: &str,
    problems: &mut Vec<Problem>,
) -> Option<RuntimeDef> {
    let before = problems.len();
    check_name(name, src, subject, problems);
    let mut path = String::new();
    let mut args: Vec<String> = Vec::new();
    let mut runtime_type = String::new();
    let mut opts = Map::new();
    for (key, value) in obj {
        let key_subject = format!("{subject}.{key}");
        let mut bad = |want: &str| {
            problems.push(Problem::new(src, key_subject.clone(), format!("must be {want}, got {}", json_kind(value))))
        };
        match (key.as_str(), value) {
            (_, Value::Null) if RUNTIME_KEYS.contains(&key.as_str()) => {}
            ("path", Value::String(s)) => path = s.clone(),
            ("path", _) => bad("a string"),
            ("runtimeType", Value::String(s)) => runtime_type = s.clone(),
            ("runtimeType", _) => bad("a string"),
            ("runtimeArgs", v) => match string_array(v) {
                Some(a) => args = a,
                None => bad("an array of strings"),
            },
            ("options", Value::Object(m)) => opts = m.clone(),
            ("options", _) => bad("an object"),
            (other, _) => problems.push(Problem::new(src, key_subject.clone(), unknown_key(other, RUNTIME_KEYS))),
        }
    }
    let rule = |msg: &str| Problem::new(src, subject, format!("runtime {name}: {msg}"));
    match (path.is_empty(), runtime_type.is_empty()) {
        (true, true) => problems.push(rule("either a runtimeType or a path must be configured")),
        (false, false) => problems.push(rule("cannot configure both path and runtimeType for the same runtime")),
        (false, true) => {
            if !opts.is_empty() {
                problems.push(rule("options cannot be used with a path runtime"));
            }
            if path.contains('\0') || args.iter().any(|a| a.contains('\0')) {
                problems.push(rule("path and runtimeArgs cannot contain NUL bytes"));
            }
            if path.contains('/') && !path.starts_with('/') {
                problems.push(rule(&format!(
                    "path must be absolute or a bare command name looked up on PATH, got {path:?}"
                )));
            }
        }
        (true, false) => {
            if !args.is_empty() {
                problems.push(rule("args cannot be used with a runtimeType runtime"));
            }
            if !(permissible_shim_name(&runtime_type) || runtime_type.starts_with('/')) {
                problems.push(rule(&format!(
                    "runtimeType {runtime_type:?} is neither a containerd shim name (such as io.containerd.runsc.v1) nor an absolute path to a shim binary"
                )));
            }
            match options::decode(&runtime_type, &opts) {
                Ok(o) if problems.len() == before => {
                    return Some(RuntimeDef::Shim { runtime_type, options: o });
                }
                Ok(_) => {}
                Err(errs) => {
                    for e in errs {
                        problems.push(Problem::new(src, format!("{subject}.options"), e));
                    }
                }
            }
            return None;
        }
    }
    (problems.len() == before).then_some(RuntimeDef::Path { path, args })
}

/// Parses `--add-runtime name=path` values (dockerd's rules, except that the
/// name is kept as given: folding it to lower case, as dockerd does, would
/// make `--add-runtime MyRT=...` and `"MyRT"` in a file different runtimes).
fn parse_add_runtime_flags(values: &[String], problems: &mut Vec<Problem>, gaps: &mut Gaps) -> Vec<(String, RuntimeConfig)> {
    let src = Source::Flag("--add-runtime".into());
    let mut out = Vec::new();
    for raw in values {
        let Some((name, path)) = raw.split_once('=') else {
            problems.push(Problem::new(&src, raw.as_str(), format!("invalid runtime argument: {raw} (expected name=path)")));
            continue;
        };
        let (name, path) = (name.trim(), path.trim());
        if name.is_empty() || path.is_empty() {
            problems.push(Problem::new(&src, raw.as_str(), format!("invalid runtime argument: {raw} (expected name=path)")));
            continue;
        }
        let mut obj = Map::new();
        obj.insert("path".into(), Value::String(path.into()));
        let subject = format!("runtime {name}");
        match parse_runtime_object(name, &obj, &src, &subject, problems) {
            Some(def) => out.push((name.to_string(), RuntimeConfig { def, source: src.clone() })),
            None => {
                gaps.broken_runtimes.insert(name.to_string());
            }
        }
    }
    out
}
