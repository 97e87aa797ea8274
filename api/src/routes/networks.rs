//! `/networks`: list, inspect, create, remove, prune, connect, disconnect.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::model::{EndpointConfig, Network, NetworkCreate, NetworkDriver};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::docker::body::decode_json;
use crate::docker::filters::{labels_match, Filters};
use crate::error::{json_response, ApiError};
use crate::AppState;

type Q = Query<HashMap<String, String>>;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// A network as dockerd shows it; `containers` for inspect only.
fn network_json(state: &AppState, n: &Network, with_containers: bool) -> Value {
    let mut containers = serde_json::Map::new();
    if with_containers {
        for (id, name, ep) in state.engine.networks.endpoints_on(&n.id) {
            containers.insert(
                id,
                json!({"Name": name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
                       "IPv4Address": format!("{}/{}", ep.ip, ep.prefix_len), "IPv6Address": ""}),
            );
        }
    }
    let config: Vec<Value> = n
        .pools
        .iter()
        .map(|p| {
            let mut c = json!({"Subnet": p.subnet.to_string(), "Gateway": p.gateway.to_string()});
            if let Some(r) = p.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            c
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver.as_str(),
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": if n.ipam_options.is_empty() { Value::Null } else { json!(n.ipam_options) }, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn matches(state: &AppState, f: &Filters, n: &Network) -> bool {
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| f.get(key).is_empty() || f.get(key).iter().any(|v| pred(v));
    any("name", &|v| n.name.contains(v))
        && any("id", &|v| n.id.starts_with(v))
        && any("driver", &|v| v == n.driver.as_str())
        && any("type", &|v| (v == "builtin") == n.predefined)
        && (f.get("label").is_empty() || labels_match(f.get("label"), &n.labels))
        && any("dangling", &|v| {
            let unused = state.engine.networks.endpoints_on(&n.id).is_empty();
            matches!(v, "true" | "1") == (unused && !n.predefined)
        })
        && any("scope", &|v| v == "local")
}

async fn list(State(state): State<AppState>, Query(query): Q) -> Result<Response, ApiError> {
    let f = Filters::parse(query.get("filters").map(String::as_str))?;
    f.validate(&["name", "id", "driver", "type", "label", "dangling", "scope"], &[])?;
    for t in f.get("type") {
        if t != "custom" && t != "builtin" {
            return Err(ApiError::bad_request(format!("invalid filter: 'type'='{t}'")));
        }
    }
    let out: Vec<Value> = state.engine.networks.list().iter().filter(|n| matches(&state, &f, n)).map(|n| network_json(&state, n, false)).collect();
    Ok(json_response(StatusCode::OK, &out))
}

async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let n = state.engine.networks.get(&id)?;
    Ok(json_response(StatusCode::OK, &network_json(&state, &n, true)))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    ingress: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
    config_only: bool,
    config_from: Option<Value>,
    scope: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Ipam {
    driver: String,
    config: Option<Vec<IpamConfig>>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct IpamConfig {
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    gateway: String,
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

async fn create(State(state): State<AppState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: CreateBody = decode_json(&body)?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("network name is required"));
    }
    for (set, what) in [
        (b.ingress, "Ingress (swarm)"),
        (b.config_only, "ConfigOnly"),
        (b.config_from.as_ref().is_some_and(|v| !v.is_null() && v.get("Network").and_then(Value::as_str).is_some_and(|s| !s.is_empty())), "ConfigFrom"),
        (!(b.scope.is_empty() || b.scope == "local"), "a scope other than local"),
    ] {
        if set {
            return Err(ApiError::bad_request(format!("berth does not support {what} networks; remove it from the request")));
        }
    }
    let ipam = b.ipam.unwrap_or_default();
    let mut ipam_config = Vec::new();
    for c in ipam.config.unwrap_or_default() {
        if c.auxiliary_addresses.as_ref().is_some_and(|a| !a.is_empty()) {
            return Err(ApiError::bad_request("berth does not support auxiliary addresses (--aux-address); remove them"));
        }
        if c.subnet.contains(':') {
            return Err(ApiError::bad_request("berth networks are IPv4 only; remove the IPv6 subnet"));
        }
        ipam_config.push((c.subnet, c.gateway, c.ip_range));
    }
    let n = state
        .engine
        .networks
        .create(NetworkCreate {
            name: b.name,
            driver: b.driver,
            internal: b.internal,
            attachable: b.attachable,
            enable_ipv6: b.enable_ipv6,
            labels: b.labels.unwrap_or_default(),
            options: b.options.unwrap_or_default(),
            ipam_driver: ipam.driver,
            ipam_options: ipam.options.unwrap_or_default(),
            ipam_config,
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let n = state.engine.networks.get(&id)?;
    // dockerd refuses a network that containers are configured with only
    // while they run (their endpoints); stopped ones keep the name.
    state.engine.networks.remove(&n.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(state): State<AppState>, Query(query): Q) -> Result<Response, ApiError> {
    let f = Filters::parse(query.get("filters").map(String::as_str))?;
    f.validate(&["label", "label!", "until"], &[])?;
    if !f.get("until").is_empty() {
        return Err(ApiError::bad_request("berth does not support the until filter of network prune yet; prune without it"));
    }
    let mut deleted = Vec::new();
    for n in state.engine.networks.list() {
        if n.predefined || n.driver != NetworkDriver::Bridge || !state.engine.networks.endpoints_on(&n.id).is_empty() {
            continue;
        }
        if !f.get("label").is_empty() && !labels_match(f.get("label"), &n.labels) {
            continue;
        }
        if !f.get("label!").is_empty() && labels_match(f.get("label!"), &n.labels) {
            continue;
        }
        // Still named by a container's settings: kept, as dockerd keeps it.
        let used = state.engine.containers.list().iter().any(|r| {
            r.host_config.network_mode == n.name || r.host_config.network_mode == n.id || r.networking.endpoints.contains_key(&n.name)
        });
        if used {
            continue;
        }
        if state.engine.networks.remove(&n.id).await.is_ok() {
            deleted.push(n.name.clone());
        }
    }
    Ok(json_response(StatusCode::OK, &json!({"NetworksDeleted": deleted})))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointBody>,
    force: bool,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointBody {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    links: Option<Vec<String>>,
    mac_address: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
}

async fn connect(State(state): State<AppState>, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: ConnectBody = decode_json(&body)?;
    let ep = b.endpoint_config.unwrap_or_default();
    if ep.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::bad_request("berth does not support legacy links (--link); containers on a user-defined network reach each other by name"));
    }
    if !ep.mac_address.is_empty() {
        return Err(ApiError::bad_request("berth does not support choosing a MAC address; remove it"));
    }
    let ipam = ep.ipam_config.unwrap_or_default();
    if !ipam.ipv6_address.is_empty() {
        return Err(ApiError::bad_request("berth networks are IPv4 only; remove the IPv6 address"));
    }
    let cfg = EndpointConfig { aliases: ep.aliases.unwrap_or_default(), ipv4_address: ipam.ipv4_address };
    state.engine.containers.connect_network(&b.container, &id, cfg).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(State(state): State<AppState>, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: ConnectBody = decode_json(&body)?;
    let _ = b.force;
    state.engine.containers.disconnect_network(&b.container, &id).await?;
    Ok(StatusCode::OK.into_response())
}
