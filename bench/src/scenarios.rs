//! The scenarios. Each interleaves the engines run by run (A B C A B C …)
//! so that drift of the machine hits all of them alike.

use crate::engines::{ctr, Engine, Kind, CTR_IMAGE, IMAGE};
use crate::proc::{self, check_interrupt, run};
use crate::report::{Better, Panel, Results, Row, Target};
use crate::stats::{median, p95, p99};
use crate::Settings;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Ctx<'a> {
    pub berth: &'a mut Engine,
    pub dockerd: &'a mut Engine,
    pub s: &'a Settings,
    pub res: &'a mut Results,
    pub berth_bin: PathBuf,
}

static CTR_SEQ: AtomicUsize = AtomicUsize::new(0);

/// What runs one container: the docker CLI against an engine, or ctr.
#[derive(Clone)]
pub struct Runner {
    pub kind: Kind,
    docker: Option<(String, PathBuf)>,
    ctd_sock: PathBuf,
    timeout: Duration,
}

impl Runner {
    pub fn new(kind: Kind, berth: &Engine, dockerd: &Engine, timeout: Duration) -> Runner {
        let e = match kind {
            Kind::Dockerd => Some(dockerd),
            Kind::Berth => Some(berth),
            Kind::Ctr => None,
        };
        Runner {
            kind,
            docker: e.map(|e| (e.host(), e.docker_config.clone())),
            ctd_sock: berth.ctd_sock.clone(),
            timeout,
        }
    }

    /// The command for `run --rm <image> args...` (attached, no tty).
    pub fn run_cmd(&self, args: &[&str]) -> std::process::Command {
        self.run_cmd_on(None, args)
    }

    /// The same on a named runtime: `--runtime NAME` for the docker CLI,
    /// `--runc-binary BINARY` for ctr.
    pub fn run_cmd_on(&self, rt: Option<&BenchRuntime>, args: &[&str]) -> std::process::Command {
        match &self.docker {
            Some((host, cfg)) => {
                let mut c = std::process::Command::new("docker");
                c.env("DOCKER_CONFIG", cfg)
                    .env("DOCKER_CLI_HINTS", "false")
                    .env_remove("DOCKER_HOST")
                    .args(["-H", host, "run", "--rm", "--network", "none"]);
                if let Some(rt) = rt {
                    c.args(["--runtime", &rt.name]);
                }
                c.arg(IMAGE).args(args);
                c
            }
            None => {
                let id = format!("bench-ctr-{}-{}", std::process::id(), CTR_SEQ.fetch_add(1, Ordering::Relaxed));
                let mut c = ctr(&self.ctd_sock, &["run", "--rm"]);
                if let Some(rt) = rt {
                    c.arg("--runc-binary").arg(&rt.ctr_binary);
                }
                c.args([CTR_IMAGE, &id]).args(args);
                c
            }
        }
    }

    /// One `run --rm … true`; its wall time in ms, or the error.
    pub fn run_true(&self) -> Result<f64, String> {
        self.run_true_with(&[])
    }

    /// The same with extra `docker run` options (not for ctr).
    pub fn run_true_with(&self, opts: &[&str]) -> Result<f64, String> {
        let mut cmd = self.run_cmd(&["true"]);
        if !opts.is_empty() {
            // Options go before the image: rebuild the argument list.
            let mut args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
            // A --network in `opts` replaces the runner's `--network none`.
            if opts.contains(&"--network") {
                if let Some(i) = args.windows(2).position(|w| w[0] == "--network" && w[1] == "none") {
                    args.drain(i..i + 2);
                }
            }
            let image_at = args.iter().position(|a| a == IMAGE).ok_or("run_true_with: only for docker runners")?;
            let mut c = std::process::Command::new(cmd.get_program());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            c.args(&args[..image_at]).args(opts).args(&args[image_at..]);
            cmd = c;
        }
        let o = run(cmd, self.timeout, false)?;
        if o.ok {
            Ok(o.ms())
        } else {
            Err(format!("{} run failed: {}", self.kind.name(), o.describe()))
        }
    }
}

/// One OCI runtime of the per-runtime scenario.
pub struct BenchRuntime {
    /// Its name in berth's config.
    pub name: String,
    /// Its definition in berth's config (`None`: built in).
    pub def: Option<serde_json::Value>,
    /// What ctr runs as `--runc-binary` (a wrapper script for runtimes with args).
    pub ctr_binary: PathBuf,
}

const KINDS3: [Kind; 3] = [Kind::Berth, Kind::Dockerd, Kind::Ctr];

/// A "failed runs" row for the three engines (in [`KINDS3`] order), if any failed.
fn failed_runs_row(section: &str, failed: &[usize]) -> Option<Row> {
    failed.iter().any(|f| *f > 0).then(|| {
        KINDS3.iter().zip(failed).fold(Row::new(section, "failed runs", "count", Better::Lower), |row, (k, f)| row.set(*k, Some(*f as f64)))
    })
}

fn ratio_detail(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "–".into(),
    }
}

/// Scenario 1: `docker run --rm --network none bb true` latency.
pub fn latency(cx: &mut Ctx) -> Result<(), String> {
    let runners: Vec<Runner> = KINDS3.iter().map(|k| Runner::new(*k, cx.berth, cx.dockerd, cx.s.cmd_timeout)).collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut failures = vec![0usize; 3];
    let total = cx.s.warmup + cx.s.runs;
    let deadline = Instant::now() + cx.s.scenario_budget;
    eprintln!("bench: scenario 1, run latency: {} runs per engine (+{} warm-up), interleaved", cx.s.runs, cx.s.warmup);
    for i in 0..total {
        for (j, r) in runners.iter().enumerate() {
            check_interrupt()?;
            match r.run_true() {
                Ok(ms) if i >= cx.s.warmup => samples[j].push(ms),
                Ok(_) => {}
                Err(e) => {
                    check_interrupt()?;
                    failures[j] += 1;
                    if failures[j] <= 3 {
                        cx.res.problem(format!("latency: {e}"));
                    }
                }
            }
        }
        if Instant::now() > deadline {
            cx.res.problem(format!("latency: time budget hit after {} rounds", i + 1));
            break;
        }
    }
    let med: Vec<Option<f64>> = samples.iter().map(|v| median(v)).collect();
    let p9: Vec<Option<f64>> = samples.iter().map(|v| p95(v)).collect();
    let (b, d, c) = (med[0], med[1], med[2]);
    let met = match (b, d, c) {
        (Some(b), Some(d), Some(c)) => Some(b <= 1.2 * c && d >= 2.0 * b),
        _ => None,
    };
    let detail = format!("berth {} of floor (≤1.20x), dockerd {} of berth (≥2x)", ratio_detail(b, c), ratio_detail(d, b));
    let mut row = Row::new("1. run latency", "docker run --rm true, median", "ms", Better::Lower);
    for (j, k) in KINDS3.iter().enumerate() {
        row = row.set(*k, med[j]);
    }
    cx.res.row(row.target(Target { text: "≤ 1.2x ctr floor and ≥ 2x faster than dockerd".into(), met, detail }));
    let mut row = Row::new("1. run latency", "docker run --rm true, p95", "ms", Better::Lower);
    for (j, k) in KINDS3.iter().enumerate() {
        row = row.set(*k, p9[j]);
    }
    cx.res.row(row);
    if let Some(row) = failed_runs_row("1. run latency", &failures) {
        cx.res.row(row);
    }
    cx.res.raw("latency_ms", json!({"berth": samples[0], "dockerd": samples[1], "ctr": samples[2]}));
    cx.res.panels.push(Panel {
        title: "run --rm true latency (ms)".into(),
        categories: vec!["median".into(), "p95".into()],
        series: KINDS3.iter().enumerate().map(|(j, k)| (*k, vec![med[j], p9[j]])).collect(),
    });
    Ok(())
}

