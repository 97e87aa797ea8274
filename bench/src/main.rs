//! berth-bench: berth vs dockerd vs ctr, side by side. See bench/README.md.

mod engines;
mod http;
mod proc;
mod report;
mod scenarios;
mod stats;

use engines::{Engine, Kind};
use report::{Better, Panel, Results, Row, Target};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Iteration counts and limits; `--quick` and `--full` presets, each
/// overridable by a `BENCH_*` environment variable.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: &'static str,
    pub warmup: usize,
    pub runs: usize,
    pub tp_runs: usize,
    pub tp_clients: usize,
    pub tp_rounds: usize,
    pub containers: usize,
    pub ps_runs: usize,
    pub starts: usize,
    pub reload_runtimes: usize,
    pub reloads: usize,
    pub reload_runs: usize,
    pub reload_block_runs: usize,
    pub reload_interval: Duration,
    pub log_mib: u64,
    pub log_runs: usize,
    pub execs: usize,
    pub exec_clients: usize,
    pub cmd_timeout: Duration,
    pub scenario_budget: Duration,
    pub only: Vec<String>,
    pub out: PathBuf,
    pub load_at_start: String,
}

const SCENARIOS: [&str; 9] = ["latency", "runtimes", "throughput", "logs", "reload", "containers", "seccomp", "execs", "network"];

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("bench: ignoring {name}={v:?} (not a number)");
            default
        }),
        Err(_) => default,
    }
}

impl Settings {
    fn new(quick: bool, bench_dir: &Path) -> Settings {
        let q = |quick_v: usize, full_v: usize| if quick { quick_v } else { full_v };
        Settings {
            mode: if quick { "quick" } else { "full" },
            warmup: env_num("BENCH_WARMUP", 2),
            runs: env_num("BENCH_RUNS", q(15, 100)),
            tp_runs: env_num("BENCH_TP_RUNS", 100),
            tp_clients: env_num("BENCH_TP_CLIENTS", 8),
            tp_rounds: env_num("BENCH_TP_ROUNDS", q(1, 3)),
            containers: env_num("BENCH_CONTAINERS", 1000),
            ps_runs: env_num("BENCH_PS_RUNS", q(20, 100)),
            starts: env_num("BENCH_STARTS", q(2, 5)),
            reload_runtimes: env_num("BENCH_RELOAD_RUNTIMES", 100),
            reloads: env_num("BENCH_RELOADS", q(20, 100)),
            reload_runs: env_num("BENCH_RELOAD_RUNS", q(120, 400)),
            reload_block_runs: env_num("BENCH_RELOAD_BLOCK_RUNS", 10),
            reload_interval: Duration::from_millis(env_num("BENCH_RELOAD_INTERVAL_MS", 100)),
            log_mib: env_num("BENCH_LOG_MIB", q(256, 1024) as u64),
            log_runs: env_num("BENCH_LOG_RUNS", q(1, 3)),
            execs: env_num("BENCH_EXECS", q(1000, 10000)),
            exec_clients: env_num("BENCH_EXEC_CLIENTS", 4),
            cmd_timeout: Duration::from_secs(env_num("BENCH_CMD_TIMEOUT_S", 120)),
            scenario_budget: Duration::from_secs(env_num("BENCH_SCENARIO_BUDGET_S", q(300, 1800) as u64)),
            only: Vec::new(),
            out: bench_dir.join("results"),
            load_at_start: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }
    }

    fn wants(&self, s: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == s)
    }
}

const USAGE: &str = "usage: bench/run [--quick|--full] [--only latency,runtimes,throughput,logs,reload,containers,seccomp,execs] [--out DIR]
  --quick   a few minutes: fewer iterations (default is --full)
  --full    the full run (tens of minutes)
  --only    run only these scenarios (idle memory is always measured)
  --out     where results.md, chart.png, results.json, machine.txt go (default bench/results)
