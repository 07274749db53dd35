//! The AWS touches s3s leaves out of its responses: `<Resource>`,
//! `<RequestId>` and default messages in error bodies, AWS's 403 for a
//! POST form that breaks its policy, unquoted ETags in
//! GetObjectAttributes. Error documents are read and written with
//! quick-xml, never edited as strings.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use quick_xml::events::Event;

/// The child elements of an AWS `<Error>` document, with their text as it
/// was written (still escaped); None for anything else.
fn error_fields(xml: &[u8]) -> Option<Vec<(String, String)>> {
    let mut r = quick_xml::Reader::from_reader(xml);
    let mut depth = 0usize;
    let mut seen_error = false;
    let mut fields = Vec::new();
    let mut cur: Option<(String, String)> = None;
    loop {
        match r.read_event().ok()? {
            Event::Start(e) => {
                depth += 1;
                let name = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                match depth {
                    1 if name == "Error" => seen_error = true,
                    2 => cur = Some((name, String::new())),
                    _ => return None,
                }
            }
            Event::Empty(e) if depth == 1 => {
                fields.push((String::from_utf8(e.name().as_ref().to_vec()).ok()?, String::new()));
            }
            Event::Text(t) => {
                if let Some(c) = &mut cur {
                    c.1.push_str(std::str::from_utf8(t.as_ref()).ok()?);
                }
            }
            Event::GeneralRef(g) => {
                if let Some(c) = &mut cur {
                    c.1.push('&');
                    c.1.push_str(std::str::from_utf8(g.as_ref()).ok()?);
                    c.1.push(';');
                }
            }
            Event::End(_) => {
                if depth == 2 {
                    fields.push(cur.take()?);
                }
                depth = depth.checked_sub(1)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            _ => return None,
        }
    }
    seen_error.then_some(fields)
}

fn error_document(fields: &[(String, String)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    for (k, v) in fields {
        out.push_str(&format!("<{k}>{v}</{k}>"));
    }
    out.push_str("</Error>");
    out
}

fn set_body(resp: &mut Response<s3s::Body>, text: String) {
    let len = text.len();
    *resp.body_mut() = s3s::Body::from(Bytes::from(text));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
    }
}

/// Adds `<Message>` (AWS's default for the code), `<Resource>` and
/// `<RequestId>` to an error body that lacks them.
/// The AWS error code of an error answer held in memory.
pub(crate) fn error_code(resp: &Response<s3s::Body>) -> Option<String> {
    let bytes = resp.body().bytes()?;
    error_fields(&bytes)?
        .into_iter()
        .find(|(k, _)| k == "Code")
        .map(|(_, v)| v)
}

pub(crate) fn add_error_details(resp: &mut Response<s3s::Body>, path: &str, rid: &str) {
    let Some(bytes) = resp.body().bytes() else { return };
    let Some(mut fields) = error_fields(&bytes) else { return };
    let has = |f: &[(String, String)], n: &str| f.iter().any(|(k, _)| k == n);
    if !has(&fields, "Message")
        && let Some(msg) = fields
            .iter()
            .find(|(k, _)| k == "Code")
            .and_then(|(_, c)| default_message(c))
    {
        fields.push(("Message".into(), quick_xml::escape::escape(msg).into_owned()));
    }
    if !has(&fields, "Resource") {
        fields.push(("Resource".into(), quick_xml::escape::escape(path).into_owned()));
    }
    if !has(&fields, "RequestId") {
        fields.push(("RequestId".into(), quick_xml::escape::escape(rid).into_owned()));
    }
    set_body(resp, error_document(&fields));
}

/// A POST object whose form breaks a condition of its signed policy is
/// refused by AWS with 403 AccessDenied ("Invalid according to Policy");
/// s3s answers 400 InvalidPolicyDocument for both that and a malformed
/// policy. Only the condition failures are re-labelled.
pub(crate) fn policy_condition_is_403(resp: &mut Response<s3s::Body>) {
    let Some(bytes) = resp.body().bytes() else { return };
    let Some(fields) = error_fields(&bytes) else { return };
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let message = field("Message").unwrap_or_default();
    let condition_failed = field("Code") == Some("InvalidPolicyDocument")
        && (message.contains("Policy condition")
            || message.contains("not specified in the policy")
            || message.contains("does not match bucket in URL"));
    if condition_failed {
        *resp = error_response(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Invalid according to Policy: Policy Condition failed",
        );
    }
}

/// GetObjectAttributes carries the ETag without quotes (AWS); s3s's XML
/// writer always quotes it.
pub(crate) fn unquote_etag(resp: &mut Response<s3s::Body>) {
    let Some(bytes) = resp.body().bytes() else { return };
    let Ok(text) = std::str::from_utf8(&bytes) else { return };
    if !text.contains("<ETag>\"") {
        return;
    }
    let new = text.replace("<ETag>\"", "<ETag>").replace("\"</ETag>", "</ETag>");
    set_body(resp, new);
}

/// AWS's messages for errors s3s reports with a code only.
fn default_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "AccessDenied" => "Access Denied",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "NoSuchBucket" => "The specified bucket does not exist",
        "NoSuchKey" => "The specified key does not exist.",
        "KeyTooLongError" => "Your key is too long",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "MaxMessageLengthExceeded" => "Your request was too big.",
        "IncompleteBody" => "You did not provide the number of bytes specified by the Content-Length HTTP header",
        "InternalError" => "We encountered an internal error. Please try again.",
        _ => return None,
    })
}

/// An AWS error document with `code` and `message`.
pub(crate) fn error_response(status: StatusCode, code: &str, msg: &str) -> Response<s3s::Body> {
    let fields = [
        ("Code".to_owned(), quick_xml::escape::escape(code).into_owned()),
        ("Message".to_owned(), quick_xml::escape::escape(msg).into_owned()),
    ];
    let mut r = Response::new(s3s::Body::from(error_document(&fields)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(r: &Response<s3s::Body>) -> String {
        String::from_utf8(r.body().bytes().map(|b| b.to_vec()).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn details_are_added_without_touching_what_is_there() {
        let mut r = Response::new(s3s::Body::from(
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Key>a&amp;b</Key></Error>".to_owned(),
        ));
        add_error_details(&mut r, "/b/a&b", "RID1");
        let b = body_of(&r);
        assert!(b.contains("<Code>NoSuchKey</Code>"), "{b}");
        assert!(b.contains("<Key>a&amp;b</Key>"), "{b}");
        assert!(
            b.contains("<Message>The specified key does not exist.</Message>"),
            "{b}"
        );
        assert!(b.contains("<Resource>/b/a&amp;b</Resource>"), "{b}");
        assert!(b.contains("<RequestId>RID1</RequestId>"), "{b}");
    }

    #[test]
    fn non_error_documents_are_left_alone() {
        let doc = "<ListBucketResult><Name>x</Name></ListBucketResult>".to_owned();
        let mut r = Response::new(s3s::Body::from(doc.clone()));
        add_error_details(&mut r, "/x", "R");
        assert_eq!(body_of(&r), doc);
        assert!(error_fields(b"<Error><Code><X/></Code></Error>").is_none());
    }

    #[test]
    fn policy_condition_failures_become_403() {
        let mut r = error_response(
            StatusCode::BAD_REQUEST,
            "InvalidPolicyDocument",
            "Policy condition failed: key",
        );
        policy_condition_is_403(&mut r);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let mut r = error_response(StatusCode::BAD_REQUEST, "InvalidPolicyDocument", "bad base64");
        policy_condition_is_403(&mut r);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
