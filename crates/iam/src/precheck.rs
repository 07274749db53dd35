//! Checks made before signature verification, where AWS makes them and s3s
//! does not: a SigV2 request must carry a valid Date (or x-amz-date) within
//! 15 minutes of the server clock, and a pre-signed URL with a negative
//! lifetime has expired. Each refusal is (status, code, message).

use http::{HeaderMap, StatusCode};

/// Largest clock difference accepted (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// A refusal: HTTP status, AWS error code, message.
pub type Refusal = (StatusCode, &'static str, &'static str);

fn parse_http_date(s: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let alt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    let s = s.trim();
    time::PrimitiveDateTime::parse(s, fmt)
        .or_else(|_| time::PrimitiveDateTime::parse(s, alt))
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Runs the pre-authentication checks on a request.
pub fn precheck(headers: &HeaderMap, query: Option<&str>, now: time::OffsetDateTime) -> Result<(), Refusal> {
    if query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("X-Amz-Expires=-"))) {
        return Err((StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"));
    }
    let sigv2 = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS "));
    if !sigv2 {
        return Ok(());
    }
    let date = headers
        .get("x-amz-date")
        .or_else(|| headers.get(http::header::DATE))
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .ok_or((
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        ))?;
    if date.year() < 1970 {
        return Err((
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    }
    if (now - date).whole_seconds().abs() > MAX_SKEW_SECS {
        return Err((
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(date: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("AWS AKIA:sig"),
        );
        if let Some(d) = date {
            h.insert(
                http::header::DATE,
                http::HeaderValue::from_str(d).unwrap_or(http::HeaderValue::from_static("x")),
            );
        }
        h
    }

    #[test]
    fn sigv2_dates() {
        let now = time::macros::datetime!(2026-11-27 12:00:00 UTC);
        assert!(precheck(&v2(Some("Fri, 27 Nov 2026 12:10:00 GMT")), None, now).is_ok());
        assert_eq!(
            precheck(&v2(Some("Fri, 27 Nov 2026 12:20:00 GMT")), None, now)
                .err()
                .map(|r| r.1),
            Some("RequestTimeTooSkewed")
        );
        assert_eq!(
            precheck(&v2(Some("garbage")), None, now).err().map(|r| r.1),
            Some("AccessDenied")
        );
        assert_eq!(precheck(&v2(None), None, now).err().map(|r| r.1), Some("AccessDenied"));
        assert!(precheck(&HeaderMap::new(), Some("X-Amz-Expires=60"), now).is_ok());
        assert_eq!(
            precheck(&HeaderMap::new(), Some("a=1&X-Amz-Expires=-5"), now)
                .err()
                .map(|r| r.1),
            Some("AccessDenied")
        );
    }
}