/// `run --rm … true` with each case's options, the cases interleaved,
/// warm-up rounds dropped, within the scenario's time budget; the samples
/// (ms) per case. Failures are listed under the problems as `label: …`.
fn interleaved_runs(cx: &mut Ctx, label: &str, cases: &[(&Runner, &[&str])]) -> Result<Vec<Vec<f64>>, String> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let deadline = Instant::now() + cx.s.scenario_budget;
    for i in 0..cx.s.warmup + cx.s.runs {
        for (j, (r, opts)) in cases.iter().enumerate() {
            check_interrupt()?;
            match r.run_true_with(opts) {
                Ok(ms) if i >= cx.s.warmup => samples[j].push(ms),
                Ok(_) => {}
                Err(e) => cx.res.problem(format!("{label}: {e}")),
            }
        }
        if Instant::now() > deadline {
            cx.res.problem(format!("{label}: time budget hit after {} rounds", i + 1));
            break;
        }
    }
    Ok(samples)
}

/// Scenario 8: what the default seccomp filter costs a `docker run`, in
/// berth and in dockerd (both filter by default): run latency with the
/// default profile and with `--security-opt seccomp=unconfined`,
/// interleaved.
pub fn seccomp(cx: &mut Ctx) -> Result<(), String> {
    let b = Runner::new(Kind::Berth, cx.berth, cx.dockerd, cx.s.cmd_timeout);
    let d = Runner::new(Kind::Dockerd, cx.berth, cx.dockerd, cx.s.cmd_timeout);
    let unconfined: &[&str] = &["--security-opt", "seccomp=unconfined"];
    let cases: [(&Runner, &[&str]); 4] = [(&b, &[]), (&b, unconfined), (&d, &[]), (&d, unconfined)];
    eprintln!("bench: scenario 8, seccomp cost: {} runs per case (+{} warm-up), interleaved", cx.s.runs, cx.s.warmup);
    let samples = interleaved_runs(cx, "seccomp", &cases)?;
    let med: Vec<Option<f64>> = samples.iter().map(|v| median(v)).collect();
    let cost = |f: Option<f64>, u: Option<f64>| f.zip(u).map(|(f, u)| f - u);
    let (berth_cost, dockerd_cost) = (cost(med[0], med[1]), cost(med[2], med[3]));
    // 2 ms of slack: the spread of one median on a 2-core VM.
    let met = berth_cost.zip(dockerd_cost).map(|(b, d)| b <= d.max(0.0) + 2.0);
    let fmt = |v: Option<f64>| v.map(|v| format!("{v:+.1} ms")).unwrap_or_else(|| "–".into());
    let detail = format!("filter adds {} on berth, {} on dockerd (medians; +2 ms slack for noise)", fmt(berth_cost), fmt(dockerd_cost));
    let section = "8. seccomp";
    cx.res.row(Row::new(section, "run --rm true, default profile, median", "ms", Better::Lower).set(Kind::Berth, med[0]).set(Kind::Dockerd, med[2]));
    cx.res.row(Row::new(section, "run --rm true, seccomp=unconfined, median", "ms", Better::Lower).set(Kind::Berth, med[1]).set(Kind::Dockerd, med[3]));
    cx.res.row(
        Row::new(section, "cost of the filter (default - unconfined)", "ms", Better::Lower)
            .set(Kind::Berth, berth_cost)
            .set(Kind::Dockerd, dockerd_cost)
            .target(Target { text: "berth's filter costs no more than dockerd's".into(), met, detail }),
    );
    cx.res.raw(
        "seccomp_ms",
        json!({"berth_default": samples[0], "berth_unconfined": samples[1], "dockerd_default": samples[2], "dockerd_unconfined": samples[3]}),
    );
    Ok(())
}

/// Runs `job` `total` times from `clients` parallel clients, each stopping
/// when interrupted or past `deadline`; (ok, failed, wall, first error).
fn parallel(total: usize, clients: usize, deadline: Instant, job: impl Fn() -> Result<(), String> + Sync) -> (usize, usize, Duration, Option<String>) {
    let next = AtomicUsize::new(0);
    let ok = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let first_err = Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients.max(1) {
            s.spawn(|| loop {
                if proc::interrupted() || Instant::now() > deadline || next.fetch_add(1, Ordering::Relaxed) >= total {
                    break;
                }
                match job() {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        first_err.lock().unwrap().get_or_insert(e);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            });
        }
    });
    (ok.into_inner(), failed.into_inner(), start.elapsed(), first_err.into_inner().unwrap())
}

/// Runs `total` containers from `clients` parallel clients; (ok, failed, wall).
fn parallel_runs(r: &Runner, total: usize, clients: usize, budget: Duration) -> (usize, usize, Duration, Option<String>) {
    parallel(total, clients, Instant::now() + budget, || r.run_true().map(|_| ()))
}

/// Scenario 2: throughput, N runs from 8 parallel clients.
pub fn throughput(cx: &mut Ctx) -> Result<(), String> {
    let runners: Vec<Runner> = KINDS3.iter().map(|k| Runner::new(*k, cx.berth, cx.dockerd, cx.s.cmd_timeout)).collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut fails = vec![0usize; 3];
    eprintln!(
        "bench: scenario 2, throughput: {} runs from {} clients, {} round(s), interleaved",
        cx.s.tp_runs, cx.s.tp_clients, cx.s.tp_rounds
    );
    for round in 0..cx.s.tp_rounds {
        for (j, r) in runners.iter().enumerate() {
            check_interrupt()?;
            let (ok, failed, wall, err) = parallel_runs(r, cx.s.tp_runs, cx.s.tp_clients, cx.s.scenario_budget);
            check_interrupt()?;
            if let Some(e) = err {
                cx.res.problem(format!("throughput round {round}: {failed} failed; first: {e}"));
            }
            if ok + failed < cx.s.tp_runs {
                cx.res.problem(format!("throughput round {round}: {} stopped by the time budget", r.kind.name()));
            }
            fails[j] += failed;
            rates[j].push(ok as f64 / wall.as_secs_f64());
            eprintln!("bench:   {}: {ok} ok, {failed} failed in {:.1} s", r.kind.name(), wall.as_secs_f64());
        }
    }
    let med: Vec<Option<f64>> = rates.iter().map(|v| median(v)).collect();
    let (b, d) = (med[0], med[1]);
    let met = match (b, d) {
        (Some(b), Some(d)) => Some(b >= 2.0 * d),
        _ => None,
    };
    let mut row = Row::new(
        "2. throughput",
        &format!("{} runs, {} parallel clients", cx.s.tp_runs, cx.s.tp_clients),
        "containers/s",
        Better::Higher,
    );
    for (j, k) in KINDS3.iter().enumerate() {
        row = row.set(*k, med[j]);
    }
    if cx.s.tp_rounds > 1 {
        row = row.note(format!("median of {} rounds", cx.s.tp_rounds));
    }
    cx.res.row(row.target(Target {
        text: "≥ 2x dockerd".into(),
        met,
        detail: format!("berth {} of dockerd", ratio_detail(b, d)),
    }));
    if let Some(row) = failed_runs_row("2. throughput", &fails) {
        cx.res.row(row);
    }
    cx.res.raw("throughput_cps", json!({"berth": rates[0], "dockerd": rates[1], "ctr": rates[2]}));
    cx.res.panels.push(Panel {
        title: format!("throughput, {} clients (containers/s)", cx.s.tp_clients),
        categories: vec![format!("{} runs", cx.s.tp_runs)],
        series: KINDS3.iter().enumerate().map(|(j, k)| (*k, vec![med[j]])).collect(),
    });
    Ok(())
}

/// The log generator: exactly `bytes` bytes of 128-byte lines.
fn generator(bytes: u64) -> Vec<String> {
    let line = "x".repeat(127);
    vec!["sh".into(), "-c".into(), format!("yes {line} | head -c {bytes}")]
}

