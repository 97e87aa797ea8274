//! Docker wire formats: models, conversions to and from berth's own types,
//! stream framing, request parsing. Pure functions, unit-tested against the
//! fixtures recorded from a real dockerd.
//!
//! - [`models`]: bollard's generated model types, re-exported, plus the
//!   few wrappers berth adds (inspect with `BerthRuntime`).
//! - [`body`]: JSON request bodies with a size limit and precise errors.
//! - [`create`]: `POST /containers/create` body → berth-store types.
//! - [`inspect`]: berth-store record → `GET /containers/{id}/json` and the
//!   `GET /containers/json` list entry.
//! - [`filters`]: the `filters` query parameter and container matching.
//! - [`glob`]: Go `path.Match` globs (the image `reference` filter).
//! - [`stream`]: stdcopy framing and `docker logs` line formatting.
//! - [`update`]: `POST /containers/{id}/update` body → the engine's update.
//! - [`params`]: signals, timestamps, booleans and integers in query strings.

pub mod body;
pub mod create;
pub mod detach;
pub mod filters;
pub mod glob;
pub mod inspect;
pub mod models;
pub mod params;
pub mod stream;
pub mod update;
