//! `docker import --change`: Dockerfile instructions applied to an image
//! config. Pure: no I/O, every input gives a config or an error.

use std::collections::{BTreeMap, HashMap};

use berth_containerd::ImageConfig;

use crate::error::{EngineError, Result};

/// Instructions `docker import --change` accepts (as dockerd).
const CHANGE_INSTRUCTIONS: &[&str] = &["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];

/// Applies Dockerfile instructions to `cfg`: `CMD`, `ENTRYPOINT` (JSON array
/// or shell form → `["/bin/sh","-c",…]`), `ENV`, `LABEL` (`k=v …` or the
/// legacy `k v`), `WORKDIR`, `USER`, `EXPOSE`, `VOLUME`, `STOPSIGNAL`.
///
/// Linear in the size of `changes` (a client sends them in one query
/// string): `ENV` pairs are gathered and set once at the end, `WORKDIR`
/// extends the path in place.
pub fn apply_changes(cfg: &mut ImageConfig, changes: &[String]) -> Result<()> {
    let mut env_pairs: Vec<(String, String)> = Vec::new();
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (instr, rest) = match change.split_once(|c: char| c.is_whitespace()) {
            Some((i, r)) => (i.to_ascii_uppercase(), r.trim()),
            None => (change.to_ascii_uppercase(), ""),
        };
        let bad = |why: &str| EngineError::InvalidParameter(format!("invalid change {change:?}: {why}"));
        match instr.as_str() {
            "CMD" => cfg.cmd = Some(command_form(rest)),
            "ENTRYPOINT" => cfg.entrypoint = Some(command_form(rest)),
            "ENV" => env_pairs.extend(key_values(rest).map_err(|e| bad(&e))?),
            "LABEL" => {
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in key_values(rest).map_err(|e| bad(&e))? {
                    labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                if rest.is_empty() {
                    return Err(bad("WORKDIR needs a path"));
                }
                let dir = unquote(rest);
                let wd = cfg.working_dir.get_or_insert_with(String::new);
                if dir.starts_with('/') {
                    *wd = dir;
                } else {
                    // Relative: below the previous one (or `/`).
                    wd.truncate(wd.trim_end_matches('/').len());
                    wd.push('/');
                    wd.push_str(&dir);
                }
            }
            "USER" => {
                if rest.is_empty() {
                    return Err(bad("USER needs a user"));
                }
                cfg.user = Some(unquote(rest));
            }
            "STOPSIGNAL" => {
                if rest.is_empty() {
                    return Err(bad("STOPSIGNAL needs a signal"));
                }
                cfg.stop_signal = Some(unquote(rest));
            }
            "EXPOSE" => {
                let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in split_words(rest).map_err(|e| bad(&e))? {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let valid = !num.is_empty()
                        && num.split('-').all(|n| n.parse::<u16>().is_ok())
                        && matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
                    if !valid {
                        return Err(bad(&format!("invalid port {p:?}")));
                    }
                    ports.insert(format!("{num}/{}", proto.to_ascii_lowercase()), serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
                let list = match json_array(rest) {
                    Some(l) => l,
                    None => split_words(rest).map_err(|e| bad(&e))?,
                };
                for v in list {
                    vols.insert(v, serde_json::json!({}));
                }
            }
            other => {
                return Err(EngineError::InvalidParameter(format!(
                    "{other} is not a valid change command (allowed: {})",
                    CHANGE_INSTRUCTIONS.join(", ")
                )))
            }
        }
    }
    if !env_pairs.is_empty() {
        set_env(cfg.env.get_or_insert_with(Vec::new), env_pairs);
    }
    Ok(())
}

/// Sets `pairs` (in order) in `env` as successive `ENV` lines do: a key
/// set again leaves its old place and goes to the end. Keys never hold
/// `=`. Linear.
fn set_env(env: &mut Vec<String>, pairs: Vec<(String, String)>) {
    let key_of = |e: &str| e.split_once('=').map(|(k, _)| k.to_owned()).unwrap_or_else(|| e.to_owned());
    let last: HashMap<&str, usize> = pairs.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
    env.retain(|e| !last.contains_key(key_of(e).as_str()));
    for (i, (k, v)) in pairs.iter().enumerate() {
        if last[k.as_str()] == i {
            env.push(format!("{k}={v}"));
        }
    }
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// JSON-array (exec) form, or shell form wrapped in `/bin/sh -c`.
fn command_form(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn unquote(s: &str) -> String {
    split_words(s).ok().filter(|w| w.len() == 1).map(|mut w| w.remove(0)).unwrap_or_else(|| s.to_string())
}

/// Splits on unquoted whitespace; handles `"…"`, `'…'` and backslashes.
fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unterminated quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `k=v k2="v 2"`, or the legacy single `k the value`.
fn key_values(rest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    if words.is_empty() {
        return Err("needs at least one key=value".into());
    }
    if !words[0].contains('=') {
        let key = words[0].clone();
        let value = rest.trim_start()[rest.trim_start().find(char::is_whitespace).unwrap_or(rest.trim_start().len())..].trim().to_string();
        if value.is_empty() {
            return Err(format!("{key} needs a value (use {key}=value)"));
        }
        return Ok(vec![(key, unquote(&value))]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not key=value")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[&str]) -> Result<ImageConfig> {
        let mut cfg = ImageConfig::default();
        apply_changes(&mut cfg, &list.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(cfg)
    }

    #[test]
    fn changes_like_dockerfile_instructions() {
        let c = changes(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/run --flag",
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "env LEGACY some value",
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "LABEL a=b \"c d\"=e",
            "EXPOSE 80 53/udp",
            r#"VOLUME ["/data"]"#,
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".into(), "-c".into(), "echo hi".into()]));
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".into(), "-c".into(), "/bin/run --flag".into()]));
        assert_eq!(c.env, Some(vec!["B=two words".into(), "A=3".into(), "LEGACY=some value".into()]));
        assert_eq!(c.working_dir.as_deref(), Some("/app/sub"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let labels = c.labels.unwrap();
        assert_eq!((labels["a"].as_str(), labels["c d"].as_str()), ("b", "e"));
        assert_eq!(c.exposed_ports.unwrap().keys().cloned().collect::<Vec<_>>(), vec!["53/udp".to_string(), "80/tcp".to_string()]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        // Shell form of CMD.
        assert_eq!(changes(&["CMD echo $HOME"]).unwrap().cmd, Some(vec!["/bin/sh".into(), "-c".into(), "echo $HOME".into()]));
    }

    #[test]
    fn env_keeps_the_order_of_last_setting() {
        let mut cfg = ImageConfig { env: Some(vec!["PATH=/bin".into(), "A=0".into(), "BARE".into(), "AB=x".into()]), ..Default::default() };
        let lines: Vec<String> = ["ENV A=1 B=2", "ENV BARE=now", "ENV A=3", "WORKDIR a//", "WORKDIR b", "WORKDIR /abs"].map(String::from).to_vec();
        apply_changes(&mut cfg, &lines).unwrap();
        assert_eq!(cfg.env.unwrap(), vec!["PATH=/bin", "AB=x", "B=2", "BARE=now", "A=3"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/abs"));
    }

    #[test]
    fn many_changes_take_linear_time() {
        // What fits in one query string: tens of thousands of pairs or lines.
        let line = format!("ENV {}", (0..60_000).map(|i| format!("K{}=v", i % 30_000)).collect::<Vec<_>>().join(" "));
        let lines: Vec<String> = (0..30_000).map(|i| format!("ENV L{i}=v")).chain((0..30_000).map(|_| "WORKDIR abc".to_string())).collect();
        let start = std::time::Instant::now();
        assert_eq!(changes(&[&line]).unwrap().env.unwrap().len(), 30_000);
        let mut cfg = ImageConfig::default();
        apply_changes(&mut cfg, &lines).unwrap();
        assert_eq!(cfg.env.unwrap().len(), 30_000);
        assert_eq!(cfg.working_dir.unwrap().len(), 4 * 30_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(3), "{:?}", start.elapsed());
    }

    #[test]
    fn bad_changes_are_400s() {
        for bad in ["RUN echo hi", "FROM scratch", "ENV", "EXPOSE eighty", "LABEL \"unterminated=1", "USER"] {
            let e = changes(&[bad]).unwrap_err();
            assert!(matches!(e, EngineError::InvalidParameter(_)), "{bad}: {e:?}");
        }
        assert!(changes(&["RUN x"]).unwrap_err().to_string().starts_with("RUN is not a valid change command"));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// A change line: an instruction (any case, sometimes unknown) and
        /// text rich in what the parsers treat specially.
        fn line() -> impl Strategy<Value = String> {
            let instr = prop::sample::select(vec![
                "CMD", "cmd", "ENTRYPOINT", "ENV", "env", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "RUN", "", "Env",
            ]);
            (instr, "[ \t=\"'\\\\\\[\\],/a-zA-Z0-9:\\-é]{0,60}").prop_map(|(i, rest)| format!("{i} {rest}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Any lines: a config or a 400, never a panic or another kind.
            #[test]
            fn any_lines(lines in prop::collection::vec(line(), 0..6), raw in prop::collection::vec(any::<String>(), 0..3)) {
                for input in [&lines, &raw] {
                    let mut cfg = ImageConfig::default();
                    match apply_changes(&mut cfg, input) {
                        Ok(()) => {}
                        Err(EngineError::InvalidParameter(_)) => {}
                        Err(other) => prop_assert!(false, "{other:?}"),
                    }
                }
            }

            /// `ENV k="v"` and `LABEL "k"="v"` store exactly k and v.
            #[test]
            fn env_and_labels_round_trip(k in "[A-Za-z_][A-Za-z0-9_]{0,10}", v in "[^\"\\\\]{0,30}") {
                let mut cfg = ImageConfig::default();
                apply_changes(&mut cfg, &[format!("ENV {k}=\"{v}\""), format!("LABEL \"{k}\"=\"{v}\"")]).unwrap();
                prop_assert_eq!(cfg.env.unwrap(), vec![format!("{k}={v}")]);
                prop_assert_eq!(cfg.labels.unwrap().get(&k).cloned(), Some(v));
            }
        }
    }
}
