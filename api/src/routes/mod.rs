//! Routes. Handlers only translate: parse the request, call the engine, map
//! the result. One module per area; [`router`] assembles them.

mod containers;
mod exec;
mod hijack;
mod images;
mod system;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{Method, Request};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::{version, AppState};

/// The whole API as one tower service: version rewriting happens before
/// routing, Docker's headers are added to every response.
pub fn router(
    state: AppState,
) -> impl tower::Service<
    Request<Body>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
       + Send
       + Sync
       + 'static {
    let metrics = state.engine.metrics.clone();
    let routes = Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .fallback(not_found)
        .with_state(state);
    tower::service_fn(move |req: Request<Body>| {
        let routes = routes.clone();
        let metrics = metrics.clone();
        async move {
            let route = berth_engine::metrics::route_of(version::split_version(req.uri().path()).1);
            let mut resp = match version::rewrite(req) {
                Ok(req) => routes.oneshot(req).await.unwrap_or_else(|e| match e {}),
                Err(e) => e.into_response(),
            };
            version::add_headers(&mut resp);
            metrics.api_request(&route, resp.status().as_u16());
            Ok(resp)
        }
    })
}

async fn not_found(method: Method, uri: http::Uri) -> ApiError {
    let (_, path) = version::split_version(uri.path());
    let what = [
        "/networks", "/volumes", "/plugins", "/swarm", "/services", "/nodes", "/secrets", "/configs", "/build", "/session",
        "/distribution", "/tasks", "/auth", "/commit",
    ]
    .iter()
    .find(|p| path.starts_with(*p));
    match what {
        Some(p) => ApiError::not_found(format!("{} is not supported by berth yet ({method} {path})", p.trim_start_matches('/'))),
        None => ApiError::not_found("page not found"),
    }
}
