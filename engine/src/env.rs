//! Environment variables the way Docker merges them, in linear time (a
//! create may carry a hundred thousand entries).
//!
//! Two steps, as dockerd 20.10 behaves (checked against it):
//! - at create, [`merge_image_env`]: the container's entries exactly as
//!   given, then the image's entries whose key the container does not name
//!   (an entry without `=` names its key too). This is `Config.Env`.
//! - at start or exec, [`process_env`]: `PATH` (default), `HOSTNAME` and,
//!   with a TTY, `TERM=xterm`, then `Config.Env` in order. A `KEY=value`
//!   for a key seen before replaces its value in the place where the key
//!   first appeared (`PATH=…` replaces the default in first place); an
//!   entry without `=` removes one of those defaults (`HOSTNAME` unsets
//!   the hostname variable) and is otherwise ignored; it never reaches the
//!   process.

use std::collections::{HashMap, HashSet};

/// Docker's `PATH` when `Config.Env` sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The key of an entry: the text before the first `=`, or all of it.
pub fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// `Config.Env` of a new container: its own entries, then the image's
/// entries for keys it does not name.
pub fn merge_image_env(container: &[String], image: &[String]) -> Vec<String> {
    if container.is_empty() {
        return image.to_vec();
    }
    let named: HashSet<&str> = container.iter().map(|e| key(e)).collect();
    container.iter().chain(image.iter().filter(|e| !named.contains(key(e)))).cloned().collect()
}

/// The environment of a container's (or an exec's) process, from its
/// `Config.Env` (and an exec's own entries after it).
pub fn process_env<'a>(entries: impl IntoIterator<Item = &'a String>, hostname: &str, tty: bool) -> Vec<String> {
    let mut slots: Vec<Option<String>> = vec![Some(DEFAULT_PATH.to_string()), Some(format!("HOSTNAME={hostname}"))];
    if tty {
        slots.push(Some("TERM=xterm".to_string()));
    }
    let defaults = slots.len();
    let mut place: HashMap<String, usize> = slots.iter().flatten().map(|e| key(e).to_string()).zip(0..).collect();
    for e in entries {
        match e.split_once('=') {
            Some((k, _)) => match place.get(k) {
                Some(&i) => slots[i] = Some(e.clone()),
                None => {
                    place.insert(k.to_string(), slots.len());
                    slots.push(Some(e.clone()));
                }
            },
            None => {
                if let Some(&i) = place.get(e.as_str()).filter(|&&i| i < defaults) {
                    slots[i] = None;
                }
            }
        }
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn create_keeps_the_containers_entries_then_the_images_others() {
        // dockerd: `-e A=1 -e Y=u` on an image with PATH, X, Y.
        let image = v(&["PATH=/bin", "X=img", "Y=img2"]);
        assert_eq!(merge_image_env(&v(&["A=1", "Y=u"]), &image), v(&["A=1", "Y=u", "PATH=/bin", "X=img"]));
        // Duplicates and entries without `=` stay as given; `X` hides the image's X.
        assert_eq!(merge_image_env(&v(&["X", "A=1", "A=3"]), &image), v(&["X", "A=1", "A=3", "PATH=/bin", "Y=img2"]));
        assert_eq!(merge_image_env(&[], &image), image);
    }

    #[test]
    fn process_env_follows_dockerd() {
        // Config.Env ["A=1","A","B","B=2","HOSTNAME","C=1","D=1","C=2","X=u","X","PATH=/bin","Y=img2"]
        // ran as PATH=/bin A=1 B=2 C=2 D=1 X=u Y=img2 under dockerd 20.10.
        let cfg = v(&["A=1", "A", "B", "B=2", "HOSTNAME", "C=1", "D=1", "C=2", "X=u", "X", "PATH=/bin", "Y=img2"]);
        assert_eq!(process_env(&cfg, "h", false), v(&["PATH=/bin", "A=1", "B=2", "C=2", "D=1", "X=u", "Y=img2"]));
        // Defaults first; TERM with a TTY, replaced in place.
        assert_eq!(process_env(&v(&["D=1"]), "h", true), v(&[DEFAULT_PATH, "HOSTNAME=h", "TERM=xterm", "D=1"]));
        assert_eq!(process_env(&v(&["TERM=dumb", "D=1", "PATH=/x"]), "h", true), v(&["PATH=/x", "HOSTNAME=h", "TERM=dumb", "D=1"]));
        // A removed default comes back in its place when set again.
        assert_eq!(process_env(&v(&["HOSTNAME", "A=1", "HOSTNAME=n"]), "h", false), v(&[DEFAULT_PATH, "HOSTNAME=n", "A=1"]));
        assert_eq!(process_env(&v(&["PATH"]), "h", false), v(&["HOSTNAME=h"]));
    }

    #[test]
    fn large_environments_merge_in_linear_time() {
        // 120k entries, every other key set twice: a quadratic merge takes
        // minutes here, a linear one milliseconds.
        const N: usize = 120_000;
        let image: Vec<String> = (0..N).map(|i| format!("I{i}=img")).collect();
        let mut container: Vec<String> = (0..N).map(|i| format!("K{i}=a")).collect();
        container.extend((0..N).step_by(2).map(|i| format!("K{i}=b")));
        container.extend((0..N).step_by(3).map(|i| format!("I{i}")));
        let merged = merge_image_env(&container, &image);
        assert_eq!(merged.len(), container.len() + N - N.div_ceil(3));
        let env = process_env(&merged, "h", false);
        let mut want = vec![DEFAULT_PATH.to_string(), "HOSTNAME=h".to_string()];
        want.extend((0..N).map(|i| format!("K{i}={}", if i % 2 == 0 { "b" } else { "a" })));
        want.extend((0..N).filter(|i| i % 3 != 0).map(|i| format!("I{i}=img")));
        assert_eq!(env, want);
    }
}
