//! Errors of web handlers and their responses: a JSON body `{"error": "..."}` for the API, an
//! HTML page for the dashboard.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::layout::Chrome;

/// Why a request could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebError {
    /// A bad query parameter or path segment (400).
    BadRequest(String),
    /// Nothing at this address (404).
    NotFound(String),
    /// The client store failed (500).
    Store(String),
}

impl WebError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown.
    pub fn message(&self) -> &str {
        match self {
            WebError::BadRequest(m) | WebError::NotFound(m) | WebError::Store(m) => m,
        }
    }
}

impl From<rkms_store::StoreError> for WebError {
    fn from(e: rkms_store::StoreError) -> Self {
        WebError::Store(format!("client store: {e}"))
    }
}

/// A JSON error response: `status` with body `{"error": message}`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// A [`WebError`] answered as JSON (API routes).
#[derive(Debug)]
pub struct ApiError(pub WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.0.status(), self.0.message())
    }
}

/// A [`WebError`] answered as an HTML page (dashboard routes).
#[derive(Debug)]
pub struct PageError(pub WebError);

impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        PageError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let page = ErrorPage {
            chrome: Chrome::new(status.canonical_reason().unwrap_or("Error"), ""),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.0.message(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.0.message().to_owned()).into_response(),
        }
    }
}

/// Renders a page template, or a 500 page naming the template error.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("rendering failed: {e}"),
        ),
    }
}
