//! The admin listener: `/health` and Prometheus `/metrics`. It serves no
//! data and takes no credentials, so bind it to loopback (the default).

use http::{Request, Response, StatusCode};

use crate::FrontDoor;

pub(crate) fn handle<B>(front: &FrontDoor, req: Request<B>) -> Response<s3s::Body> {
    let (status, ctype, body) = match req.uri().path() {
        "/health" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            front.metrics.render()
                + &front
                    .key_service
                    .as_ref()
                    .map(|k| k.ledger().render_metrics())
                    .unwrap_or_default(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
    };
    let mut resp = Response::new(s3s::Body::from(body));
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}
