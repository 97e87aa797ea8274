//! A container's filesystem through the docker CLI, end to end on a real
//! berth daemon: `docker diff` (running and stopped containers, whiteouts,
//! opaque directories, symlinks that point out of the container),
//! `docker commit` (pause, changes, the committed image runs and shows the
//! file; untagged commits; history), `docker system df` and sizes
//! (`ps -s`, `inspect -s`, the space a prune reclaims), and `docker cp`.

mod common;

use common::{text, Daemon};

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn diff_lists_the_changes_of_running_and_stopped_containers() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    // Added, modified, deleted, an opaque directory (rm -rf then mkdir of
    // a lower directory), a symlink to the host's root.
    let script = "touch /test && echo x >> /etc/passwd && rm -rf /tmp && mkdir -p /tmp/new && ln -s / /escape && rm /bin/yes";
    d.ok(&["run", "--name", "c1", "bb", "sh", "-c", script]);
    let mut got = lines(&d.ok(&["diff", "c1"]));
    // A copied-up directory is listed as changed when its size or mtime
    // differ from the image's (as dockerd does), which depends on the
    // filesystem under the snapshots.
    got.retain(|l| l != "C /etc" && l != "C /bin");
    let want = ["A /escape", "A /test", "A /tmp/new", "C /etc/passwd", "D /bin/yes", "D /tmp"];
    assert_eq!(got, want.map(String::from).to_vec(), "stopped container");

    // A running container: its changes as they happen.
    let id = d.ok(&["run", "-d", "bb", "sh", "-c", "mkdir -p /a/b && touch /a/b/f && sleep 100"]).trim().to_string();
    assert!(common::eventually(std::time::Duration::from_secs(10), || d.ok(&["diff", &id]).contains("/a/b/f")));
    assert_eq!(lines(&d.ok(&["diff", &id])), ["A /a", "A /a/b", "A /a/b/f"]);

    // A container that never ran has no changes; an unknown one is a 404.
    d.ok(&["create", "--name", "c0", "bb"]);
    assert_eq!(d.ok(&["diff", "c0"]), "");
    let o = d.docker(&["diff", "nope"]);
    assert!(!o.status.success() && text(&o).contains("No such container: nope"), "{}", text(&o));
    d.ok(&["rm", "-f", &id]);
}

#[test]
fn commit_makes_an_image_that_runs() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    d.ok(&["run", "--name", "c1", "bb", "sh", "-c", "echo hello > /test && rm /bin/true"]);
    let id = d.ok(&["commit", "-m", "a message", "-a", "me", "--change", "ENV A=1", "--change", "CMD [\"cat\", \"/test\"]", "c1", "committed:v1"]);
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&["run", "--rm", "committed:v1"]), "hello\n", "the committed CMD sees the file");
    let o = d.docker(&["run", "--rm", "committed:v1", "true"]);
    assert_ne!(o.status.code(), Some(0), "the deletion is in the image too: {}", text(&o));
    let bb_id = d.ok(&["image", "inspect", "-f", "{{.Id}}", "bb"]);
    let fmt = "{{.Parent}}|{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}|{{.Container}}|{{json .Config.Env}}";
    let c1 = d.ok(&["inspect", "-f", "{{.Id}}", "c1"]);
    let got = d.ok(&["image", "inspect", "-f", fmt, "committed:v1"]);
    let want = format!("{}|a message|me|2|{}|", bb_id.trim(), c1.trim());
    assert!(got.starts_with(&want) && got.trim_end().ends_with("\"A=1\"]"), "{got}");
    let history = d.ok(&["history", "--format", "{{.CreatedBy}}|{{.Comment}}", "committed:v1"]);
    assert_eq!(history.lines().next(), Some("sh -c echo hello > /test && rm /bin/true|a message"), "{history}");

    // A running container is paused during the commit (the default) and
    // runs on afterwards; --pause=false commits it running.
    let run = d.ok(&["run", "-d", "bb", "sh", "-c", "echo 1 > /f; sleep 100"]).trim().to_string();
    assert!(common::eventually(std::time::Duration::from_secs(10), || d.ok(&["diff", &run]).contains("/f")));
    let untagged = d.ok(&["commit", &run]).trim().to_string();
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", &run]).trim(), "running");
    assert_eq!(d.ok(&["run", "--rm", &untagged, "cat", "/f"]), "1\n");
    d.ok(&["commit", "--pause=false", &run, "committed:v2"]);
    assert_eq!(d.ok(&["run", "--rm", "committed:v2", "cat", "/f"]), "1\n");
    assert!(d.ok(&["images", "-q", "--no-trunc"]).contains(&untagged), "an untagged commit is listed");

    // What berth cannot do is refused: a change it does not know, a bad name.
    let o = d.docker(&["commit", "--change", "RUN true", "c1"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = d.docker(&["commit", "c1", "Bad:Name"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = d.docker(&["commit", "nope"]);
    assert!(!o.status.success() && text(&o).contains("No such container: nope"), "{}", text(&o));
    d.ok(&["rm", "-f", &run]);
    // The removed commit image goes like any other.
    d.ok(&["rmi", &untagged]);
}

#[test]
fn sizes_and_system_df() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    d.ok(&["run", "--name", "big", "bb", "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=2048"]);
    let size: i64 = d.ok(&["inspect", "-s", "-f", "{{.SizeRw}}", "big"]).trim().parse().unwrap();
    assert!((2 << 20..4 << 20).contains(&size), "SizeRw {size}");
    let root: i64 = d.ok(&["inspect", "-s", "-f", "{{.SizeRootFs}}", "big"]).trim().parse().unwrap();
    assert!(root > size, "SizeRootFs {root} counts the image too");
    let ps = d.ok(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(ps.starts_with("big 2.") && ps.contains("virtual"), "{ps}");

    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}"]);
    let rows: Vec<&str> = df.lines().collect();
    assert_eq!(rows.len(), 4, "{df}");
    assert!(rows[0].starts_with("Images 1 1 "), "{df}");
    assert!(rows[1].starts_with("Containers 1 0 2."), "{df}");
    assert_eq!(rows[2], "Local Volumes 0 0 0B", "{df}");
    assert_eq!(rows[3], "Build Cache 0 0 0B", "{df}");
    let v = d.ok(&["system", "df", "-v", "--format", "{{json .}}"]);
    assert!(v.contains("\"Containers\":1") || v.contains("big"), "{v}");

    let o = d.ok(&["container", "prune", "-f"]);
    assert!(o.contains("Total reclaimed space: 2."), "{o}");
}
