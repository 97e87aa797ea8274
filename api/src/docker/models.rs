//! Docker API model types: bollard's generated models (`bollard-stubs`
//! 1.53.1-rc.29.3.1, the version `bollard` 0.21 pins; from moby's swagger),
//! re-exported for requests and responses, plus the few types berth adds.
//!
//! Serializing caveat: bollard's fields are `Option`s that vanish when
//! `None`, so responses must fill every object the CLI dereferences
//! (inspect: `Config`, `State`, `HostConfig`); see [`super::inspect`].

use serde::{Deserialize, Serialize};

pub use bollard_stubs::models::*;

/// `GET /containers/{id}/json`: Docker's inspect document plus berth's
/// pinned runtime resolution as an extra top-level `BerthRuntime` object
/// (clients ignore unknown fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerInspect {
    #[serde(flatten)]
    pub docker: ContainerInspectResponse,
    #[serde(rename = "BerthRuntime", skip_serializing_if = "Option::is_none", default)]
    pub berth_runtime: Option<BerthRuntime>,
}

/// The runtime resolution a container was last started with (design §5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BerthRuntime {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Generation")]
    pub generation: u64,
    #[serde(rename = "Shim")]
    pub shim: String,
    #[serde(rename = "Binary")]
    pub binary: Option<String>,
    #[serde(rename = "Args")]
    pub args: Vec<String>,
    #[serde(rename = "Wrapper")]
    pub wrapper: Option<String>,
    #[serde(rename = "WrapperDigest")]
    pub wrapper_digest: Option<String>,
    #[serde(rename = "Options")]
    pub options: serde_json::Value,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use serde::de::DeserializeOwned;

    use super::*;

    /// The requests and responses recorded from dockerd (20.10, API 1.41)
    /// and the docker CLI, carried in the repository.
    pub(crate) fn fixtures_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker-api")
    }

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn check<T: DeserializeOwned + Serialize>(name: &str, bytes: &[u8]) -> serde_json::Value {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let v: T = serde_path_to_error::deserialize(&mut de).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::to_value(&v).unwrap()
    }

    #[test]
    fn every_fixture_deserializes_into_its_model() {
        let dir = fixtures_dir();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        assert!(names.len() >= 12, "expected the 12 recorded fixtures, found {names:?}");
        for name in &names {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let v = match name.as_str() {
                "req-containers-create.json" => check::<ContainerCreateBody>(name, &bytes),
                "req-containers-exec.json" => check::<ExecConfig>(name, &bytes),
                "resp-containers-id-json-created.json" | "resp-containers-id-json-running.json" => {
                    check::<ContainerInspect>(name, &bytes);
                    check::<ContainerInspectResponse>(name, &bytes)
                }
                "resp-containers-id-stats.json" => check::<ContainerStatsResponse>(name, &bytes),
                "resp-containers-json.json" => check::<Vec<ContainerSummary>>(name, &bytes),
                "resp-events-line.json" => check::<EventMessage>(name, &bytes),
                "resp-exec-json.json" => check::<ExecInspectResponse>(name, &bytes),
                "resp-images-json.json" => check::<Vec<ImageSummary>>(name, &bytes),
                "resp-images-name-json.json" => check::<ImageInspect>(name, &bytes),
                "resp-info.json" => check::<SystemInfo>(name, &bytes),
                "resp-version.json" => check::<SystemVersion>(name, &bytes),
                other => panic!("fixture {other} has no model mapping here; add one"),
            };
            assert!(v.is_object() || v.is_array(), "{name}");
        }
    }

    #[test]
    fn inspect_fixture_keeps_what_the_cli_reads() {
        let bytes = fixture("resp-containers-id-json-running.json");
        let v: ContainerInspect = serde_json::from_slice(&bytes).unwrap();
        assert!(v.berth_runtime.is_none());
        let d = &v.docker;
        assert_eq!(d.name.as_deref(), Some("/xx"));
        assert_eq!(d.state.as_ref().unwrap().status, Some(ContainerStateStatusEnum::RUNNING));
        assert_eq!(d.config.as_ref().unwrap().tty, Some(false));
        assert_eq!(d.host_config.as_ref().unwrap().auto_remove, Some(false));
        assert_eq!(d.host_config.as_ref().unwrap().runtime.as_deref(), Some("runc"));
        assert_eq!(d.created.as_deref(), Some("2026-11-29T04:19:13.881035729Z"));
    }

    #[test]
    fn berth_runtime_is_an_extra_top_level_object() {
        let v = ContainerInspect {
            docker: ContainerInspectResponse { id: Some("abc".into()), ..Default::default() },
            berth_runtime: Some(BerthRuntime { name: "crun".into(), generation: 3, ..Default::default() }),
        };
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["Id"], "abc");
        assert_eq!(j["BerthRuntime"]["Name"], "crun");
        assert_eq!(j["BerthRuntime"]["Generation"], 3);
        let none = ContainerInspect::default();
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        // Responses the reference calls out.
        let r = ContainerCreateResponse { id: "x".into(), warnings: vec![] };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"Id":"x","Warnings":[]}"#);
    }
}
