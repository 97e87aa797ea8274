//! Typed shim options.
//!
//! dockerd turns the `options` object of a runtime into a shim options struct
//! by going through TOML, which silently ignores unknown keys and refuses JSON
//! integers for integer fields. berth decodes the JSON directly into a typed
//! struct per shim: integers work, booleans must be booleans, and an unknown
//! key is an error that lists the valid ones. Keys match field names
//! case-insensitively (as in dockerd), so existing `daemon.json` files keep
//! working.

use serde::Serialize;
use serde_json::{Map, Value};

/// The runc v2 shim's name; runtimes of this type take [`RuncOptions`].
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";

/// Options of containerd's runc shim (`containerd.runc.v1.Options`, containerd 1.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuncOptions {
    #[serde(skip_serializing_if = "is_false")]
    pub no_pivot_root: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub no_new_keyring: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shim_cgroup: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub io_uid: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub io_gid: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub binary_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub root: String,
    #[serde(skip_serializing_if = "is_false")]
    pub systemd_cgroup: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub criu_image_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub criu_work_path: String,
}

/// Options of any other shim (`runtimeoptions.v1.Options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenericOptions {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub type_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_body: String,
}

/// The options handed to a shim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum ShimOptions {
    /// No options: the shim's defaults.
    #[default]
    None,
    Runc(RuncOptions),
    Generic(GenericOptions),
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Copy)]
enum FieldType {
    Bool,
    Str,
    U32,
}

const RUNC_FIELDS: &[(&str, FieldType)] = &[
    ("NoPivotRoot", FieldType::Bool),
    ("NoNewKeyring", FieldType::Bool),
    ("ShimCgroup", FieldType::Str),
    ("IoUid", FieldType::U32),
    ("IoGid", FieldType::U32),
    ("BinaryName", FieldType::Str),
    ("Root", FieldType::Str),
    ("SystemdCgroup", FieldType::Bool),
    ("CriuImagePath", FieldType::Str),
    ("CriuWorkPath", FieldType::Str),
];

const GENERIC_FIELDS: &[(&str, FieldType)] =
    &[("TypeUrl", FieldType::Str), ("ConfigPath", FieldType::Str), ("ConfigBody", FieldType::Str)];

enum Decoded {
    Bool(bool),
    Str(String),
    U32(u32),
}

/// Decodes `options` for a runtime of type `shim`. Returns every problem as a
/// message (the caller adds the source and the runtime name).
pub fn decode(shim: &str, options: &Map<String, Value>) -> Result<ShimOptions, Vec<String>> {
    if options.is_empty() {
        return Ok(ShimOptions::None);
    }
    let fields = if shim == RUNC_SHIM { RUNC_FIELDS } else { GENERIC_FIELDS };
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut values: Vec<(&str, Decoded)> = Vec::new();
    for (key, value) in options {
        let Some((field, ty)) = fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(key)) else {
            let valid: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
            errors.push(format!(
                "unknown option {key:?} for shim {shim}; valid options are: {}",
                valid.join(", ")
            ));
            continue;
        };
        if seen.contains(field) {
            errors.push(format!("option {field} is given more than once (keys differ only in case)"));
            continue;
        }
        seen.push(field);
        match (ty, value) {
            (FieldType::Bool, Value::Bool(b)) => values.push((field, Decoded::Bool(*b))),
            (FieldType::Str, Value::String(s)) => values.push((field, Decoded::Str(s.clone()))),
            (FieldType::U32, Value::Number(n)) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
                Some(v) => values.push((field, Decoded::U32(v))),
                None => errors.push(format!(
                    "option {field} must be an integer between 0 and {}, got {n}",
                    u32::MAX
                )),
            },
            (ty, other) => errors.push(format!(
                "option {field} must be {}, got {}",
                match ty {
                    FieldType::Bool => "true or false",
                    FieldType::Str => "a string",
                    FieldType::U32 => "an integer",
                },
                crate::load::json_kind(other)
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if shim == RUNC_SHIM {
        let mut o = RuncOptions::default();
        for (field, v) in values {
            match (field, v) {
                ("NoPivotRoot", Decoded::Bool(b)) => o.no_pivot_root = b,
                ("NoNewKeyring", Decoded::Bool(b)) => o.no_new_keyring = b,
                ("SystemdCgroup", Decoded::Bool(b)) => o.systemd_cgroup = b,
                ("ShimCgroup", Decoded::Str(s)) => o.shim_cgroup = s,
                ("BinaryName", Decoded::Str(s)) => o.binary_name = s,
                ("Root", Decoded::Str(s)) => o.root = s,
                ("CriuImagePath", Decoded::Str(s)) => o.criu_image_path = s,
                ("CriuWorkPath", Decoded::Str(s)) => o.criu_work_path = s,
                ("IoUid", Decoded::U32(n)) => o.io_uid = n,
                ("IoGid", Decoded::U32(n)) => o.io_gid = n,
                _ => unreachable!("field table and decoder agree"),
            }
        }
        Ok(ShimOptions::Runc(o))
    } else {
        let mut o = GenericOptions::default();
        for (field, v) in values {
            match (field, v) {
                ("TypeUrl", Decoded::Str(s)) => o.type_url = s,
                ("ConfigPath", Decoded::Str(s)) => o.config_path = s,
                ("ConfigBody", Decoded::Str(s)) => o.config_body = s,
                _ => unreachable!("field table and decoder agree"),
            }
        }
        Ok(ShimOptions::Generic(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn runc_integers_work() {
        // dockerd (W13) fails here because JSON numbers become TOML floats.
        let o = decode(RUNC_SHIM, &map(json!({"IoUid": 42, "SystemdCgroup": false, "root": "/x"})));
        assert_eq!(
            o,
            Ok(ShimOptions::Runc(RuncOptions { io_uid: 42, root: "/x".into(), ..Default::default() }))
        );
    }

    #[test]
    fn unknown_and_mistyped_options_are_all_reported() {
        let errs =
            decode(RUNC_SHIM, &map(json!({"BinaryNam": "x", "IoUid": -1, "NoPivotRoot": "yes"})))
                .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("unknown option \"BinaryNam\"") && e.contains("BinaryName")));
        assert!(errs.iter().any(|e| e.contains("IoUid must be an integer")));
        assert!(errs.iter().any(|e| e.contains("NoPivotRoot must be true or false, got a string")));
    }

    #[test]
    fn generic_options_for_other_shims() {
        let o = decode(
            "io.containerd.runsc.v1",
            &map(json!({"TypeUrl": "io.containerd.runsc.v1.options", "ConfigPath": "/etc/runsc.toml"})),
        )
        .unwrap();
        let ShimOptions::Generic(g) = o else { panic!() };
        assert_eq!(g.config_path, "/etc/runsc.toml");
        assert!(decode("io.containerd.runsc.v1", &map(json!({"IoUid": 1}))).is_err());
    }

    #[test]
    fn empty_options_mean_none() {
        assert_eq!(decode(RUNC_SHIM, &Map::new()), Ok(ShimOptions::None));
    }

    #[test]
    fn case_duplicates_are_errors() {
        let errs = decode(RUNC_SHIM, &map(json!({"root": "/a", "Root": "/b"}))).unwrap_err();
        assert!(errs[0].contains("more than once"));
    }
}
