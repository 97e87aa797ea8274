//! `berth runtimes export`: the output parses with real TOML and YAML
//! parsers, and every field matches the runtime table.

mod common;

use berth_config::export::{containerd_toml, handler_name, runtimeclass_yaml};
use berth_config::ConfigStore;
use common::Env;
use serde::Deserialize;

const CONFIG: &str = r#"{"default-runtime":"crun","runtimes":{
    "crun":{"path":"/bin/true"},
    "gVisor_ptrace":{"path":"/bin/true","runtimeArgs":["--platform=ptrace","--network=none"]},
    "strict":{"runtimeType":"io.containerd.runc.v2","options":{"BinaryName":"/bin/true","IoUid":1000,"SystemdCgroup":false}},
    "kata":{"runtimeType":"io.containerd.kata.v2","options":{"ConfigPath":"/etc/kata/config \"x\".toml"}}
}}"#;

#[test]
fn containerd_toml_parses_and_matches() {
    let env = Env::new();
    env.write(CONFIG);
    let snap = ConfigStore::open(env.flags()).unwrap().snapshot();
    let text = containerd_toml(&snap);
    let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
    assert_eq!(v["version"].as_integer(), Some(2));
    let c = &v["plugins"]["io.containerd.grpc.v1.cri"]["containerd"];
    assert_eq!(c["default_runtime_name"].as_str(), Some("crun"));
    let rts = c["runtimes"].as_table().unwrap();
    let mut names: Vec<&String> = rts.keys().collect();
    names.sort();
    assert_eq!(names, ["crun", "gvisor-ptrace", "kata", "runc", "strict"]);
    for (name, rt) in &snap.runtimes.runtimes {
        if name == "io.containerd.runc.v2" {
            assert!(!rts.contains_key("io-containerd-runc-v2"), "the stock alias is not exported");
            continue;
        }
        let t = &rts[&handler_name(name)];
        assert_eq!(t["runtime_type"].as_str(), Some(rt.shim.as_str()), "{name}");
        match &rt.options {
            berth_config::ShimOptions::Runc(o) => {
                assert_eq!(t["options"]["BinaryName"].as_str(), Some(o.binary_name.as_str()), "{name}");
                assert_eq!(t["options"]["SystemdCgroup"].as_bool(), Some(false));
                assert!(t["options"].get("Root").is_none(), "berth's state root is not exported");
            }
            berth_config::ShimOptions::Generic(g) => assert_eq!(t["options"]["ConfigPath"].as_str(), Some(g.config_path.as_str())),
            berth_config::ShimOptions::None => assert!(t.get("options").is_none()),
        }
    }
    assert_eq!(rts["strict"]["options"]["IoUid"].as_integer(), Some(1000));
    // The wrapped runtime says how to install its wrapper.
    let w = snap.runtimes.runtimes["gVisor_ptrace"].wrapper.as_ref().unwrap();
    assert!(text.contains(&format!("# install it at {}", w.path.display())));
    assert!(text.contains("#   exec '/bin/true' '--platform=ptrace' '--network=none' \"$@\""));
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuntimeClass {
    api_version: String,
    kind: String,
    metadata: Metadata,
    handler: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

#[test]
fn runtimeclass_yaml_parses_and_matches() {
    let env = Env::new();
    env.write(CONFIG);
    let snap = ConfigStore::open(env.flags()).unwrap().snapshot();
    let text = runtimeclass_yaml(&snap);
    let docs: Vec<RuntimeClass> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| RuntimeClass::deserialize(d).unwrap_or_else(|e| panic!("bad YAML document: {e}\n{text}")))
        .collect();
    assert_eq!(docs.len(), 5);
    for d in &docs {
        assert_eq!((d.api_version.as_str(), d.kind.as_str()), ("node.k8s.io/v1", "RuntimeClass"));
        assert_eq!(d.metadata.name, d.handler);
        let original = &d.metadata.annotations["berth.io/runtime-name"];
        assert_eq!(handler_name(original), d.handler);
        let rt = &snap.runtimes.runtimes[original];
        if let Some(b) = &rt.binary {
            assert_eq!(d.metadata.annotations["berth.io/binary"], b.display().to_string());
        }
        assert_eq!(d.metadata.labels["berth.io/runtime"], d.handler);
        assert!(d.handler.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
    assert!(docs.iter().any(|d| d.handler == "gvisor-ptrace" && d.metadata.annotations["berth.io/runtime-name"] == "gVisor_ptrace"));
}

#[test]
fn clashing_handler_names_are_refused() {
    let env = Env::new();
    env.write(r#"{"runtimes":{"my_rt":{"path":"/bin/true"},"my-rt":{"path":"/bin/true"},"My.Rt":{"path":"/bin/true"},"other":{"path":"/bin/true"}}}"#);
    let snap = ConfigStore::open(env.flags()).unwrap().snapshot();
    let clashes = berth_config::export::handler_collisions(&snap);
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    assert!(clashes[0].starts_with("runtimes My.Rt, my-rt, my_rt all map to the handler name \"my-rt\""), "{clashes:?}");
    // The fixture of the other tests exports faithfully.
    env.write(CONFIG);
    assert!(berth_config::export::handler_collisions(&ConfigStore::open(env.flags()).unwrap().snapshot()).is_empty());
}