/// Scenario 6: log throughput through `docker logs` and through attach.
pub fn logs(cx: &mut Ctx) -> Result<(), String> {
    let bytes = cx.s.log_mib * 1024 * 1024;
    let gen = generator(bytes);
    let gen_ref: Vec<&str> = gen.iter().map(String::as_str).collect();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    // Writing and reading a GiB of logs takes a while on slow disks.
    let long = cx.s.cmd_timeout.max(Duration::from_secs(60)) * 10;
    let mut logs_rate: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut attach_rate: Vec<Vec<f64>> = vec![Vec::new(); 3];
    eprintln!("bench: scenario 6, log throughput: {} MiB through docker logs and attach, {} round(s)", cx.s.log_mib, cx.s.log_runs);
    for it in 0..cx.s.log_runs {
        // docker logs: the container writes everything, then we time reading.
        for (j, e) in [&*cx.berth, &*cx.dockerd].into_iter().enumerate() {
            check_interrupt()?;
            let name = format!("bench-log-{it}");
            let mut args = vec!["run", "-d", "--network", "none", "--name", &name, IMAGE];
            args.extend(gen_ref.iter());
            let created = run(e.docker(&args), cx.s.cmd_timeout, false)?;
            if !created.ok {
                cx.res.problem(format!("logs: {} run -d failed: {}", e.kind.name(), created.describe()));
                continue;
            }
            let w = run(e.docker(&["wait", &name]), long, false)?;
            if !w.ok || w.stdout_str().trim() != "0" {
                cx.res.problem(format!("logs: {} generator exited {:?}: {}", e.kind.name(), w.stdout_str().trim(), w.stderr.trim()));
            }
            let o = run(e.docker(&["logs", &name]), long, true)?;
            if !o.ok {
                cx.res.problem(format!("logs: {} docker logs failed: {}", e.kind.name(), o.describe()));
            } else {
                if o.stdout_bytes != bytes {
                    cx.res.problem(format!("logs: {} docker logs returned {} bytes, expected {}", e.kind.name(), o.stdout_bytes, bytes));
                }
                let r = o.stdout_bytes as f64 / (1024.0 * 1024.0) / o.elapsed.as_secs_f64();
                eprintln!("bench:   docker logs {}: {:.1} MiB/s", e.kind.name(), r);
                logs_rate[j].push(r);
            }
            let _ = run(e.docker(&["rm", "-f", &name]), cx.s.cmd_timeout, false);
        }
        // Attach: `run --rm` without -d; we time the whole run reading its stdout.
        for (j, k) in KINDS3.iter().enumerate() {
            check_interrupt()?;
            let r = Runner::new(*k, cx.berth, cx.dockerd, long);
            let o = run(r.run_cmd(&gen_ref), long, true)?;
            if !o.ok {
                cx.res.problem(format!("attach: {} failed: {}", k.name(), o.describe()));
                continue;
            }
            if o.stdout_bytes != bytes {
                cx.res.problem(format!("attach: {} returned {} bytes, expected {}", k.name(), o.stdout_bytes, bytes));
            }
            let rate = o.stdout_bytes as f64 / (1024.0 * 1024.0) / o.elapsed.as_secs_f64();
            eprintln!("bench:   attach {}: {:.1} MiB/s", k.name(), rate);
            attach_rate[j].push(rate);
        }
    }
    let lm: Vec<Option<f64>> = logs_rate.iter().map(|v| median(v)).collect();
    let am: Vec<Option<f64>> = attach_rate.iter().map(|v| median(v)).collect();
    let ge = |b: Option<f64>, d: Option<f64>| match (b, d) {
        (Some(b), Some(d)) => Some(b >= d),
        _ => None,
    };
    cx.res.row(
        Row::new("6. logs", &format!("{mib:.0} MiB through docker logs"), "MiB/s", Better::Higher)
            .set(Kind::Berth, lm[0])
            .set(Kind::Dockerd, lm[1])
            .target(Target { text: "≥ dockerd".into(), met: ge(lm[0], lm[1]), detail: format!("berth {} of dockerd", ratio_detail(lm[0], lm[1])) }),
    );
    cx.res.row(
        Row::new("6. logs", &format!("{mib:.0} MiB through attach (run, no -d)"), "MiB/s", Better::Higher)
            .set(Kind::Berth, am[0])
            .set(Kind::Dockerd, am[1])
            .set(Kind::Ctr, am[2])
            .target(Target { text: "≥ dockerd".into(), met: ge(am[0], am[1]), detail: format!("berth {} of dockerd", ratio_detail(am[0], am[1])) }),
    );
    cx.res.raw(
        "logs_mib_s",
        json!({"docker_logs": {"berth": logs_rate[0], "dockerd": logs_rate[1]},
               "attach": {"berth": attach_rate[0], "dockerd": attach_rate[1], "ctr": attach_rate[2]}}),
    );
    cx.res.panels.push(Panel {
        title: format!("{mib:.0} MiB of output (MiB/s)"),
        categories: vec!["docker logs".into(), "attach".into()],
        series: vec![
            (Kind::Berth, vec![lm[0], am[0]]),
            (Kind::Dockerd, vec![lm[1], am[1]]),
            (Kind::Ctr, vec![None, am[2]]),
        ],
    });
    Ok(())
}

/// The reload scenario's runtime sets: `variant` 0 is N plain runc-type
/// runtimes, 1 the same N with runtimeArgs (so every reload changes all N),
/// 2 and up the same N with args no earlier variant had (N new wrappers).
fn runtimes_config(n: usize, variant: usize, runc: &str) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for i in 0..n {
        let v = match variant {
            0 => json!({"path": runc}),
            1 => json!({"path": runc, "runtimeArgs": ["--log-format", "json"]}),
            k => json!({"path": runc, "runtimeArgs": ["--log", format!("/run/bench-{k}.log")]}),
        };
        m.insert(format!("bench-rt-{i:03}"), v);
    }
    json!({ "runtimes": m })
}

