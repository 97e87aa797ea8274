//! The image endpoints end to end: a real `berth daemon` driven by the real
//! docker CLI — import (file and stdin, `--change`), images, inspect, tag,
//! rmi (and the in-use conflict), save/load round trips (multi-layer, two
//! tags, untagged, piped), prune, and the refused pull of `docker run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{busybox_tar, text, Daemon};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sha256_file(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(o.status.success());
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

fn tar_dir(src: &Path, out: &Path) {
    let st = Command::new("tar").arg("-C").arg(src).arg("-cf").arg(out).arg(".").status().unwrap();
    assert!(st.success());
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A `docker save`-style archive built by hand: two layers (busybox, then
/// `/second.txt`), two tags. Returns (archive, image id).
fn two_layer_archive(dir: &Path, tags: &[&str]) -> (PathBuf, String) {
    let work = dir.join("arch");
    std::fs::create_dir_all(work.join("l1")).unwrap();
    std::fs::create_dir_all(work.join("l2")).unwrap();
    std::fs::rename(busybox_tar(dir), work.join("l1/layer.tar")).unwrap();
    let top = dir.join("top");
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("second.txt"), "from layer two\n").unwrap();
    tar_dir(&top, &work.join("l2/layer.tar"));
    let d1 = sha256_file(&work.join("l1/layer.tar"));
    let d2 = sha256_file(&work.join("l2/layer.tar"));
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": { "Env": ["PATH=/bin"], "Cmd": ["cat", "/second.txt"] },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{d1}"), format!("sha256:{d2}")] },
        "history": [{ "created": "2026-01-02T03:04:05Z", "created_by": "layer one" }, { "created": "2026-01-02T03:04:05Z", "created_by": "layer two" }],
    });
    let bytes = serde_json::to_vec(&config).unwrap();
    let cfg_path = work.join("cfg.json");
    std::fs::write(&cfg_path, &bytes).unwrap();
    let id = sha256_file(&cfg_path);
    let manifest = serde_json::json!([{ "Config": "cfg.json", "RepoTags": tags, "Layers": ["l1/layer.tar", "l2/layer.tar"] }]);
    std::fs::write(work.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.join("two-layers.tar");
    tar_dir(&work, &archive);
    (archive, format!("sha256:{id}"))
}