Iteration counts: BENCH_RUNS, BENCH_WARMUP, BENCH_TP_RUNS, BENCH_TP_CLIENTS, BENCH_TP_ROUNDS,
  BENCH_CONTAINERS, BENCH_PS_RUNS, BENCH_STARTS, BENCH_RELOAD_RUNTIMES, BENCH_RELOADS,
  BENCH_RELOAD_RUNS, BENCH_RELOAD_BLOCK_RUNS, BENCH_RELOAD_INTERVAL_MS, BENCH_LOG_MIB, BENCH_LOG_RUNS,
  BENCH_EXECS, BENCH_EXEC_CLIENTS, BENCH_CMD_TIMEOUT_S, BENCH_SCENARIO_BUDGET_S; BERTH_BIN (default target/release/berth), BENCH_FONT.";

/// Everything started lives under one temp dir; this guard stops and
/// removes it all, whatever way the run ends (error, Ctrl-C, panic).
struct Guard {
    root: PathBuf,
    berth: Option<Engine>,
    dockerd: Option<Engine>,
}

impl Guard {
    fn cleanup(&mut self) {
        eprintln!("bench: cleaning up {}", self.root.display());
        for e in [self.berth.as_mut(), self.dockerd.as_mut()].into_iter().flatten() {
            if e.daemon.child.is_some() && e.daemon.exited().is_none() {
                match e.remove_all(8) {
                    Ok(n) if n > 0 => eprintln!("bench:   removed {n} containers from {}", e.kind.name()),
                    Ok(_) => {}
                    Err(err) => eprintln!("bench:   could not list {}'s containers: {err}", e.kind.name()),
                }
            }
            e.daemon.stop(Duration::from_secs(60));
            if let Some(c) = e.containerd.as_mut() {
                c.stop(Duration::from_secs(30));
            }
        }
        self.berth = None;
        self.dockerd = None;
        kill_leftovers(&self.root);
        proc::unmount_below(&self.root);
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            if self.root.exists() {
                eprintln!("bench:   could not remove {}: {e}", self.root.display());
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Processes still mentioning our temp root (shims, a containerd), ours by
/// construction: SIGTERM, then SIGKILL.
fn kill_leftovers(root: &Path) {
    let needle = root.display().to_string();
    let pids = proc::pids_mentioning(&needle);
    if pids.is_empty() {
        return;
    }
    eprintln!("bench:   stopping {} leftover process(es) under {}", pids.len(), needle);
    for p in &pids {
        unsafe { libc::kill(*p as i32, libc::SIGTERM) };
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) && pids.iter().any(|p| proc::alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in pids.iter().filter(|p| proc::alive(**p)) {
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
}

/// Temp roots of earlier runs that died without cleaning up (SIGKILL):
/// their owner pid is gone. Cleans them.
fn clean_stale() {
    let Ok(rd) = std::fs::read_dir("/tmp") else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("bbench.") {
            continue;
        }
        let p = e.path();
        let owner = std::fs::read_to_string(p.join("owner.pid")).ok().and_then(|s| s.trim().parse::<u32>().ok());
        if owner.map(proc::alive).unwrap_or(false) {
            continue;
        }
        eprintln!("bench: cleaning up a stale run in {}", p.display());
        kill_leftovers(&p);
        proc::unmount_below(&p);
        let _ = std::fs::remove_dir_all(&p);
    }
}

fn mkdtemp() -> Result<PathBuf, String> {
    let tmpl = std::ffi::CString::new("/tmp/bbench.XXXXXX").unwrap();
    let raw = tmpl.into_raw();
    let p = unsafe { libc::mkdtemp(raw) };
    let s = unsafe { std::ffi::CString::from_raw(raw) };
    if p.is_null() {
        return Err(format!("mkdtemp: {}", std::io::Error::last_os_error()));
    }
    Ok(PathBuf::from(s.into_string().unwrap()))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn machine_description(berth_bin: &Path, repo: &Path) -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let mem_gib = mem.trim_end_matches("kB").trim().parse::<f64>().map(|k| format!("{:.1} GiB", k / 1048576.0)).unwrap_or(mem);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_default();
    let kernel = proc::version_of("uname", &["-sr"]);
    let git = {
        let mut c = Command::new("git");
        c.arg("-C").arg(repo).args(["describe", "--always", "--dirty"]);
        proc::run(c, Duration::from_secs(10), false).map(|o| o.stdout_str().trim().to_string()).unwrap_or_default()
    };
    let cgroup = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified").exists() {
        "hybrid (v1 + v2)"
    } else {
        "v1"
    };
    format!(
        "CPU:        {model}\ncores:      {cores}\nmemory:     {mem_gib}\nOS:         {os}\nkernel:     {kernel}\ncgroups:    {cgroup}\n\
         berth:      {} (git {git})\ndockerd:    {}\ncontainerd: {}\nrunc:       {}\ndocker CLI: {}\nctr:        {}\n",
        proc::version_of(&berth_bin.display().to_string(), &["--version"]),
        proc::version_of("dockerd", &["--version"]),
        proc::version_of("containerd", &["--version"]),
        proc::version_of("runc", &["--version"]),
        proc::version_of("docker", &["--version"]),
        proc::version_of("ctr", &["--version"]),
    )
}

fn main() {
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = bench_dir.parent().unwrap().to_path_buf();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut quick = false;
    let mut only = Vec::new();
    let mut out = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => quick = true,
            "--full" => quick = false,
            "--only" => {
                i += 1;
                only = args.get(i).map(|s| s.split(',').map(String::from).collect()).unwrap_or_default();
            }
            "--out" => {
                i += 1;
                out = args.get(i).map(PathBuf::from);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("bench: unknown argument {other}\n{USAGE}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let mut s = Settings::new(quick, &bench_dir);
    for o in &only {
        if !SCENARIOS.contains(&o.as_str()) {
            eprintln!("bench: unknown scenario {o}; choose from {}", SCENARIOS.join(","));
            std::process::exit(2);
        }
    }
    s.only = only;
    if let Some(o) = out {
        s.out = o;
    }
    proc::install_signal_flag();
    let code = match run_all(&s, &repo) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench: error: {e}");
            if proc::interrupted() {
                130
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn run_all(s: &Settings, repo: &Path) -> Result<(), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("run as root (the daemons need it)".into());
    }
    let berth_bin = std::env::var("BERTH_BIN").map(PathBuf::from).unwrap_or_else(|_| repo.join("target/release/berth"));
    if !berth_bin.exists() {
        return Err(format!("{} not found: cargo build --release -p berth", berth_bin.display()));
    }
    for prog in ["docker", "dockerd", "containerd", "ctr", "runc", "tar"] {
        let mut c = Command::new("sh");
        c.args(["-c", &format!("command -v {prog}")]);
        if !proc::run(c, Duration::from_secs(5), false).map(|o| o.ok).unwrap_or(false) {
            return Err(format!("{prog} not found on PATH"));
        }
    }
    report::load_font()?;
    clean_stale();
    let started = Instant::now();
    let root = mkdtemp()?;
    std::fs::write(root.join("owner.pid"), std::process::id().to_string()).map_err(|e| e.to_string())?;
    let mut g = Guard { root: root.clone(), berth: None, dockerd: None };
    // Panics unwind through `g`, whose Drop cleans up.
    let r = bench(s, repo, &berth_bin, &mut g, started);
    if let Err(e) = &r {
        for e in [g.berth.as_ref(), g.dockerd.as_ref()].into_iter().flatten() {
            let tail = e.daemon.log_tail(15);
            if !tail.is_empty() && !proc::interrupted() {
                eprintln!("bench: last lines of {}'s log:\n{tail}", e.kind.name());
            }
        }
        eprintln!("bench: stopping after: {e}");
    }
    g.cleanup();
    std::mem::forget(g);
    eprintln!("bench: total time {:.0} s", started.elapsed().as_secs_f64());
    r
}

fn bench(s: &Settings, repo: &Path, berth_bin: &Path, g: &mut Guard, started: Instant) -> Result<(), String> {
    let root = g.root.clone();
    eprintln!("bench: {} run, temp root {}", s.mode, root.display());
    let run_fs = engines::mount_run_tmpfs(&root)?;
    let machine = format!("{}exec roots: {run_fs}\n", machine_description(berth_bin, repo));
    eprint!("{machine}");

    eprintln!("bench: starting berth, containerd + dockerd");
    g.berth = Some(engines::start_berth(&root, berth_bin)?);
    g.dockerd = Some(engines::start_dockerd(&root)?);
    let tar = engines::build_image_tar(&root)?;
    {
        let (b, d) = (g.berth.as_ref().unwrap(), g.dockerd.as_ref().unwrap());
        engines::import_image(b, &tar)?;
        engines::import_image(d, &tar)?;
        // The floor sees the image berth imported.
        let o = proc::run_ok(engines::ctr(&b.ctd_sock, &["images", "ls", "-q"]), Duration::from_secs(30))?;
        if !o.stdout_str().lines().any(|l| l.trim() == engines::CTR_IMAGE) {
            return Err(format!("ctr does not see {} in namespace {}: {}", engines::CTR_IMAGE, engines::BERTH_NS, o.stdout_str()));
        }
    }

    let mut res = Results::default();
    // Scenario 5a: idle memory, image imported, nothing run yet.
    std::thread::sleep(Duration::from_secs(2));
    let (b, d) = (g.berth.as_ref().unwrap(), g.dockerd.as_ref().unwrap());
    let kib = |v: Option<u64>| v.map(|k| k as f64 / 1024.0);
    let idle = [kib(b.rss()), kib(d.rss())];
    let idle_ctd = [kib(b.containerd_rss()), kib(d.containerd_rss())];
    res.raw("rss_idle_mib", serde_json::json!({"berth": idle[0], "dockerd": idle[1], "containerd_berth": idle_ctd[0], "containerd_dockerd": idle_ctd[1]}));

    let (mut berth, mut dockerd) = (g.berth.take().unwrap(), g.dockerd.take().unwrap());
    let outcome = {
        let mut cx = scenarios::Ctx { berth: &mut berth, dockerd: &mut dockerd, s, res: &mut res, berth_bin: berth_bin.to_path_buf() };
        run_scenarios(&mut cx)
    };
    g.berth = Some(berth);
    g.dockerd = Some(dockerd);

    // Memory rows (idle, and with N containers when that scenario ran).
    res.rows.insert(
        0,
        Row::new("5. memory", "daemon RSS idle (image imported, no containers)", "MiB", Better::Lower)
            .set(Kind::Berth, idle[0])
            .set(Kind::Dockerd, idle[1])
            .target(Target {
                text: "< 15 MiB".into(),
                met: idle[0].map(|v| v < 15.0),
                detail: format!("{} MiB", report::fmt(idle[0])),
            }),
    );
    res.rows.insert(
        1,
        Row::new("5. memory", "its containerd's RSS idle", "MiB", Better::Lower)
            .set(Kind::Berth, idle_ctd[0])
            .set(Kind::Dockerd, idle_ctd[1]),
    );
    let with_n = res.raw.get("rss_n_for_chart").cloned();
    let n_rss: Vec<Option<f64>> = with_n
        .and_then(|v| v.as_array().cloned())
        .map(|a| a.iter().map(|x| x.as_f64()).collect())
        .unwrap_or_else(|| vec![None, None]);
    let mut cats = vec!["idle".to_string()];
    let mut bser = vec![idle[0]];
    let mut dser = vec![idle[1]];
    if res.raw.contains_key("rss_n_for_chart") {
        cats.push(format!("{} containers", s.containers));
        bser.push(n_rss[0]);
        dser.push(n_rss[1]);
    }
    res.raw.remove("rss_n_for_chart");
    let mem_panel = Panel { title: "daemon RSS (MiB)".into(), categories: cats, series: vec![(Kind::Berth, bser), (Kind::Dockerd, dser)] };
    // Put memory before start-up in the chart.
    let pos = res.panels.iter().position(|p| p.title.starts_with("start-up")).unwrap_or(res.panels.len());
    res.panels.insert(pos, mem_panel);
    // Sort rows by scenario number for the table.
    res.rows.sort_by(|a, b| a.section.cmp(&b.section));

    if let Err(e) = &outcome {
        if proc::interrupted() {
            return Err(e.clone());
        }
        res.problem(format!("run stopped early: {e}"));
    }
    write_results(s, &res, &machine, started)?;
    outcome
}

fn run_scenarios(cx: &mut scenarios::Ctx) -> Result<(), String> {
    type Scenario = fn(&mut scenarios::Ctx) -> Result<(), String>;
    let list: [(&str, Scenario); 9] = [
        ("latency", scenarios::latency),
        ("seccomp", scenarios::seccomp),
        ("runtimes", scenarios::runtimes),
        ("throughput", scenarios::throughput),
        ("logs", scenarios::logs),
        ("reload", scenarios::reload),
        ("execs", scenarios::execs),
        ("containers", scenarios::containers),
        ("network", scenarios::network),
    ];
    for (name, f) in list {
        if !cx.s.wants(name) {
            continue;
        }
        let t = Instant::now();
        match f(cx) {
            Ok(()) => eprintln!("bench: {name} done in {:.0} s", t.elapsed().as_secs_f64()),
            Err(e) if proc::interrupted() => return Err(e),
            Err(e) => {
                // One broken scenario does not lose the others' figures.
                cx.res.problem(format!("scenario {name} failed: {e}"));
                for en in [&mut *cx.berth, &mut *cx.dockerd] {
                    if let Some(x) = en.daemon.exited() {
                        return Err(format!("{x}\n{}", en.daemon.log_tail(20)));
                    }
                }
            }
        }
        // Leave no container behind for the next scenario.
        for en in [&*cx.berth, &*cx.dockerd] {
            if name != "containers" {
                let _ = en.remove_all(8);
            }
        }
    }
    Ok(())
}

fn write_results(s: &Settings, res: &Results, machine: &str, started: Instant) -> Result<(), String> {
    std::fs::create_dir_all(&s.out).map_err(|e| format!("{}: {e}", s.out.display()))?;
    let date = proc::version_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let header = format!(
        "# berth benchmarks: {} run, {date}\n\nMachine: see `machine.txt` ({cores} cores; load average at the start {}, at the end {load}: \
         other work on the machine shows up as noise). Total time {:.0} s. \
         Engines interleaved run by run; times are wall-clock as a user sees them (docker CLI or ctr), \
         \"API\" rows are the harness's own HTTP request over the unix socket. \
         The two ratio columns compare cost: for times they are berth ÷ ctr and dockerd ÷ berth, for rates (containers/s, MiB/s) \
         the inverse, so above 1 always means the left one is slower (dockerd ÷ berth = 2x: berth is twice as fast). \
         Settings: {} run latency samples/engine, throughput {} runs × {} clients × {} round(s), {} containers for ps/inspect, \
         {} reloads of {} runtimes, {} MiB of logs × {} round(s), {} execs × {} clients.\n",
        s.mode,
        s.load_at_start,
        started.elapsed().as_secs_f64(),
        s.runs,
        s.tp_runs,
        s.tp_clients,
        s.tp_rounds,
        s.containers,
        s.reloads,
        s.reload_runtimes,
        s.log_mib,
        s.log_runs,
        s.execs,
        s.exec_clients
    );
    let md = report::markdown(res, &header);
    let md = format!("{md}\n![chart](chart.png)\n");
    std::fs::write(s.out.join("results.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(s.out.join("machine.txt"), machine).map_err(|e| e.to_string())?;
    let rows: Vec<serde_json::Value> = res
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({"scenario": r.section, "metric": r.metric, "unit": r.unit, "note": r.note, "better": if r.better == Better::Lower { "lower" } else { "higher" },
            "berth": r.berth, "dockerd": r.dockerd, "ctr": r.ctr,
            "target": r.target.as_ref().map(|t| serde_json::json!({"text": t.text, "met": t.met, "detail": t.detail}))})
        })
        .collect();
    let json = serde_json::json!({"mode": s.mode, "date": date, "rows": rows, "raw": res.raw, "problems": res.problems});
    std::fs::write(s.out.join("results.json"), serde_json::to_vec_pretty(&json).unwrap()).map_err(|e| e.to_string())?;
    let subtitle = format!("{} run, {date}; {}", s.mode, machine.lines().next().unwrap_or("").trim_start_matches("CPU:").trim());
    if let Err(e) = report::chart(res, &s.out.join("chart.png"), &format!("{subtitle}, {cores} cores")) {
        eprintln!("bench: chart not written: {e}");
    }
    println!("{md}");
    eprintln!("bench: results in {}", s.out.display());
    Ok(())
}
