//! Image routes: list, inspect, import, load, save, tag, remove, prune.

use axum::Router;

use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
}
