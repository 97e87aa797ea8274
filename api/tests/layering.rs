//! The api sits on the engine: it may name berth's config (the runtime
//! inventory it shows) and engine crates, never the store or containerd
//! below the engine (their types reach it through `berth_engine::model`).

#[test]
fn the_api_depends_on_the_engine_and_config_only() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut berth_deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section.contains("dependencies") {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim();
                if name.starts_with("berth-") {
                    berth_deps.push((section.clone(), name.to_string()));
                }
            }
        }
    }
    let wrong: Vec<_> = berth_deps.iter().filter(|(_, n)| n != "berth-engine" && n != "berth-config").collect();
    assert!(wrong.is_empty(), "api/Cargo.toml depends on {wrong:?}; name their types through berth_engine::model");
    assert!(berth_deps.iter().any(|(_, n)| n == "berth-engine"), "{berth_deps:?}");
}