/// Scenario 4 (berth only): reload of N runtimes, and its effect on
/// concurrent `docker run`.
pub fn reload(cx: &mut Ctx) -> Result<(), String> {
    let n = cx.s.reload_runtimes;
    let runc = which("runc").unwrap_or_else(|| "/usr/sbin/runc".into());
    let cfgs = [runtimes_config(n, 0, &runc), runtimes_config(n, 1, &runc)];
    let cfile = cx.berth.config_file.clone();
    let api = cx.berth.api.clone();
    eprintln!("bench: scenario 4, reload of {n} runtimes: {} reloads, then runs during reloads every {} ms", cx.s.reloads, cx.s.reload_interval.as_millis());

    // First apply: 0 -> N runtimes.
    crate::engines::write_berth_config(&cfile, &cfgs[0])?;
    let first = api.post("/berth/v1/reload", None)?;
    if !first.ok() {
        return Err(format!("reload of {n} runtimes refused: {}", first.text()));
    }
    let added = first.json()?["added"].as_array().map(|a| a.len()).unwrap_or(0);
    if added != n {
        cx.res.problem(format!("reload: first apply reported {added} added runtimes, expected {n}"));
    }
    // Toggle between the two variants on every reload; the CLI and the API
    // alternate in pairs (CLI, API, API, CLI, …) so both see both variants.
    let mut cli = Vec::new();
    let mut server = Vec::new();
    let mut by_variant: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut apply = Vec::new();
    let mut variant = 0;
    for i in 0..cx.s.reloads {
        check_interrupt()?;
        variant ^= 1;
        crate::engines::write_berth_config(&cfile, &cfgs[variant])?;
        if i.div_ceil(2) % 2 == 0 {
            let mut c = std::process::Command::new(&cx.berth_bin);
            c.args(["reload", "-H", &cx.berth.host()]);
            let o = run(c, cx.s.cmd_timeout, false)?;
            if !o.ok {
                cx.res.problem(format!("berth reload failed: {}", o.describe()));
            } else {
                cli.push(o.ms());
            }
        } else {
            let r = api.post("/berth/v1/reload", None)?;
            if !r.ok() {
                cx.res.problem(format!("POST /berth/v1/reload: {} {}", r.status, r.text()));
            } else {
                let body = r.json()?;
                let changed = body["changed"].as_array().map(|a| a.len()).unwrap_or(0);
                if changed != n {
                    cx.res.problem(format!("reload reported {changed} changed runtimes, expected {n}"));
                }
                server.push(r.ms());
                by_variant[variant].push(r.ms());
                if let Some(us) = body["apply_us"].as_u64() {
                    apply.push(us as f64 / 1000.0);
                }
            }
        }
    }
    // Every runtime gets args never used before: N new wrapper files on
    // every reload (and N collected); probes stay cached (same binary).
    let mut fresh = Vec::new();
    let mut fresh_apply = Vec::new();
    for k in 0..cx.s.reloads.div_ceil(2) {
        check_interrupt()?;
        crate::engines::write_berth_config(&cfile, &runtimes_config(n, 2 + k, &runc))?;
        let r = api.post("/berth/v1/reload", None)?;
        if !r.ok() {
            cx.res.problem(format!("POST /berth/v1/reload (new args): {} {}", r.status, r.text()));
            continue;
        }
        let body = r.json()?;
        let changed = body["changed"].as_array().map(|a| a.len()).unwrap_or(0);
        if changed != n {
            cx.res.problem(format!("reload (new args) reported {changed} changed runtimes, expected {n}"));
        }
        fresh.push(r.ms());
        if let Some(us) = body["apply_us"].as_u64() {
            fresh_apply.push(us as f64 / 1000.0);
        }
    }
    // Re-applying an unchanged file of N runtimes (the common operator
    // reload: nothing changed, or another key did).
    crate::engines::write_berth_config(&cfile, &cfgs[0])?;
    let _ = api.post("/berth/v1/reload", None)?;
    variant = 0;
    let mut noop = Vec::new();
    for _ in 0..cx.s.reloads.div_ceil(2) {
        check_interrupt()?;
        let r = api.post("/berth/v1/reload", None)?;
        if r.ok() {
            noop.push(r.ms());
        }
    }
    let (cm, sm, sp) = (median(&cli), median(&server), p95(&server));
    cx.res.row(
        Row::new("4. reload", &format!("POST /berth/v1/reload, {n} runtimes changed, median (server round trip)"), "ms", Better::Lower)
            .set(Kind::Berth, sm)
            .target(Target { text: "< 5 ms".into(), met: sm.map(|v| v < 5.0), detail: format!("{} ms", crate::report::fmt(sm)) }),
    );
    cx.res.row(
        Row::new("4. reload", "… of which applying (files read to generation live; `apply_us`), median", "ms", Better::Lower)
            .set(Kind::Berth, median(&apply)),
    );
    let fm = median(&fresh);
    cx.res.row(
        Row::new("4. reload", &format!("POST /berth/v1/reload, {n} runtimes to never-seen args ({n} new wrappers), median"), "ms", Better::Lower)
            .set(Kind::Berth, fm)
            .target(Target { text: "< 5 ms".into(), met: fm.map(|v| v < 5.0), detail: format!("{} ms", crate::report::fmt(fm)) }),
    );
    cx.res.row(
        Row::new("4. reload", "… of which applying (`apply_us`), median", "ms", Better::Lower).set(Kind::Berth, median(&fresh_apply)),
    );
    cx.res.row(
        Row::new("4. reload", &format!("`berth reload`, {n} runtimes changed, median (CLI wall, incl. the CLI's own start)"), "ms", Better::Lower)
            .set(Kind::Berth, cm),
    );
    cx.res.row(Row::new("4. reload", "POST /berth/v1/reload, p95", "ms", Better::Lower).set(Kind::Berth, sp));
    cx.res.row(
        Row::new("4. reload", &format!("… to {n} plain `path` runtimes, median (API)"), "ms", Better::Lower)
            .set(Kind::Berth, median(&by_variant[0])),
    );
    cx.res.row(
        Row::new("4. reload", &format!("… to {n} runtimes with runtimeArgs (wrappers), median (API)"), "ms", Better::Lower)
            .set(Kind::Berth, median(&by_variant[1])),
    );
    cx.res.row(
        Row::new("4. reload", &format!("… {n} runtimes, file unchanged, median (API)"), "ms", Better::Lower).set(Kind::Berth, median(&noop)),
    );
    cx.res.row(Row::new("4. reload", &format!("first apply, 0 -> {n} runtimes (API)"), "ms", Better::Lower).set(Kind::Berth, Some(first.ms())));

    // Runs during reloads: blocks of quiet runs and runs under reloads
    // every interval, alternating.
    let runner = Runner::new(Kind::Berth, cx.berth, cx.dockerd, cx.s.cmd_timeout);
    let mut quiet = Vec::new();
    let mut loaded = Vec::new();
    let mut run_fail_quiet = 0usize;
    let mut run_fail_loaded = 0usize;
    let mut reload_ms = Vec::new();
    let mut reload_fail = 0usize;
    let per_block = cx.s.reload_block_runs.max(1);
    for _ in 0..cx.s.reload_runs.div_ceil(per_block) {
        for _ in 0..per_block {
            check_interrupt()?;
            match runner.run_true() {
                Ok(ms) => quiet.push(ms),
                Err(e) => {
                    run_fail_quiet += 1;
                    cx.res.problem(format!("reload (quiet phase): {e}"));
                }
            }
        }
        let stop = AtomicBool::new(false);
        let rl = Mutex::new((Vec::new(), 0usize, variant));
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) && !proc::interrupted() {
                    next += cx.s.reload_interval;
                    let mut g = rl.lock().unwrap();
                    g.2 ^= 1;
                    let ok = crate::engines::write_berth_config(&cfile, &cfgs[g.2]).is_ok();
                    match api.post("/berth/v1/reload", None) {
                        Ok(r) if r.ok() && ok => g.0.push(r.ms()),
                        _ => g.1 += 1,
                    }
                    drop(g);
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            });
            // Let the reloads get going before the first run.
            std::thread::sleep(cx.s.reload_interval / 2);
            for _ in 0..per_block {
                if proc::interrupted() {
                    break;
                }
                match runner.run_true() {
                    Ok(ms) => loaded.push(ms),
                    Err(e) => {
                        run_fail_loaded += 1;
                        eprintln!("bench: run during reloads failed: {e}");
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        let g = rl.into_inner().unwrap();
        reload_ms.extend(g.0);
        reload_fail += g.1;
        variant = g.2;
    }
    check_interrupt()?;
    // Back to no extra runtimes for what follows.
    crate::engines::write_berth_config(&cfile, &json!({}))?;
    let _ = api.post("/berth/v1/reload", None);

    let (q99, l99) = (p99(&quiet), p99(&loaded));
    let added99 = match (q99, l99) {
        (Some(q), Some(l)) => Some(l - q),
        _ => None,
    };
    let over = q99.map(|q| loaded.iter().filter(|v| **v > q + 5.0).count()).unwrap_or(0);
    let met = added99.map(|a| a <= 5.0 && run_fail_loaded == 0 && reload_fail == 0);
    cx.res.row(Row::new("4. reload", "docker run, no reloads: median / p99", "ms", Better::Lower).set(Kind::Berth, median(&quiet)).note(format!("p99 {}", crate::report::fmt(q99))));
    cx.res.row(
        Row::new("4. reload", &format!("docker run during reloads every {} ms: median / p99", cx.s.reload_interval.as_millis()), "ms", Better::Lower)
            .set(Kind::Berth, median(&loaded))
            .note(format!("p99 {}", crate::report::fmt(l99))),
    );
    cx.res.row(
        Row::new("4. reload", "p99 added by reloads", "ms", Better::Lower).set(Kind::Berth, added99).target(Target {
            text: "no failed run, p99 added ≤ 5 ms".into(),
            met,
            detail: format!(
                "{} ms; {} failed runs; {}/{} runs over quiet p99 + 5 ms; {} reloads ({} failed), reload median {} ms",
                added99.map(|a| format!("{a:+.1}")).unwrap_or("–".into()),
                run_fail_loaded,
                over,
                loaded.len(),
                reload_ms.len() + reload_fail,
                reload_fail,
                crate::report::fmt(median(&reload_ms))
            ),
        }),
    );
    cx.res.raw(
        "reload",
        json!({"cli_ms": cli, "api_ms": server, "api_ms_to_plain": by_variant[0], "api_ms_to_args": by_variant[1], "api_ms_unchanged": noop, "first_apply_ms": first.ms(), "quiet_run_ms": quiet, "run_during_reloads_ms": loaded,
               "reloads_during_runs_ms": reload_ms, "failed_reloads": reload_fail, "failed_runs_quiet": run_fail_quiet,
               "failed_runs_during_reloads": run_fail_loaded}),
    );
    cx.res.panels.push(Panel {
        title: format!("berth reload, {n} runtimes (ms)"),
        categories: vec!["CLI".into(), "API".into(), "API plain".into(), "API args".into()],
        series: vec![(Kind::Berth, vec![cm, sm, median(&by_variant[0]), median(&by_variant[1])])],
    });
    cx.res.panels.push(Panel {
        title: "berth run during reloads (ms)".into(),
        categories: vec!["p50 quiet".into(), "p50 reloads".into(), "p99 quiet".into(), "p99 reloads".into()],
        series: vec![(Kind::Berth, vec![median(&quiet), median(&loaded), q99, l99])],
    });
    Ok(())
}

fn which(prog: &str) -> Option<String> {
    std::env::var("PATH").ok()?.split(':').map(|d| format!("{d}/{prog}")).find(|p| std::path::Path::new(p).exists())
}

/// Creates `n` containers on `e` through the API, `threads` at a time;
/// returns (created, seconds).
fn create_many(e: &Engine, from: usize, n: usize, threads: usize) -> (usize, f64, Option<String>) {
    let next = AtomicUsize::new(from);
    let ok = AtomicUsize::new(0);
    let err = Mutex::new(None);
    let start = Instant::now();
    let body = json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}});
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= from + n || proc::interrupted() {
                    break;
                }
                match e.api.post(&format!("/containers/create?name=bench-ps-{i:05}"), Some(&body)) {
                    Ok(r) if r.ok() => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        err.lock().unwrap().get_or_insert(format!("{} {}", r.status, r.text()));
                    }
                    Err(x) => {
                        err.lock().unwrap().get_or_insert(x);
                    }
                }
            });
        }
    });
    (ok.into_inner(), start.elapsed().as_secs_f64(), err.into_inner().unwrap())
}

