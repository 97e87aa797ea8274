//! `POST /containers/{id}/update`: Docker's update body (bollard's
//! [`ContainerUpdateBody`]) → the engine's [`UpdateRequest`]. Wire mapping
//! only; the rules are the engine's (`berth_engine::containers::update`).
//! Fields dockerd accepts but berth cannot change are refused with a 400
//! naming them, never ignored.

use berth_engine::containers::update::UpdateRequest;
use berth_engine::model::RestartPolicy;
use serde_json::Value;

use super::body::{decode_json, BodyError};
use super::models::{ContainerUpdateBody, RestartPolicyNameEnum};
use crate::error::ApiError;

/// Fields of the update body berth applies.
const MAPPED: &[&str] = &[
    "CpuShares", "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus",
    "CpusetMems", "CpuRealtimePeriod", "CpuRealtimeRuntime", "PidsLimit", "RestartPolicy",
];

/// The fields of an update body berth would have to ignore (set, not mapped).
pub fn unsupported_fields(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !MAPPED.contains(&k.as_str()) && !unset(k, v))
        .map(|(k, _)| k.clone())
        .collect();
    out.sort();
    out
}

fn unset(key: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        // -1 is "unset" for swappiness (what the CLI sends when not given).
        Value::Number(n) => n.as_f64() == Some(0.0) || (key == "MemorySwappiness" && n.as_i64() == Some(-1)),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The whole update body: decoded, checked for unsupported fields, mapped.
pub fn parse_update_request(bytes: &[u8]) -> Result<UpdateRequest, ApiError> {
    // Field names in any case, as dockerd reads them.
    let renamed = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|mut v| super::create::canonical_keys(&mut v, MAPPED).then(|| serde_json::to_vec(&v).ok()).flatten());
    let bytes = renamed.as_deref().unwrap_or(bytes);
    let body: ContainerUpdateBody = match decode_json(bytes) {
        Ok(b) => b,
        Err(BodyError::Type { path, .. }) if path == "RestartPolicy.Name" => {
            let v: Value = serde_json::from_slice(bytes).unwrap_or_default();
            let name = v["RestartPolicy"]["Name"].as_str().unwrap_or_default().to_owned();
            return Err(ApiError::bad_request(format!("invalid restart policy '{name}'")));
        }
        Err(e) => return Err(e.into()),
    };
    let raw: Value = serde_json::from_slice(bytes).unwrap_or_default();
    let unsupported = unsupported_fields(&raw);
    if !unsupported.is_empty() {
        return Err(ApiError::bad_request(format!(
            "berth does not support updating {} yet; remove {} from the request",
            unsupported.join(", "),
            if unsupported.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(UpdateRequest {
        cpu_shares: body.cpu_shares.unwrap_or(0),
        memory: body.memory.unwrap_or(0),
        memory_swap: body.memory_swap.unwrap_or(0),
        memory_reservation: body.memory_reservation.unwrap_or(0),
        nano_cpus: body.nano_cpus.unwrap_or(0),
        cpu_period: body.cpu_period.unwrap_or(0),
        cpu_quota: body.cpu_quota.unwrap_or(0),
        cpuset_cpus: body.cpuset_cpus.unwrap_or_default(),
        cpuset_mems: body.cpuset_mems.unwrap_or_default(),
        cpu_realtime_period: body.cpu_realtime_period.unwrap_or(0),
        cpu_realtime_runtime: body.cpu_realtime_runtime.unwrap_or(0),
        pids_limit: body.pids_limit,
        restart_policy: body.restart_policy.map(|p| RestartPolicy {
            name: match p.name.unwrap_or(RestartPolicyNameEnum::EMPTY) {
                RestartPolicyNameEnum::EMPTY => "",
                RestartPolicyNameEnum::NO => "no",
                RestartPolicyNameEnum::ALWAYS => "always",
                RestartPolicyNameEnum::UNLESS_STOPPED => "unless-stopped",
                RestartPolicyNameEnum::ON_FAILURE => "on-failure",
            }
            .into(),
            maximum_retry_count: p.maximum_retry_count.unwrap_or(0),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_body_maps() {
        // What `docker update --memory 300m --restart on-failure:3` sends.
        let r = parse_update_request(
            br#"{"BlkioWeight":0,"CpuShares":0,"Memory":314572800,"MemorySwap":0,"MemorySwappiness":null,"PidsLimit":null,
                "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"CpusetCpus":"","KernelMemory":0}"#,
        )
        .unwrap();
        assert_eq!(r.memory, 314572800);
        assert_eq!(r.restart_policy, Some(RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 }));
        assert_eq!(r.pids_limit, None);
    }

    #[test]
    fn what_berth_cannot_update_is_refused() {
        let e = parse_update_request(br#"{"BlkioWeight":300,"Memory":10000000,"OomKillDisable":true}"#).unwrap_err();
        assert_eq!(e.message, "berth does not support updating BlkioWeight, OomKillDisable yet; remove them from the request");
        let e = parse_update_request(br#"{"RestartPolicy":{"Name":"sometimes"}}"#).unwrap_err();
        assert_eq!(e.message, "invalid restart policy 'sometimes'");
        parse_update_request(br#"{"MemorySwappiness":-1}"#).unwrap();
    }
}
