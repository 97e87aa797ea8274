//! The CLI subcommands other than `daemon`.

use berth_engine::runtimes::{inventory, Inventory};
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{ConfigArgs, ReloadArgs, RuntimesArgs};
use crate::client;

/// `berth man`: the man pages of berth and every subcommand, one after another.
pub fn man() -> i32 {
    use clap::CommandFactory;
    let cmd = crate::cli::Cli::command();
    let mut out = std::io::stdout();
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|c| c.get_name() != "help").map(|c| c.clone().name(&*Box::leak(format!("berth-{}", c.get_name()).into_boxed_str()))));
    for page in pages {
        if let Err(e) = clap_mangen::Man::new(page).render(&mut out) {
            eprintln!("berth: {e}");
            return 1;
        }
    }
    0
}

/// `berth config check`: exit 0 and a summary when valid, 1 and every problem when not.
pub fn config_check(args: &ConfigArgs) -> i32 {
    match berth_config::check(&args.to_flags()) {
        Ok((config, runtimes)) => {
            println!("configuration is valid: {}", config.config_file.display());
            let snap = berth_config::Snapshot { generation: 0, config, runtimes };
            print_table(&inventory(&snap));
            0
        }
        Err(e) => {
            let n = e.problems.len();
            eprintln!("configuration is invalid ({n} problem{}):", if n == 1 { "" } else { "s" });
            eprintln!("{}", crate::render_problems(&e));
            1
        }
    }
}

/// `berth reload [--dry-run]`: returns once the new generation is live.
pub async fn reload(args: ReloadArgs) -> i32 {
    let path = if args.dry_run { "/berth/v1/reload?dry-run=1" } else { "/berth/v1/reload" };
    let (status, body) = match client::request(&args.client.host, Method::POST, path).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return if status.is_success() { 0 } else { 1 };
    }
    if status == StatusCode::BAD_REQUEST {
        if let Some(errors) = v.get("errors").and_then(Value::as_array) {
            eprintln!("reload refused; the previous configuration stays live. {} problem{}:", errors.len(), if errors.len() == 1 { "" } else { "s" });
            for e in errors {
                eprintln!("  - {}", e.as_str().unwrap_or_default());
            }
            return 1;
        }
    }
    if !status.is_success() {
        eprintln!("berth: reload failed ({status}): {}", v.get("message").and_then(Value::as_str).unwrap_or(&v.to_string()));
        return 1;
    }
    print!("{}", reload_summary(&v));
    0
}