#[test]
fn import_list_inspect_tag_rmi_prune() {
    let d = Daemon::start("{}");
    let tar = busybox_tar(d.dir.path());
    let tar_s = tar.to_str().unwrap();

    // Import from a file, with changes.
    let id = d.ok(&["import", "--change", r#"CMD ["sh"]"#, "--change", "ENV A=1", "--message", "first import", tar_s, "imp:v1"]);
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // Import from stdin, shell-form CMD.
    let o = d.docker_in(&["import", "--change", "CMD echo hi", "-", "imp2"], &std::fs::read(&tar).unwrap());
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).trim().starts_with("sha256:"), "{}", text(&o));

    // A gzip-compressed tarball is sniffed and unpacked.
    let gz = Command::new("gzip").arg("-c").arg(&tar).output().unwrap();
    assert!(gz.status.success());
    let o = d.docker_in(&["import", "--change", "ENV PATH=/bin", "-", "gz"], &gz.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.ok(&["run", "--rm", "gz", "cat", "/etc/passwd"]), "root:x:0:0:root:/root:/bin/sh\n");
    d.ok(&["rmi", "gz"]);

    // docker images: table and --format.
    let table = d.ok(&["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("imp ") && l.contains(" v1 ") && l.contains(&id[7..19])), "{table}");
    let names = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, vec!["imp2:latest", "imp:v1"]);
    assert_eq!(d.ok(&["images", "-q", "--no-trunc", "imp"]).trim(), id);

    // Inspect.
    assert_eq!(d.ok(&["image", "inspect", "--format", "{{.Config.Cmd}}", "imp:v1"]).trim(), "[sh]");
    assert_eq!(d.ok(&["image", "inspect", "--format", "{{.Config.Env}} {{.Comment}} {{.Id}} {{.RootFS.Type}} {{.Os}}", "imp:v1"]).trim(), format!("[A=1] first import {id} layers linux"));
    assert_eq!(d.ok(&["image", "inspect", "--format", "{{json .Config.Cmd}}", "imp2"]).trim(), r#"["/bin/sh","-c","echo hi"]"#);
    // By id prefix, through the generic inspect.
    assert_eq!(d.ok(&["inspect", "--format", "{{.RepoTags}}", &id[7..19]]).trim(), "[imp:v1]");
    let o = d.docker(&["inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("Error: No such object: nosuch"), "{}", text(&o));

    // A body that is not a tar: 500 with what was wrong.
    let o = d.docker_in(&["import", "-", "junk"], b"this is not a tar archive\n");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("Error processing tar file") && stderr(&o).contains("not a tar archive"), "{}", text(&o));

    // Tag, then untag one of two names.
    d.ok(&["tag", "imp:v1", "imp:v2"]);
    d.ok(&["tag", &id, "other/name"]);
    assert_eq!(d.ok(&["images", "--format", "{{.Tag}}", "imp"]).lines().count(), 2);
    assert_eq!(d.ok(&["images", "-q", "other/name"]).trim(), &id[7..19]);
    assert_eq!(d.ok(&["rmi", "imp:v2"]).trim(), "Untagged: imp:v2");
    assert_eq!(d.ok(&["rmi", "other/name"]).trim(), "Untagged: other/name:latest");
    let o = d.docker(&["tag", "nosuch", "x"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("No such image"), "{}", text(&o));

    // In use by a container: refused without force.
    let cid = d.ok(&["create", "imp:v1", "true"]).trim().to_string();
    let o = d.docker(&["rmi", "imp:v1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let want = format!(
        "conflict: unable to remove repository reference \"imp:v1\" (must force) - container {} is using its referenced image {}",
        &cid[..12],
        &id[7..19]
    );
    assert!(stderr(&o).contains(&want), "{}", text(&o));
    // prune -a removes every unused image, but not one a container uses.
    let out = d.ok(&["image", "prune", "-af"]);
    assert!(out.contains("untagged: imp2:latest") && !out.contains(&id), "{out}");
    assert_eq!(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).trim(), "imp:v1");
    d.ok(&["rm", &cid]);
    let out = d.ok(&["rmi", "imp:v1"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["Untagged: imp:v1".to_string(), format!("Deleted: {id}")], "{out}");
    let o = d.docker(&["rmi", "imp:v1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No such image: imp:v1"), "{}", text(&o));

    // Prune: only the dangling image goes by default.
    d.ok(&["import", tar_s, "keep"]);
    let dangling = d.ok(&["import", "--change", "ENV X=1", tar_s]).trim().to_string();
    assert_eq!(d.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]).trim(), dangling);
    assert!(d.ok(&["images"]).contains("<none>"));
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert_eq!(d.ok(&["images", "-q", "--filter", "dangling=true"]).trim(), "");
    assert_eq!(d.ok(&["images", "--format", "{{.Repository}}"]).trim(), "keep");

    // docker run of a missing image: the pull is refused clearly, rc 125.
    let o = d.docker(&["run", "--rm", "nosuchimage"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    let e = stderr(&o);
    assert!(e.contains("Unable to find image 'nosuchimage:latest' locally"), "{e}");
    assert!(e.contains("cannot pull images") && e.contains("docker load") && e.contains("docker import"), "{e}");
}

#[test]
fn save_load_round_trips() {
    let d = Daemon::start("{}");
    let dir = d.dir.path();

    // A hand-made two-layer archive with two tags loads with its id.
    let (archive, id) = two_layer_archive(dir, &["ml:1", "ml:2"]);
    let out = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["Loaded image: ml:1", "Loaded image: ml:2"], "{out}");
    assert_eq!(d.ok(&["image", "inspect", "--format", "{{.Id}} {{len .RootFS.Layers}}", "ml:2"]).trim(), format!("{id} 2"));
    // Both layers are unpacked: a container sees the top layer's file and the base's shell.
    assert_eq!(d.ok(&["run", "--rm", "ml:1"]), "from layer two\n");
    let hist = d.ok(&["history", "--format", "{{.CreatedBy}}", "ml:1"]);
    assert_eq!(hist.lines().collect::<Vec<_>>(), vec!["layer two", "layer one"], "{hist}");

    // docker save of two tags → rmi → docker load: same id, same tags.
    let saved = dir.join("saved.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "ml:1", "ml:2"]);
    let listing = Command::new("tar").arg("-tf").arg(&saved).output().unwrap();
    let listing = stdout(&listing);
    assert!(listing.lines().any(|l| l == "manifest.json") && listing.lines().any(|l| l == "repositories"), "{listing}");
    assert!(listing.contains(&format!("{}.json", &id[7..])), "{listing}");
    let out = d.ok(&["rmi", "ml:1", "ml:2"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");
    let o = d.docker_in(&["load"], &std::fs::read(&saved).unwrap());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), vec!["Loaded image: ml:1", "Loaded image: ml:2"], "{}", text(&o));
    let mut tags: Vec<String> = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]).lines().map(str::to_owned).collect();
    tags.sort();
    assert_eq!(tags, vec![format!("ml:1 {}", &id[7..19]), format!("ml:2 {}", &id[7..19])]);

    // Piped: docker save IMG | docker load.
    d.ok(&["tag", "ml:1", "piped:x"]);
    let mut save = d.docker_cmd(&["save", "piped:x"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let save_out = save.stdout.take().unwrap();
    let load = d.docker_cmd(&["load"]).stdin(save_out).output().unwrap();
    assert!(save.wait().unwrap().success());
    assert!(load.status.success(), "{}", text(&load));
    assert_eq!(stdout(&load).trim(), "Loaded image: piped:x");
    assert_eq!(d.ok(&["image", "inspect", "--format", "{{.Id}}", "piped:x"]).trim(), id);

    // Saved by id: no tags in the archive, loads as "Loaded image ID".
    let by_id = dir.join("by-id.tar");
    d.ok(&["save", "-o", by_id.to_str().unwrap(), &id[7..19]]);
    d.ok(&["rmi", "-f", &id]);
    let out = d.ok(&["load", "-i", by_id.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image ID: {id}"));
    assert_eq!(d.ok(&["images", "-q", "--filter", "dangling=true", "--no-trunc"]).trim(), id);

    // Garbage: an in-stream error, rc 1.
    let o = d.docker_in(&["load"], b"garbage, not a tar");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("not a tar archive"), "{}", text(&o));
    // Saving a missing image is a 404 before any byte.
    let o = d.docker(&["save", "-o", dir.join("none.tar").to_str().unwrap(), "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("No such image"), "{}", text(&o));
}