/// Scenarios 3 and 5: `ps -a`/`inspect` with N created containers, daemon
/// memory with them, and start-up time with them on disk.
pub fn containers(cx: &mut Ctx) -> Result<(), String> {
    let n = cx.s.containers;
    eprintln!("bench: scenario 3, creating {n} containers on each engine (API, interleaved in chunks)");
    let chunk = 100usize;
    let mut created = [0usize; 2];
    let mut secs = [0f64; 2];
    let mut from = 0;
    while from < n {
        let k = chunk.min(n - from);
        for (j, e) in [&*cx.berth, &*cx.dockerd].into_iter().enumerate() {
            check_interrupt()?;
            let (ok, s, err) = create_many(e, from, k, 4);
            created[j] += ok;
            secs[j] += s;
            if let Some(err) = err {
                cx.res.problem(format!("create on {}: {}", e.kind.name(), err));
            }
        }
        from += k;
    }
    check_interrupt()?;
    cx.res.row(
        Row::new("3. ps/inspect", &format!("create {n} containers via API, 4 clients"), "containers/s", Better::Higher)
            .set(Kind::Berth, Some(created[0] as f64 / secs[0]))
            .set(Kind::Dockerd, Some(created[1] as f64 / secs[1])),
    );
    if created[0] < n || created[1] < n {
        cx.res.problem(format!("created only {} (berth) / {} (dockerd) of {n}", created[0], created[1]));
    }

    eprintln!("bench: scenario 3, ps -a / inspect: {} rounds", cx.s.ps_runs);
    let mut cli_ps: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut api_ps: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut cli_in: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut api_in: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut ps_count = [0usize; 2];
    for i in 0..cx.s.ps_runs + 1 {
        let name = format!("bench-ps-{:05}", (i * 7919) % n.max(1));
        for (j, e) in [&*cx.berth, &*cx.dockerd].into_iter().enumerate() {
            check_interrupt()?;
            let o = run(e.docker(&["ps", "-a"]), cx.s.cmd_timeout, false)?;
            let a = e.api.get("/containers/json?all=1")?;
            let oi = run(e.docker(&["inspect", &name]), cx.s.cmd_timeout, false)?;
            let ai = e.api.get(&format!("/containers/{name}/json"))?;
            if !o.ok || !a.ok() || !oi.ok || !ai.ok() {
                cx.res.problem(format!(
                    "ps/inspect on {}: ps {} / list {} / inspect {} / inspect API {}",
                    e.kind.name(),
                    o.describe(),
                    a.status,
                    oi.describe(),
                    ai.status
                ));
                continue;
            }
            if i == 0 {
                // Warm-up round; check the answers.
                ps_count[j] = a.json()?.as_array().map(|v| v.len()).unwrap_or(0);
                continue;
            }
            cli_ps[j].push(o.ms());
            api_ps[j].push(a.ms());
            cli_in[j].push(oi.ms());
            api_in[j].push(ai.ms());
        }
    }
    if ps_count.iter().any(|c| *c < n) {
        cx.res.problem(format!("list returned {} (berth) / {} (dockerd) containers, expected ≥ {n}", ps_count[0], ps_count[1]));
    }
    let m = |v: &Vec<Vec<f64>>| (median(&v[0]), median(&v[1]));
    let (cp, ap, ci, ai) = (m(&cli_ps), m(&api_ps), m(&cli_in), m(&api_in));
    let sec = "3. ps/inspect";
    cx.res.row(
        Row::new(sec, &format!("GET /containers/json?all=1, {n} containers, median (API)"), "ms", Better::Lower)
            .set(Kind::Berth, ap.0)
            .set(Kind::Dockerd, ap.1)
            .target(Target { text: "< 20 ms".into(), met: ap.0.map(|v| v < 20.0), detail: format!("{} ms", crate::report::fmt(ap.0)) }),
    );
    cx.res.row(
        Row::new(sec, &format!("docker ps -a, {n} containers, median (CLI wall)"), "ms", Better::Lower)
            .set(Kind::Berth, cp.0)
            .set(Kind::Dockerd, cp.1)
            .target(Target { text: "< 20 ms".into(), met: cp.0.map(|v| v < 20.0), detail: format!("{} ms incl. docker CLI start", crate::report::fmt(cp.0)) }),
    );
    cx.res.row(Row::new(sec, "GET /containers/{id}/json, median (API)", "ms", Better::Lower).set(Kind::Berth, ai.0).set(Kind::Dockerd, ai.1));
    cx.res.row(Row::new(sec, "docker inspect, median (CLI wall)", "ms", Better::Lower).set(Kind::Berth, ci.0).set(Kind::Dockerd, ci.1));
    cx.res.row(
        Row::new(sec, "docker ps -a, p95 (CLI wall)", "ms", Better::Lower)
            .set(Kind::Berth, p95(&cli_ps[0]))
            .set(Kind::Dockerd, p95(&cli_ps[1])),
    );
    cx.res.raw(
        "ps_inspect_ms",
        json!({"cli_ps": {"berth": cli_ps[0], "dockerd": cli_ps[1]}, "api_ps": {"berth": api_ps[0], "dockerd": api_ps[1]},
               "cli_inspect": {"berth": cli_in[0], "dockerd": cli_in[1]}, "api_inspect": {"berth": api_in[0], "dockerd": api_in[1]}}),
    );
    cx.res.panels.push(Panel {
        title: format!("list / inspect, {n} containers (ms)"),
        categories: vec!["ps -a API".into(), "ps -a CLI".into(), "inspect API".into(), "inspect CLI".into()],
        series: vec![(Kind::Berth, vec![ap.0, cp.0, ai.0, ci.0]), (Kind::Dockerd, vec![ap.1, cp.1, ai.1, ci.1])],
    });

    // Scenario 5: memory with N containers, then start-up with them on disk.
    std::thread::sleep(Duration::from_secs(2));
    let rss_n = [cx.berth.rss(), cx.dockerd.rss()];
    let ctd_n = [cx.berth.containerd_rss(), cx.dockerd.containerd_rss()];
    eprintln!("bench: scenario 5, daemon start-up with {n} containers on disk: {} round(s)", cx.s.starts);
    let mut starts: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for _ in 0..cx.s.starts {
        for (j, e) in [&mut *cx.berth, &mut *cx.dockerd].into_iter().enumerate() {
            check_interrupt()?;
            let t = e.restart()?;
            starts[j].push(t.as_secs_f64() * 1e3);
        }
    }
    let after = if cx.s.starts > 0 {
        std::thread::sleep(Duration::from_secs(2));
        [cx.berth.rss(), cx.dockerd.rss()]
    } else {
        [None, None]
    };
    let kib = |v: Option<u64>| v.map(|k| k as f64 / 1024.0);
    cx.res.row(
        Row::new("5. memory", &format!("daemon RSS with {n} containers"), "MiB", Better::Lower)
            .set(Kind::Berth, kib(rss_n[0]))
            .set(Kind::Dockerd, kib(rss_n[1])),
    );
    cx.res.row(
        Row::new("5. memory", &format!("its containerd's RSS with {n} containers"), "MiB", Better::Lower)
            .set(Kind::Berth, kib(ctd_n[0]))
            .set(Kind::Dockerd, kib(ctd_n[1])),
    );
    if cx.s.starts > 0 {
        cx.res.row(
            Row::new("5. memory", &format!("daemon RSS after a restart with {n} containers"), "MiB", Better::Lower)
                .set(Kind::Berth, kib(after[0]))
                .set(Kind::Dockerd, kib(after[1])),
        );
        cx.res.row(
            Row::new("5. start-up", &format!("start until /_ping answers, {n} containers on disk, median"), "ms", Better::Lower)
                .set(Kind::Berth, median(&starts[0]))
                .set(Kind::Dockerd, median(&starts[1]))
                .note("berth also starts its containerd; dockerd's stays up"),
        );
    }
    cx.res.raw(
        "memory_startup",
        json!({"rss_kib_with_containers": {"berth": rss_n[0], "dockerd": rss_n[1]},
               "containerd_rss_kib_with_containers": {"berth": ctd_n[0], "dockerd": ctd_n[1]},
               "rss_kib_after_restart": {"berth": after[0], "dockerd": after[1]},
               "startup_ms": {"berth": starts[0], "dockerd": starts[1]}}),
    );
    cx.res.panels.push(Panel {
        title: format!("start-up with {n} containers (ms)"),
        categories: vec!["to /_ping".into()],
        series: vec![(Kind::Berth, vec![median(&starts[0])]), (Kind::Dockerd, vec![median(&starts[1])])],
    });
    cx.res.raw("rss_n_for_chart", json!([kib(rss_n[0]), kib(rss_n[1])]));
    Ok(())
}

