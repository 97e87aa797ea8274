//! Routes. Handlers only translate: parse the request, call the engine, map
//! the result. One module per area; [`router`] assembles them.

mod containers;
mod exec;
mod fs;
mod hijack;
mod images;
mod networks;
mod system;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_engine::metrics::Metrics;
use http::{Method, Request};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::{version, AppState};

/// The whole API as one tower service: version rewriting happens before
/// routing, Docker's headers are added to every response.
pub fn router(state: AppState) -> impl ApiService {
    let metrics = state.engine.metrics.clone();
    let routes = Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(fs::routes())
        .merge(images::routes())
        .merge(networks::routes())
        .fallback(not_found)
        .with_state(state);
    instrumented(routes, metrics)
}

/// What [`router`] returns.
pub trait ApiService:
    tower::Service<Request<Body>, Response = Response, Error = Infallible, Future = Self::Fut> + Clone + Send + Sync + 'static
{
    type Fut: std::future::Future<Output = Result<Response, Infallible>> + Send + 'static;
}

impl<S> ApiService for S
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Fut = S::Future;
}

/// Wraps `routes` with version rewriting, Docker's headers and the request
/// counter. The counter's `route` label is the matched route's template
/// (`/containers/{id}/json`), never the raw path; requests that match no
/// route share the label [`UNMATCHED`], so no client can create series at will.
fn instrumented(routes: Router, metrics: Arc<Metrics>) -> impl ApiService {
    let routes = routes.route_layer(axum::middleware::from_fn(keep_matched_path));
    tower::service_fn(move |req: Request<Body>| {
        let routes = routes.clone();
        let metrics = metrics.clone();
        async move {
            let mut resp = match version::rewrite(req) {
                Ok(req) => routes.oneshot(req).await.unwrap_or_else(|e| match e {}),
                Err(e) => e.into_response(),
            };
            version::add_headers(&mut resp);
            let route = route_label(resp.extensions().get::<MatchedRoute>());
            metrics.api_request(&route, resp.status().as_u16());
            Ok(resp)
        }
    })
}

/// The `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The route a response answered, carried out of the router for the label.
#[derive(Clone)]
struct MatchedRoute {
    template: MatchedPath,
    /// For the image catch-all, the action it served (`json`, `tag`, …).
    image_action: Option<&'static str>,
}

async fn keep_matched_path(req: Request<Body>, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned().map(|template| {
        let last = req.uri().path().rsplit('/').next().unwrap_or("");
        let image_action = ["json", "get", "history", "tag"].into_iter().find(|a| *a == last);
        MatchedRoute { template, image_action }
    });
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// The label for a response: its route template; the image catch-all
/// (`/images/{*rest}`, names may hold `/`) becomes `/images/{name}` plus the
/// action; no route → [`UNMATCHED`]. Only a fixed set of values is possible.
fn route_label(matched: Option<&MatchedRoute>) -> String {
    match matched {
        Some(m) if m.template.as_str() == "/images/{*rest}" => match m.image_action {
            Some(action) => format!("/images/{{name}}/{action}"),
            None => "/images/{name}".into(),
        },
        Some(m) => m.template.as_str().to_string(),
        None => UNMATCHED.into(),
    }
}

async fn not_found(method: Method, uri: http::Uri) -> ApiError {
    let (_, path) = version::split_version(uri.path());
    let what = [
        "/volumes", "/plugins", "/swarm", "/services", "/nodes", "/secrets", "/configs", "/build", "/session",
        "/distribution", "/tasks", "/auth",
    ]
    .iter()
    .find(|p| path.starts_with(*p));
    match what {
        Some(p) => ApiError::not_found(format!("{} is not supported by berth yet ({method} {path})", p.trim_start_matches('/'))),
        None => ApiError::not_found("page not found"),
    }
}

#[cfg(test)]
mod tests;