/// A readable summary of a reload answer.
pub fn reload_summary(v: &Value) -> String {
    let list = |k: &str| -> Vec<String> {
        v.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let generation = v.get("generation").and_then(Value::as_u64).unwrap_or(0);
    let dry = v.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
    let mut out = if dry {
        format!("dry run: the configuration is valid and would become generation {generation}\n")
    } else {
        match v.get("apply_us").and_then(Value::as_u64) {
            Some(us) => format!("reloaded: generation {generation} is live (applied in {:.1} ms)\n", us as f64 / 1000.0),
            None => format!("reloaded: generation {generation} is live\n"),
        }
    };
    let (added, removed) = (list("added"), list("removed"));
    let changed: Vec<&Value> = v.get("changed").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let old = v.pointer("/default_runtime/old").and_then(Value::as_str).unwrap_or("");
    let new = v.pointer("/default_runtime/new").and_then(Value::as_str).unwrap_or("");
    if added.is_empty() && removed.is_empty() && changed.is_empty() && old == new {
        out.push_str("  no runtime changes\n");
    }
    if !added.is_empty() {
        out.push_str(&format!("  added:    {}\n", added.join(", ")));
    }
    if !removed.is_empty() {
        out.push_str(&format!("  removed:  {}\n", removed.join(", ")));
    }
    for c in changed {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        out.push_str(&format!("  changed:  {name}: {} -> {}\n", def(c.get("old")), def(c.get("new"))));
    }
    if old != new {
        out.push_str(&format!("  default runtime: {old} -> {new}\n"));
    }
    if let Some(l) = v.get("log_defaults") {
        let show = |c: Option<&Value>| match c {
            Some(c) => format!("{} {}", c.get("driver").and_then(Value::as_str).unwrap_or("?"), c.get("opts").unwrap_or(&Value::Null)),
            None => "?".into(),
        };
        out.push_str(&format!("  log defaults (for containers created from now on): {} -> {}\n", show(l.get("old")), show(l.get("new"))));
    }
    for u in v.get("unavailable").and_then(Value::as_array).into_iter().flatten() {
        out.push_str(&format!(
            "  unavailable: {}: {}\n",
            u.get("name").and_then(Value::as_str).unwrap_or("?"),
            u.get("reason").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    for w in list("repaired_wrappers") {
        out.push_str(&format!("  warning: wrapper {w} had been modified and was restored\n"));
    }
    out
}

/// `{"path":"/x","runtimeArgs":["a"]}` → `path /x [a]`.
fn def(v: Option<&Value>) -> String {
    let Some(v) = v else { return "?".into() };
    if let Some(p) = v.get("path").and_then(Value::as_str) {
        let args: Vec<&str> = v.get("runtimeArgs").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if args.is_empty() {
            format!("path {p}")
        } else {
            format!("path {p} {args:?}")
        }
    } else if let Some(t) = v.get("runtimeType").and_then(Value::as_str) {
        match v.get("options") {
            Some(o) if !o.is_null() => format!("shim {t} {o}"),
            _ => format!("shim {t}"),
        }
    } else {
        v.to_string()
    }
}

/// `berth runtimes [--json]` and `berth runtimes export --format F`.
pub async fn runtimes(args: RuntimesArgs) -> i32 {
    if let Some(crate::cli::RuntimesAction::Export { format }) = &args.action {
        return match client::request(&args.client.host, Method::GET, &format!("/berth/v1/runtimes/export?format={format}")).await {
            Ok((s, body)) if s.is_success() => {
                print!("{}", String::from_utf8_lossy(&body));
                0
            }
            Ok((s, body)) => {
                eprintln!("berth: export failed ({s}): {}", String::from_utf8_lossy(&body));
                1
            }
            Err(e) => {
                eprintln!("berth: {e}");
                1
            }
        };
    }
    let (status, body) = match client::request(&args.client.host, Method::GET, "/berth/v1/runtimes").await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    if !status.is_success() {
        eprintln!("berth: listing runtimes failed ({status}): {}", String::from_utf8_lossy(&body));
        return 1;
    }
    if args.json {
        println!("{}", String::from_utf8_lossy(&body).trim_end());
        return 0;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            print_rows(&v);
            0
        }
        Err(e) => {
            eprintln!("berth: the daemon's answer is not JSON: {e}");
            1
        }
    }
}

fn print_table(inv: &Inventory) {
    match serde_json::to_value(inv) {
        Ok(v) => print_rows(&v),
        Err(e) => eprintln!("berth: {e}"),
    }
}

/// Prints an inventory (as JSON) as an aligned table.
fn print_rows(v: &Value) {
    let s = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut rows = vec![["NAME", "KIND", "BINARY", "ARGS", "VERSION", "FEATURES", "STATUS", "RUNNING", "SOURCE"].map(String::from).to_vec()];
    for r in v.get("runtimes").and_then(Value::as_array).into_iter().flatten() {
        let name = if r.get("default").and_then(Value::as_bool) == Some(true) { format!("{} (default)", s(r, "name")) } else { s(r, "name") };
        let args: Vec<&str> = r.get("args").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let status = if r.get("available").and_then(Value::as_bool) == Some(true) {
            "available".to_string()
        } else {
            format!("unavailable: {}", s(r, "reason"))
        };
        let binary = if s(r, "binary").is_empty() { s(r, "shim") } else { s(r, "binary") };
        let running = r.get("containers_running").and_then(Value::as_u64).unwrap_or(0).to_string();
        rows.push(vec![name, s(r, "kind"), binary, args.join(" "), s(r, "version"), s(r, "features"), status, running, s(r, "source")]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_lists_every_change() {
        let v = json!({"generation": 4, "dry_run": false, "added": ["gvisor"], "removed": ["youki"],
            "changed": [{"name": "crun", "old": {"path": "/usr/bin/crun"}, "new": {"path": "/usr/bin/crun", "runtimeArgs": ["--debug"]}}],
            "default_runtime": {"old": "runc", "new": "crun"}, "unavailable": [], "repaired_wrappers": [], "apply_us": 2345});
        let s = reload_summary(&v);
        assert!(s.starts_with("reloaded: generation 4 is live (applied in 2.3 ms)\n"), "{s}");
        assert!(s.contains("added:    gvisor") && s.contains("removed:  youki"));
        assert!(s.contains("changed:  crun: path /usr/bin/crun -> path /usr/bin/crun [\"--debug\"]"), "{s}");
        assert!(s.contains("default runtime: runc -> crun"));
        let v = json!({"generation": 2, "dry_run": true, "added": [], "removed": [], "changed": [], "default_runtime": {"old": "runc", "new": "runc"}});
        assert!(reload_summary(&v).contains("no runtime changes"));
    }
}