fn executable(p: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The OCI runtimes installed here (what `scripts/install-runtimes` sets
/// up), registered the way README "Choosing a runtime" says.
fn installed_runtimes(root: &std::path::Path, runc: &str) -> Result<Vec<BenchRuntime>, String> {
    let mut v = vec![BenchRuntime { name: "runc".into(), def: None, ctr_binary: runc.into() }];
    if executable("/usr/local/lib/berth/crun-hybrid") {
        let p = "/usr/local/lib/berth/crun-hybrid";
        v.push(BenchRuntime { name: "crun".into(), def: Some(json!({"path": p})), ctr_binary: p.into() });
    }
    if let Some(p) = ["/usr/local/bin/youki", "/root/.cargo/bin/youki"].into_iter().find(|p| executable(p)) {
        v.push(BenchRuntime { name: "youki".into(), def: Some(json!({"path": p})), ctr_binary: p.into() });
    }
    if executable("/usr/bin/runsc") {
        let args = ["--platform=ptrace", "--network=none"];
        // ctr has no runtime args either: the same kind of wrapper berth writes.
        let w = root.join("runsc-ptrace");
        std::fs::write(&w, format!("#!/bin/sh\nexec /usr/bin/runsc {} \"$@\"\n", args.join(" "))).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        v.push(BenchRuntime { name: "gvisor".into(), def: Some(json!({"path": "/usr/bin/runsc", "runtimeArgs": args})), ctr_binary: w });
    }
    Ok(v)
}

/// Scenario 7 (berth and the ctr floor): run latency of each installed OCI
/// runtime, `docker run --rm --network none --runtime R bb true`, runtimes
/// and engines interleaved (R1/berth R1/ctr R2/berth R2/ctr …).
pub fn runtimes(cx: &mut Ctx) -> Result<(), String> {
    let runc = which("runc").unwrap_or_else(|| "/usr/sbin/runc".into());
    let root = cx.berth.config_file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let rts = installed_runtimes(&root, &runc)?;
    let mut cfg = serde_json::Map::new();
    for rt in rts.iter().filter(|r| r.def.is_some()) {
        cfg.insert(rt.name.clone(), rt.def.clone().unwrap());
    }
    crate::engines::write_berth_config(&cx.berth.config_file, &json!({ "runtimes": cfg }))?;
    let r = cx.berth.api.post("/berth/v1/reload", None)?;
    if !r.ok() {
        return Err(format!("registering the runtimes failed: {} {}", r.status, r.text()));
    }
    let names: Vec<&str> = rts.iter().map(|r| r.name.as_str()).collect();
    eprintln!("bench: scenario 7, run latency per runtime ({}): {} runs each (+{} warm-up)", names.join(", "), cx.s.runs, cx.s.warmup);
    let runners = [Kind::Berth, Kind::Ctr].map(|k| Runner::new(k, cx.berth, cx.dockerd, cx.s.cmd_timeout));
    let mut samples = vec![[Vec::new(), Vec::new()]; rts.len()];
    let mut failures = vec![0usize; rts.len()];
    let deadline = Instant::now() + cx.s.scenario_budget;
    'rounds: for i in 0..cx.s.warmup + cx.s.runs {
        for (j, rt) in rts.iter().enumerate() {
            for (e, r) in runners.iter().enumerate() {
                check_interrupt()?;
                let o = run(r.run_cmd_on(Some(rt), &["true"]), cx.s.cmd_timeout, false)?;
                if !o.ok {
                    failures[j] += 1;
                    if failures[j] <= 3 {
                        cx.res.problem(format!("runtimes: {} on {}: {}", r.kind.name(), rt.name, o.describe()));
                    }
                } else if i >= cx.s.warmup {
                    samples[j][e].push(o.ms());
                }
            }
            if Instant::now() > deadline {
                cx.res.problem(format!("runtimes: time budget hit after {} rounds", i + 1));
                break 'rounds;
            }
        }
    }
    let mut raw = serde_json::Map::new();
    let mut meds = Vec::new();
    for (j, rt) in rts.iter().enumerate() {
        let [b, c] = &samples[j];
        let (bm, cm) = (median(b), median(c));
        meds.push((bm, cm));
        cx.res.row(
            Row::new("7. runtimes", &format!("{}: docker run --rm --runtime {} true, median", rt.name, rt.name), "ms", Better::Lower)
                .set(Kind::Berth, bm)
                .set(Kind::Ctr, cm),
        );
        cx.res.row(
            Row::new("7. runtimes", &format!("{}: p95", rt.name), "ms", Better::Lower).set(Kind::Berth, p95(b)).set(Kind::Ctr, p95(c)),
        );
        if failures[j] > 0 {
            cx.res.row(Row::new("7. runtimes", &format!("{}: failed runs", rt.name), "count", Better::Lower).set(Kind::Berth, Some(failures[j] as f64)));
        }
        raw.insert(rt.name.clone(), json!({"berth": b, "ctr": c}));
    }
    cx.res.raw("runtime_latency_ms", serde_json::Value::Object(raw));
    cx.res.panels.push(Panel {
        title: "run --rm true by runtime (ms)".into(),
        categories: rts.iter().map(|r| r.name.clone()).collect(),
        series: vec![(Kind::Berth, meds.iter().map(|m| m.0).collect()), (Kind::Ctr, meds.iter().map(|m| m.1).collect())],
    });
    // Back to no extra runtimes for the scenarios after this one.
    crate::engines::write_berth_config(&cx.berth.config_file, &json!({}))?;
    let _ = cx.berth.api.post("/berth/v1/reload", None)?;
    Ok(())
}

/// One exec of `true` through the API: create, start detached, then poll
/// its inspect until it has exited; an error unless it exited 0.
fn exec_true(api: &crate::http::Api, container: &str, timeout: Duration) -> Result<(), String> {
    let r = api.post(&format!("/containers/{container}/exec"), Some(&json!({"Cmd": ["true"]})))?;
    if !r.ok() {
        return Err(format!("exec create: {} {}", r.status, r.text()));
    }
    let id = r.json()?["Id"].as_str().ok_or_else(|| format!("exec create: no Id in {}", r.text()))?.to_string();
    let r = api.post(&format!("/exec/{id}/start"), Some(&json!({"Detach": true})))?;
    if !r.ok() {
        return Err(format!("exec start: {} {}", r.status, r.text()));
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = api.get(&format!("/exec/{id}/json"))?;
        if !r.ok() {
            return Err(format!("exec inspect: {} {}", r.status, r.text()));
        }
        let v = r.json()?;
        if v["Running"] == json!(false) && !v["ExitCode"].is_null() {
            return match v["ExitCode"].as_i64() {
                Some(0) => Ok(()),
                c => Err(format!("exec {id} exited with {c:?}")),
            };
        }
        check_interrupt()?;
        if start.elapsed() > timeout {
            return Err(format!("exec {id} still running after {timeout:?}"));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// One chunk of execs from `clients` parallel clients, until `deadline`.
struct ExecChunk {
    ok: usize,
    failed: usize,
    wall: Duration,
    first_err: Option<String>,
}

fn exec_chunk(e: &Engine, container: &str, count: usize, clients: usize, deadline: Instant, timeout: Duration) -> ExecChunk {
    let (ok, failed, wall, first_err) = parallel(count, clients, deadline, || exec_true(&e.api, container, timeout));
    ExecChunk { ok, failed, wall, first_err }
}

/// Starts the long-running container the execs run in; its id.
fn exec_container(e: &Engine) -> Result<String, String> {
    let body = json!({"Image": IMAGE, "Cmd": ["sleep", "1000000"], "HostConfig": {"NetworkMode": "none"}});
    let r = e.api.post("/containers/create?name=bench-exec", Some(&body))?;
    if !r.ok() {
        return Err(format!("{}: create: {} {}", e.kind.name(), r.status, r.text()));
    }
    let id = r.json()?["Id"].as_str().ok_or("create: no Id")?.to_string();
    let r = e.api.post(&format!("/containers/{id}/start"), None)?;
    if !r.ok() {
        let _ = e.api.delete(&format!("/containers/{id}?force=1"));
        return Err(format!("{}: start: {} {}", e.kind.name(), r.status, r.text()));
    }
    Ok(id)
}

/// Scenario 9 (berth and dockerd): daemon RSS over N execs of `true` in one
/// running container, from C parallel API clients. RSS is sampled before
/// the first exec, after the warm-up (the first N/10 execs), after every
/// further N/10 and at the end; the engines take turns chunk by chunk.
pub fn execs(cx: &mut Ctx) -> Result<(), String> {
    let (n, clients) = (cx.s.execs, cx.s.exec_clients);
    let engines = [&*cx.berth, &*cx.dockerd];
    eprintln!("bench: scenario 9, execs: {n} execs of true per engine from {clients} clients, RSS every {} execs", n.div_ceil(10));
    let mut ids: Vec<Option<String>> = vec![None, None];
    let outcome = (|| -> Result<ExecsOut, String> {
        for (j, e) in engines.iter().enumerate() {
            ids[j] = Some(exec_container(e)?);
        }
        let ids: Vec<String> = ids.iter().map(|i| i.clone().unwrap()).collect();
        execs_loop(cx.s, &engines, &ids, cx.res)
    })();
    // The container goes on every path (the harness removes all after each
    // scenario too, and on any exit).
    for (j, e) in engines.iter().enumerate() {
        if let Some(id) = &ids[j] {
            let _ = e.api.delete(&format!("/containers/{id}?force=1&v=1"));
        }
    }
    let o = outcome?;
    let mib = |v: Option<u64>| v.map(|k| k as f64 / 1024.0);
    let warm: Vec<Option<f64>> = (0..2).map(|j| mib(o.rss[j].get(1).copied().flatten())).collect();
    let end: Vec<Option<f64>> = (0..2).map(|j| mib(o.rss[j].last().copied().flatten())).collect();
    let growth: Vec<Option<f64>> = (0..2).map(|j| end[j].zip(warm[j]).map(|(e, w)| e - w)).collect();
    let rate: Vec<Option<f64>> = (0..2).map(|j| (o.measured_wall[j] > 0.0).then(|| o.measured_ok[j] as f64 / o.measured_wall[j])).collect();
    let done = *o.at.last().unwrap_or(&0);
    let sec = "9. execs";
    let note = if done < n { format!("{done} of {n} execs done (time budget)") } else { String::new() };
    let allowed = warm[0].map(|w| (0.05 * w).max(2.0));
    let met = growth[0].zip(allowed).map(|(g, a)| g <= a);
    let kinds = [Kind::Berth, Kind::Dockerd];
    let row2 = |metric: &str, unit: &str, better: Better, v: &[Option<f64>]| Row::new(sec, metric, unit, better).set(kinds[0], v[0]).set(kinds[1], v[1]);
    cx.res.row(row2(&format!("daemon RSS after {} warm-up execs", o.at.get(1).copied().unwrap_or(0)), "MiB", Better::Lower, &warm));
    cx.res.row(row2(&format!("daemon RSS after {done} execs"), "MiB", Better::Lower, &end).note(note.clone()));
    cx.res.row(row2("RSS growth (end - warm-up)", "MiB", Better::Lower, &growth).note(note).target(Target {
        text: "flat: ≤ max(2 MiB, 5% of the warm-up RSS)".into(),
        met,
        detail: format!(
            "berth {} MiB (allowed {} MiB); dockerd {} MiB",
            growth[0].map(|g| format!("{g:+.2}")).unwrap_or_else(|| "–".into()),
            crate::report::fmt(allowed),
            growth[1].map(|g| format!("{g:+.2}")).unwrap_or_else(|| "–".into())
        ),
    }));
    cx.res.row(
        row2(&format!("exec create + start + wait, {clients} clients"), "execs/s", Better::Higher, &rate).note("after the warm-up; noisy on a shared machine"),
    );
    if o.failed.iter().any(|f| *f > 0) {
        cx.res.row(row2("failed execs", "count", Better::Lower, &[Some(o.failed[0] as f64), Some(o.failed[1] as f64)]));
    }
    cx.res.raw(
        "execs_rss",
        json!({"execs_done": o.at, "note": "RSS (KiB) sampled before the first exec, after the warm-up, then every N/10 execs; index i is after execs_done[i]",
               "berth_rss_kib": o.rss[0], "dockerd_rss_kib": o.rss[1],
               "berth_containerd_rss_kib": o.ctd_rss[0], "dockerd_containerd_rss_kib": o.ctd_rss[1],
               "execs_per_s_by_chunk": {"berth": o.chunk_rates[0], "dockerd": o.chunk_rates[1]},
               "failed": {"berth": o.failed[0], "dockerd": o.failed[1]}, "clients": clients}),
    );
    cx.res.panels.push(Panel {
        title: format!("daemon RSS over {done} execs (MiB)"),
        categories: vec!["after warm-up".into(), "end".into()],
        series: vec![(Kind::Berth, vec![warm[0], end[0]]), (Kind::Dockerd, vec![warm[1], end[1]])],
    });
    cx.res.panels.push(Panel {
        title: format!("exec throughput, {clients} clients (execs/s)"),
        categories: vec![format!("{done} execs")],
        series: vec![(Kind::Berth, vec![rate[0]]), (Kind::Dockerd, vec![rate[1]])],
    });
    Ok(())
}

struct ExecsOut {
    /// Execs done (per engine, the same) at each sample.
    at: Vec<usize>,
    rss: [Vec<Option<u64>>; 2],
    ctd_rss: [Vec<Option<u64>>; 2],
    chunk_rates: [Vec<f64>; 2],
    measured_ok: [usize; 2],
    measured_wall: [f64; 2],
    failed: [usize; 2],
}

fn execs_loop(s: &Settings, engines: &[&Engine; 2], ids: &[String], res: &mut Results) -> Result<ExecsOut, String> {
    let n = s.execs;
    let mut o = ExecsOut {
        at: vec![0],
        rss: [vec![], vec![]],
        ctd_rss: [vec![], vec![]],
        chunk_rates: [vec![], vec![]],
        measured_ok: [0; 2],
        measured_wall: [0.0; 2],
        failed: [0; 2],
    };
    let sample = |o: &mut ExecsOut| {
        // Let the last exits' clean-up (process delete, FIFOs) finish.
        std::thread::sleep(Duration::from_millis(300));
        for (j, e) in engines.iter().enumerate() {
            o.rss[j].push(e.rss());
            o.ctd_rss[j].push(e.containerd_rss());
            let last = |v: &Vec<Option<u64>>| v.last().copied().flatten().map(|k| format!("{:.2}", k as f64 / 1024.0)).unwrap_or_else(|| "–".into());
            eprintln!("bench:     {} RSS {} MiB (its containerd {} MiB)", e.kind.name(), last(&o.rss[j]), last(&o.ctd_rss[j]));
        }
    };
    sample(&mut o);
    // The time budget bounds each engine's share of the loop.
    let mut spent = [Duration::ZERO; 2];
    let mut done = 0usize;
    for k in 1..=10usize {
        let upto = n * k / 10;
        let count = upto - done;
        if count == 0 {
            continue;
        }
        let mut short = false;
        let mut attempted = count;
        for (j, e) in engines.iter().enumerate() {
            check_interrupt()?;
            let deadline = Instant::now() + s.scenario_budget.saturating_sub(spent[j]);
            let c = exec_chunk(e, &ids[j], count, s.exec_clients, deadline, s.cmd_timeout);
            check_interrupt()?;
            spent[j] += c.wall;
            o.failed[j] += c.failed;
            if let Some(err) = c.first_err {
                res.problem(format!("execs on {} (execs {done}..{upto}): {} failed; first: {err}", e.kind.name(), c.failed));
            }
            if c.ok + c.failed < count {
                short = true;
                res.problem(format!("execs: {} stopped by the time budget at {} execs", e.kind.name(), done + c.ok + c.failed));
            }
            let rate = c.ok as f64 / c.wall.as_secs_f64().max(1e-9);
            o.chunk_rates[j].push(rate);
            if k > 1 {
                o.measured_ok[j] += c.ok;
                o.measured_wall[j] += c.wall.as_secs_f64();
            }
            eprintln!("bench:   {}: execs {done}..{upto}: {} ok, {} failed, {rate:.1}/s", e.kind.name(), c.ok, c.failed);
            attempted = attempted.min(c.ok + c.failed);
        }
        done += attempted;
        sample(&mut o);
        o.at.push(done);
        if short {
            break;
        }
    }
    Ok(o)
}

/// Scenario 10: networks. `docker run --rm bb true` on each engine's
/// default bridge (and with `--network none`, interleaved), then traffic
/// through a published port on 127.0.0.1: one TCP stream into the
/// container (MiB/s) and short HTTP connections to busybox httpd
/// (connections/s). berth forwards in the kernel (netavark's DNAT); dockerd
/// uses its default userland proxy for loopback traffic.
pub fn network(cx: &mut Ctx) -> Result<(), String> {
    let b = Runner::new(Kind::Berth, cx.berth, cx.dockerd, cx.s.cmd_timeout);
    let d = Runner::new(Kind::Dockerd, cx.berth, cx.dockerd, cx.s.cmd_timeout);
    let bridge: &[&str] = &["--network", "bridge"];
    let cases: [(&Runner, &[&str]); 4] = [(&b, bridge), (&b, &[]), (&d, bridge), (&d, &[])];
    eprintln!("bench: scenario 10, networks: {} runs per case (+{} warm-up), interleaved", cx.s.runs, cx.s.warmup);
    let samples = interleaved_runs(cx, "network", &cases)?;
    let med: Vec<Option<f64>> = samples.iter().map(|v| median(v)).collect();
    let section = "10. networks";
    let met = match (med[0], med[1], med[2]) {
        (Some(bb), Some(bn), Some(db)) => Some(db >= 2.0 * bb && bb <= 1.3 * bn),
        _ => None,
    };
    let detail = format!("dockerd {} of berth (≥2x), berth bridge {} of its none-network run (≤1.3x)", ratio_detail(med[2], med[0]), ratio_detail(med[0], med[1]));
    cx.res.row(
        Row::new(section, "run --rm true on the default bridge, median", "ms", Better::Lower)
            .set(Kind::Berth, med[0])
            .set(Kind::Dockerd, med[2])
            .target(Target { text: "≥ 2x faster than dockerd, ≤ 1.3x the none-network run".into(), met, detail }),
    );
    cx.res.row(Row::new(section, "run --rm true with --network none, median", "ms", Better::Lower).set(Kind::Berth, med[1]).set(Kind::Dockerd, med[3]));
    cx.res.raw("network_run_ms", json!({"berth_bridge": samples[0], "berth_none": samples[1], "dockerd_bridge": samples[2], "dockerd_none": samples[3]}));

    // Traffic through a published port.
    let mut stream = [None, None];
    let mut conns = [None, None];
    for (j, e) in [&*cx.berth, &*cx.dockerd].into_iter().enumerate() {
        check_interrupt()?;
        match port_traffic(e, cx.s) {
            Ok((mibs, cps)) => {
                stream[j] = Some(mibs);
                conns[j] = Some(cps);
            }
            Err(err) => cx.res.problem(format!("network traffic ({}): {err}", e.kind.name())),
        }
        let _ = e.remove_all(4);
    }
    cx.res.row(Row::new(section, "one TCP stream into a published port", "MiB/s", Better::Higher).set(Kind::Berth, stream[0]).set(Kind::Dockerd, stream[1]));
    cx.res.row(Row::new(section, "HTTP connections to a published port (4 clients)", "conn/s", Better::Higher).set(Kind::Berth, conns[0]).set(Kind::Dockerd, conns[1]));
    Ok(())
}

/// (MiB/s of one stream, connections/s) through ports published on 127.0.0.1.
fn port_traffic(e: &Engine, s: &crate::Settings) -> Result<(f64, f64), String> {
    use std::io::{Read, Write};
    let start = |name: &str, port: u16, script: &str| -> Result<u16, String> {
        let o = run(e.docker(&["run", "-d", "--name", name, "-p", &format!("127.0.0.1::{port}"), IMAGE, "sh", "-c", script]), s.cmd_timeout, false)?;
        if !o.ok {
            return Err(o.describe());
        }
        let o = run(e.docker(&["port", name, &port.to_string()]), s.cmd_timeout, false)?;
        String::from_utf8_lossy(&o.stdout).lines().next().and_then(|l| l.rsplit(':').next()).and_then(|p| p.trim().parse().ok()).ok_or_else(|| format!("docker port {name}: {}", o.describe()))
    };
    let connect = |port: u16| -> Result<std::net::TcpStream, String> {
        let t = Instant::now();
        loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(c) => return Ok(c),
                Err(err) if t.elapsed() > Duration::from_secs(10) => return Err(format!("connect 127.0.0.1:{port}: {err}")),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };
    // One stream: the container's nc counts what it reads and answers the count.
    let sink = start("bench-sink", 5001, "busybox nc -l -p 5001 | busybox wc -c > /dev/null; sleep 1000")?;
    let total: usize = if s.mode == "quick" { 256 << 20 } else { 1 << 30 };
    let buf = vec![0x5au8; 1 << 20];
    let mut c = connect(sink)?;
    let t = Instant::now();
    let mut sent = 0;
    while sent < total {
        c.write_all(&buf).map_err(|err| format!("stream: {err} after {sent} bytes"))?;
        sent += buf.len();
    }
    c.shutdown(std::net::Shutdown::Write).ok();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let mibs = (sent as f64 / (1 << 20) as f64) / t.elapsed().as_secs_f64();
    // Short connections: HTTP/1.0 GETs of a small file, 4 clients.
    let web = start("bench-web", 80, "mkdir -p /www && echo ok > /www/i && exec busybox httpd -f -p 80 -h /www")?;
    drop(connect(web)?);
    let per_client: usize = if s.mode == "quick" { 300 } else { 2000 };
    let failed = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..per_client {
                    let ok = (|| -> std::io::Result<bool> {
                        let mut c = std::net::TcpStream::connect(("127.0.0.1", web))?;
                        c.write_all(b"GET /i HTTP/1.0\r\n\r\n")?;
                        let mut r = String::new();
                        c.read_to_string(&mut r)?;
                        Ok(r.ends_with("ok\n"))
                    })();
                    if !matches!(ok, Ok(true)) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let failed = failed.into_inner();
    if failed > 0 {
        return Err(format!("{failed} of {} HTTP connections failed", 4 * per_client));
    }
    Ok((mibs, (4 * per_client) as f64 / secs))
}
