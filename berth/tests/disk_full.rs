//! Disk full on the data root (a small tmpfs): create fails with a clear
//! error, existing records stay intact, and berth recovers when space returns.

mod common;

use std::process::Command;

use common::{text, Daemon};

struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn create_fails_cleanly_on_a_full_data_root_and_recovers() {
    let mut d = Daemon::start("{}");
    d.stop(15);
    // Put the data root on a 64 MiB tmpfs.
    let data = d.path("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"]).arg(&data).status().unwrap();
    assert!(st.success(), "cannot mount a tmpfs on {} (the test needs root)", data.display());
    let _m = Mount(data.clone());
    d.spawn();
    d.import_busybox("bb");
    d.ok(&["create", "--name", "before", "bb", "true"]);

    // Fill the disk.
    let fill = data.join("fill");
    let _ = Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", fill.display())).args(["bs=1M", "count=100"]).output();
    let o = d.docker(&["create", "--name", "during", "bb", "true"]);
    assert!(!o.status.success(), "create on a full disk must fail: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no space left on device"), "{}", text(&o));
    // What existed is intact, and nothing half-created remains.
    assert_eq!(d.ok(&["inspect", "--format", "{{.Name}}", "before"]), "/before\n");
    assert!(!d.ok(&["ps", "-a", "--format", "{{.Names}}"]).contains("during"));

    // Space returns: berth works again, without a restart.
    std::fs::remove_file(&fill).unwrap();
    d.ok(&["create", "--name", "after", "bb", "true"]);
    let o = d.docker(&["run", "--rm", "bb", "echo", "recovered"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "recovered\n", "{}", text(&o));
    d.ok(&["rm", "-f", "before", "after"]);
    drop(d); // stop the daemon before the tmpfs is unmounted
}
