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

/// A raw HTTP request over the daemon's socket; returns (status, head, body).
fn raw(d: &Daemon, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, head, resp[split..].to_vec())
}

/// A tar of regular files (0640, owned by 1234:5678); names are written
/// as given (`..` included, which the tar crate's own setter refuses).
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn cp_in_and_out_of_running_and_stopped_containers() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let host = tempfile::tempdir().unwrap();
    let h = |p: &str| host.path().join(p);
    std::fs::write(h("in.txt"), "into the container\n").unwrap();
    std::fs::create_dir_all(h("tree/sub")).unwrap();
    std::fs::write(h("tree/sub/f"), "deep\n").unwrap();

    // Running.
    d.ok(&["run", "-d", "--name", "run", "bb", "sh", "-c", "echo out > /out.txt; mkdir /d; ln -s /out.txt /d/link; echo h > /d/h1; ln /d/h1 /d/h2; sleep 100"]);
    assert!(common::eventually(std::time::Duration::from_secs(10), || d.docker(&["exec", "run", "cat", "/d/link"]).status.success()));
    d.ok(&["cp", "run:/out.txt", h("out.txt").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(h("out.txt")).unwrap(), "out\n");
    d.ok(&["cp", "run:/d", h("d").to_str().unwrap()]);
    assert_eq!(std::fs::read_link(h("d/link")).unwrap().to_str(), Some("/out.txt"), "a symlink is copied as a symlink");
    {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (std::fs::metadata(h("d/h1")).unwrap(), std::fs::metadata(h("d/h2")).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "hard links stay hard links");
    }
    d.ok(&["cp", "-L", "run:/d/link", h("followed").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(h("followed")).unwrap(), "out\n", "cp -L follows it (through the stat's linkTarget)");
    d.ok(&["cp", h("in.txt").to_str().unwrap(), "run:/tmp/"]);
    d.ok(&["cp", h("tree").to_str().unwrap(), "run:/tmp/tree"]);
    assert_eq!(d.ok(&["exec", "run", "cat", "/tmp/in.txt", "/tmp/tree/sub/f"]), "into the container\ndeep\n");

    // Stopped: through a temporary mount, and the changes are there at the next start.
    d.ok(&["stop", "-t", "0", "run"]);
    d.ok(&["cp", "run:/tmp/in.txt", h("back.txt").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(h("back.txt")).unwrap(), "into the container\n");
    std::fs::write(h("in.txt"), "while stopped\n").unwrap();
    d.ok(&["cp", h("in.txt").to_str().unwrap(), "run:/tmp/in.txt"]);
    d.ok(&["start", "run"]);
    assert_eq!(d.ok(&["exec", "run", "cat", "/tmp/in.txt"]), "while stopped\n");
    let leftovers: Vec<_> = std::fs::read_dir(d.path("data/tmp")).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "scratch mounts and uploads are gone: {leftovers:?}");

    // A container that never ran: read from its image; what is copied in
    // is there at its first start (and in its diff and commit before).
    d.ok(&["create", "--name", "new", "bb", "cat", "/tmp/in.txt"]);
    assert!(d.ok(&["cp", "new:/etc/passwd", "-"]).len() > 512, "a tar on stdout");
    d.ok(&["cp", h("in.txt").to_str().unwrap(), "new:/tmp/"]);
    assert_eq!(d.ok(&["cp", "new:/tmp/in.txt", "-"]).len() % 512, 0);
    assert_eq!(lines(&d.ok(&["diff", "new"])), ["A /tmp/in.txt", "C /tmp"]);
    d.ok(&["commit", "new", "fromnew"]);
    assert_eq!(d.ok(&["run", "--rm", "fromnew"]), "while stopped\n");
    assert_eq!(d.ok(&["start", "-a", "new"]), "while stopped\n");
    // One never started, removed: its snapshot goes too.
    let gone = d.ok(&["create", "--name", "gone", "bb"]).trim().to_string();
    d.ok(&["cp", h("in.txt").to_str().unwrap(), "gone:/"]);
    let ctr = |args: &[&str]| {
        let o = std::process::Command::new("ctr").arg("--address").arg(d.path("exec/containerd/containerd.sock")).args(["-n", "berth"]).args(args).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(ctr(&["snapshots", "ls"]).contains(&gone) && ctr(&["leases", "ls"]).contains(&gone));
    d.ok(&["rm", "gone"]);
    assert!(!ctr(&["snapshots", "ls"]).contains(&gone) && !ctr(&["leases", "ls"]).contains(&gone), "its snapshot and lease are gone");

    // Errors as dockerd gives them.
    let o = d.docker(&["cp", "run:/nope", h("x").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("Could not find the file /nope in container run"), "{}", text(&o));
    let (status, _, body) = raw(&d, "PUT", "/containers/run/archive?path=/etc/passwd", &tar_of(&[("f", b"x")]));
    assert_eq!((status, String::from_utf8_lossy(&body).contains("extraction point is not a directory")), (400, true), "{}", String::from_utf8_lossy(&body));
    d.ok(&["run", "-d", "--read-only", "--name", "ro", "bb", "sleep", "100"]);
    let o = d.docker(&["cp", h("in.txt").to_str().unwrap(), "ro:/tmp/"]);
    assert!(!o.status.success() && text(&o).contains("container rootfs is marked read-only"), "{}", text(&o));

    // HEAD: the stat header alone; owners from the tar, or the container
    // user's with copyUIDGID.
    let (status, head, body) = raw(&d, "HEAD", "/containers/run/archive?path=/out.txt", b"");
    assert_eq!(status, 200);
    assert!(body.is_empty());
    let stat = head.lines().find_map(|l| l.strip_prefix("x-docker-container-path-stat: ").or_else(|| l.strip_prefix("X-Docker-Container-Path-Stat: "))).unwrap();
    let o = std::process::Command::new("base64").arg("-d").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        o.stdin.as_ref().unwrap().write_all(stat.trim().as_bytes()).unwrap();
    }
    let json = String::from_utf8(o.wait_with_output().unwrap().stdout).unwrap();
    assert!(json.starts_with(r#"{"linkTarget":"","mode":420,"mtime":""#) && json.contains(r#""name":"out.txt","size":4}"#), "{json}");
    let (status, _, _) = raw(&d, "PUT", "/containers/run/archive?path=/tmp", &tar_of(&[("owned", b"x")]));
    assert_eq!(status, 200);
    assert_eq!(d.ok(&["exec", "run", "sh", "-c", "stat -c '%u:%g %a' /tmp/owned"]).trim(), "1234:5678 640");
    let (status, _, _) = raw(&d, "PUT", "/containers/run/archive?path=/tmp&copyUIDGID=1", &tar_of(&[("owned2", b"x")]));
    assert_eq!(status, 200);
    assert_eq!(d.ok(&["exec", "run", "sh", "-c", "stat -c %u:%g /tmp/owned2"]).trim(), "0:0");
    // noOverwriteDirNonDir: a file does not replace a directory.
    let (status, _, body) = raw(&d, "PUT", "/containers/run/archive?path=/tmp&noOverwriteDirNonDir=true", &tar_of(&[("tree", b"x")]));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = raw(&d, "PUT", "/containers/run/archive?path=/tmp", &tar_of(&[("../../escape", b"x")]));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    d.ok(&["rm", "-f", "run", "ro", "new"]);
}

#[test]
fn cp_never_leaves_the_container_root() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    // A host directory with a file; the container makes symlinks to it
    // (absolute, and with enough `..` to climb out of any root).
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host secret\n").unwrap();
    let hp = host.path().to_str().unwrap().to_string();
    let script = format!("ln -s {hp} /abs && ln -s ../../../../../../../../{hp} /rel && ln -s {hp}/secret /file && sleep 100");
    d.ok(&["run", "-d", "--name", "cc", "bb", "sh", "-c", &script]);
    assert!(common::eventually(std::time::Duration::from_secs(10), || d.docker(&["exec", "cc", "sh", "-c", "test -L /file"]).status.success()));
    let out = tempfile::tempdir().unwrap();
    for src in ["cc:/abs/secret", "cc:/rel/secret", "cc:/abs/.", "cc:/rel/."] {
        let o = d.docker(&["cp", src, out.path().to_str().unwrap()]);
        assert!(!o.status.success() && text(&o).contains("Could not find the file"), "{src}: {}", text(&o));
    }
    let o = d.docker(&["cp", "-L", "cc:/file", out.path().join("f").to_str().unwrap()]);
    assert!(!o.status.success(), "the link's target is looked up in the container: {}", text(&o));
    // Writing through them: nothing lands on the host.
    std::fs::write(out.path().join("in"), "x").unwrap();
    for dst in ["cc:/abs/", "cc:/rel/"] {
        let o = d.docker(&["cp", out.path().join("in").to_str().unwrap(), dst]);
        assert!(!o.status.success(), "{dst}: {}", text(&o));
    }
    // A tar whose symlink entry points out, then a file through it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "out", host.path()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, "out/planted", &b"evil"[..]).unwrap();
    let (status, _, _) = raw(&d, "PUT", "/containers/cc/archive?path=/tmp", &b.into_inner().unwrap());
    assert_ne!(status, 200);
    let on_host: Vec<_> = std::fs::read_dir(host.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(on_host, vec![std::ffi::OsString::from("secret")], "nothing was written on the host");
    // A FIFO in the container is archived as a header, never read (no hang).
    d.ok(&["exec", "cc", "sh", "-c", "mkfifo /fifo"]);
    let o = d.docker(&["cp", "cc:/fifo", out.path().join("fifo").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    d.ok(&["rm", "-f", "cc"]);
}

#[test]
fn a_restart_cleans_up_after_interrupted_copies_and_commits() {
    let mut d = Daemon::start("{}");
    d.import_busybox("bb");
    let ctr = |d: &Daemon, args: &[&str]| {
        let o = std::process::Command::new("ctr").arg("--address").arg(d.path("exec/containerd/containerd.sock")).args(["-n", "berth"]).args(args).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // What a daemon killed during a commit and a copy leaves: their
    // leases, and a container's snapshot still mounted on a scratch
    // directory (here a bind mount of a directory with a file).
    ctr(&d, &["leases", "create", "--id", "berth-commit-interrupted"]);
    ctr(&d, &["leases", "create", "--id", "berth-cp-interrupted"]);
    ctr(&d, &["leases", "create", "--id", "someone-elses"]);
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("container-file"), "x").unwrap();
    let mount = d.path("data/tmp/mount-interrupted");
    std::fs::create_dir_all(&mount).unwrap();
    let st = std::process::Command::new("mount").arg("--bind").arg(source.path()).arg(&mount).status().unwrap();
    assert!(st.success(), "mount --bind (needs root)");
    d.stop(9);
    d.spawn();
    assert!(!mount.exists(), "the mount point is unmounted and removed");
    assert!(source.path().join("container-file").exists(), "what was mounted is untouched");
    let leases = ctr(&d, &["leases", "ls"]);
    assert!(!leases.contains("berth-commit-interrupted") && !leases.contains("berth-cp-interrupted"), "{leases}");
    assert!(leases.contains("someone-elses"), "{leases}");
}

/// gVisor's processes run in the sandbox, not in the container's root
/// filesystem: `docker cp` out of a running gVisor container goes through
/// the root filesystem the shim mounted and sees what the container wrote;
/// into it is refused while it runs (the sandbox caches its files).
#[test]
fn cp_and_diff_of_a_running_gvisor_container() {
    let skip = std::env::var("BERTH_TEST_SKIP_RUNTIMES").unwrap_or_default();
    if skip.split(',').any(|s| s.trim() == "gvisor") {
        eprintln!("note: gvisor skipped: named in BERTH_TEST_SKIP_RUNTIMES");
        return;
    }
    assert!(
        std::path::Path::new("/usr/bin/runsc").exists(),
        "runsc is not installed: run scripts/install-runtimes (as root), or name gvisor in BERTH_TEST_SKIP_RUNTIMES to test without it"
    );
    let d = Daemon::start(r#"{"runtimes":{"gvisor":{"path":"/usr/bin/runsc","runtimeArgs":["--platform=ptrace","--network=none","--oci-seccomp"]}}}"#);
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--runtime", "gvisor", "--network", "none", "--name", "gv", "bb", "sh", "-c", "echo made > /made; sleep 100"]);
    assert!(common::eventually(std::time::Duration::from_secs(20), || d.docker(&["exec", "gv", "cat", "/made"]).status.success()));
    let out = tempfile::tempdir().unwrap();
    d.ok(&["cp", "gv:/made", out.path().join("made").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.path().join("made")).unwrap(), "made\n");
    assert!(d.ok(&["diff", "gv"]).contains("A /made"));
    // Into it while it runs: the sandbox would not see it, so refused;
    // stopped, it works.
    std::fs::write(out.path().join("in"), "in\n").unwrap();
    let o = d.docker(&["cp", out.path().join("in").to_str().unwrap(), "gv:/tmp/in"]);
    assert!(!o.status.success() && text(&o).contains("runs it in a sandbox (gVisor)"), "{}", text(&o));
    d.ok(&["rm", "-f", "gv"]);
    d.ok(&["run", "--runtime", "gvisor", "--network", "none", "--name", "gv2", "bb", "sh", "-c", "cat /tmp/in 2>/dev/null; true"]);
    d.ok(&["cp", out.path().join("in").to_str().unwrap(), "gv2:/tmp/in"]);
    assert_eq!(d.ok(&["start", "-a", "gv2"]), "in\n");
    d.ok(&["rm", "-f", "gv2"]);
}
