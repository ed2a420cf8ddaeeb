//! Who may read the dashboard: the start-up rule (a non-loopback address needs `--web-token`
//! unless `--web-public`), and the per-request check of the bearer or basic-auth token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::error::json_error;
use super::state::WebState;

/// Paths served without authentication: the probes a load balancer or orchestrator polls.
pub const OPEN_PATHS: [&str; 2] = ["/livez", "/readyz"];

/// Decides whether the web server may start on `addr`: a loopback address always may; any
/// other address needs a `token` (bearer or basic auth) unless `public` (`--web-public`) says
/// to serve it to anyone. The error says which option to give.
pub fn needs_token(addr: SocketAddr, public: bool, token: Option<&str>) -> Result<(), String> {
    if let Some(t) = token {
        check_token(t)?;
    }
    if addr.ip().is_loopback() || public || token.is_some() {
        return Ok(());
    }
    Err(format!(
        "the dashboard would listen on {addr}, which is not a loopback address: give \
         --web-token TOKEN to require a token (bearer or HTTP basic auth password), or \
         --web-public to serve it without authentication, or --web 127.0.0.1:PORT"
    ))
}

/// Refuses a `--web-token` that clients could not send back: empty, with leading or trailing
/// spaces (HTTP clients and servers strip them from header values), or with a character that
/// is not printable ASCII (not allowed in a header value, or encoded differently by each
/// client). The message never shows the token.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.trim().is_empty() {
        return Err("--web-token is empty: give a token, or leave the option out".into());
    }
    if token.trim() != token {
        return Err(
            "--web-token starts or ends with a space or tab, which HTTP strips from the \
             Authorization header: the token could never be given; remove the spaces"
                .into(),
        );
    }
    if let Some((i, c)) = token
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_graphic() || *c == ' '))
    {
        let what = if c.is_ascii() {
            format!("a control character (U+{:04X})", u32::from(c))
        } else {
            format!("a non-ASCII character (U+{:04X})", u32::from(c))
        };
        return Err(format!(
            "--web-token has {what} at position {}: use printable ASCII characters only \
             (letters, digits, punctuation), which every HTTP client sends unchanged",
            i + 1
        ));
    }
    Ok(())
}

/// The line `rkms serve` logs when the dashboard starts, saying who can read it.
pub fn access_notice(addr: SocketAddr, public: bool, token: Option<&str>) -> String {
    let url = format!("http://{addr}/");
    if token.is_some() {
        format!(
            "dashboard on {url}: a token is required (Authorization: Bearer TOKEN, or HTTP \
             basic auth with the token as password); /livez and /readyz are open"
        )
    } else if addr.ip().is_loopback() {
        format!("dashboard on {url}: loopback only, no token")
    } else if public {
        format!(
            "dashboard on {url}: PUBLIC, no authentication (--web-public): anyone who can \
             reach this address can read the client list"
        )
    } else {
        format!("dashboard on {url}")
    }
}

/// Compares without stopping at the first difference (the length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `headers` carry `token`: `Authorization: Bearer TOKEN`, or `Basic` with any user
/// name and the token as password.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return same(credentials.as_bytes(), token.as_bytes());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return false;
        };
        return same(&decoded[colon + 1..], token.as_bytes());
    }
    false
}

/// Middleware: refuses requests without the token (when one is set) with 401 and the
/// `WWW-Authenticate` challenges for both schemes.
pub async fn require_token(
    State(state): State<Arc<WebState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.web_token.as_deref() else {
        return next.run(request).await;
    };
    if OPEN_PATHS.contains(&request.uri().path()) || authorized(request.headers(), token) {
        return next.run(request).await;
    }
    let refused = if request.headers().contains_key(AUTHORIZATION) {
        "the token given is not accepted"
    } else {
        "authentication required: send Authorization: Bearer TOKEN, or HTTP basic auth with \
         the token as password"
    };
    let mut response = json_error(StatusCode::UNAUTHORIZED, refused).into_response();
    let headers = response.headers_mut();
    // An unauthenticated client does not keep its connection.
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="rkms", charset="UTF-8""#),
    );
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="rkms""#),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_loopback_needs_a_token_or_public() {
        assert!(needs_token(addr("127.0.0.1:8080"), false, None).is_ok());
        assert!(needs_token(addr("[::1]:8080"), false, None).is_ok());
        let e = needs_token(addr("0.0.0.0:8080"), false, None).unwrap_err();
        assert!(
            e.contains("--web-token") && e.contains("--web-public"),
            "{e}"
        );
        assert!(needs_token(addr("0.0.0.0:8080"), true, None).is_ok());
        assert!(needs_token(addr("192.0.2.1:8080"), false, Some("s3cret")).is_ok());
        assert!(needs_token(addr("127.0.0.1:8080"), false, Some(" ")).is_err());
    }

    #[test]
    fn tokens_clients_cannot_send_are_refused() {
        assert!(check_token("s3cret-Token_1.~").is_ok());
        assert!(check_token("two words").is_ok(), "inner spaces travel");
        for (bad, says) in [
            (" s3cret", "space"),
            ("s3cret ", "space"),
            ("s3cret\t", "space"),
            ("s3\u{7}cret", "control character (U+0007) at position 3"),
            ("s3cr\u{e9}t", "non-ASCII character (U+00E9) at position 5"),
            ("", "empty"),
        ] {
            let e = check_token(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(
                bad.trim().is_empty() || !e.contains(bad.trim()),
                "never shown: {e}"
            );
        }
        assert!(access_notice(addr("0.0.0.0:80"), true, None).contains("PUBLIC"));
    }

    #[test]
    fn bearer_and_basic() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok"));
        assert!(authorized(&h, "tok"));
        assert!(!authorized(&h, "tok2"));
        // "anyone:tok"
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YW55b25lOnRvaw=="),
        );
        assert!(authorized(&h, "tok"));
        assert!(!authorized(&h, "other"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(!authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Digest tok"));
        assert!(!authorized(&h, "tok"));
    }
}
