//! The request counter's labels: route templates, never raw paths.

use std::sync::Arc;

use axum::body::Body;
use axum::routing::{delete, get};
use axum::Router;
use berth_engine::metrics::Metrics;
use http::Request;
use tower::ServiceExt;

use super::{instrumented, UNMATCHED};

async fn hit(svc: &impl super::ApiService, method: &str, path: &str) {
    let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
    let _ = svc.clone().oneshot(req).await;
}

/// The `berth_api_requests_total` series in a scrape.
fn series(m: &Metrics) -> Vec<String> {
    m.render(0, 0, std::iter::empty()).lines().filter(|l| l.starts_with("berth_api_requests_total{")).map(str::to_owned).collect()
}

#[tokio::test]
async fn many_distinct_paths_make_one_series_per_route() {
    let routes = Router::new()
        .route("/containers/{id}/json", get(|| async { "{}" }))
        .route("/images/{*rest}", get(|| async { "{}" }).delete(|| async { "[]" }))
        .route("/_ping", get(|| async { "OK" }))
        .route("/containers/{id}", delete(|| async { "" }));
    let metrics = Arc::new(Metrics::new());
    let svc = instrumented(routes, metrics.clone());
    for i in 0..500 {
        hit(&svc, "GET", &format!("/v1.41/containers/c{i}/json")).await;
        hit(&svc, "GET", &format!("/containers/c{i}/json")).await;
        hit(&svc, "GET", &format!("/images/reg.example:5000/team/app{i}:v{i}/json")).await;
        hit(&svc, "DELETE", &format!("/images/app{i}")).await;
        hit(&svc, "GET", &format!("/no/such/route/{i}")).await;
        hit(&svc, "GET", &format!("/v1.41/x{i}")).await;
        // A bad API version never reaches the router.
        hit(&svc, "GET", &format!("/v9.{i}/containers/json")).await;
    }
    hit(&svc, "GET", "/_ping").await;
    let mut got = series(&metrics);
    got.sort();
    let want = [
        "berth_api_requests_total{route=\"/_ping\",status=\"200\"} 1".to_string(),
        "berth_api_requests_total{route=\"/containers/{id}/json\",status=\"200\"} 1000".to_string(),
        "berth_api_requests_total{route=\"/images/{name}\",status=\"200\"} 500".to_string(),
        "berth_api_requests_total{route=\"/images/{name}/json\",status=\"200\"} 500".to_string(),
        format!("berth_api_requests_total{{route=\"{UNMATCHED}\",status=\"400\"}} 500"),
        format!("berth_api_requests_total{{route=\"{UNMATCHED}\",status=\"404\"}} 1000"),
    ];
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(got, want);
}
