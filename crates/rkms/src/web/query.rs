//! Strict query-string parsing for the API and the pages: unknown, repeated or malformed
//! parameters are refused with a message naming them (400), empty values count as absent.

use uuid::Uuid;

use super::error::WebError;

/// The decoded `name=value` pairs of a query string, checked against the names a route takes.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `query` (without `?`) and refuses names not in `allowed` and repeated names.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, WebError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                let expected = if allowed.is_empty() {
                    "this address takes no query parameters".to_owned()
                } else {
                    format!("expected one of: {}", allowed.join(", "))
                };
                return Err(WebError::BadRequest(format!(
                    "unknown query parameter '{name}' ({expected})"
                )));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(WebError::BadRequest(format!(
                    "query parameter '{name}' is given more than once"
                )));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, trimmed; `None` when absent or empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `name` as an integer in `min..=max`.
    pub fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, WebError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(WebError::BadRequest(format!(
                "query parameter '{name}' must be a whole number from {min} to {max}, not '{text}'"
            ))),
        }
    }

    /// `name` as a GUID.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, WebError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let bare = text.trim_start_matches('{').trim_end_matches('}');
        Uuid::parse_str(bare).map(Some).map_err(|_| {
            WebError::BadRequest(format!(
                "query parameter '{name}' must be a GUID such as \
                 55c92734-d682-4d71-983e-d6ec3f16059f, not '{text}'"
            ))
        })
    }

    /// `name` as one of `choices` (case-insensitive), returned as written in `choices`.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, WebError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(text))
            .copied()
            .map(Some)
            .ok_or_else(|| {
                WebError::BadRequest(format!(
                    "query parameter '{name}' must be one of {}, not '{text}'",
                    choices.join(", ")
                ))
            })
    }
}

/// Parses a GUID in a path segment (`/clients/{cmid}`), with a 400 naming it otherwise.
pub fn path_uuid(what: &str, text: &str) -> Result<Uuid, WebError> {
    let bare = text.trim_start_matches('{').trim_end_matches('}');
    Uuid::parse_str(bare)
        .map_err(|_| WebError::BadRequest(format!("'{text}' is not a valid {what} (a GUID)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parameters() {
        let p = Params::parse(Some("q=PC%201&limit=5&empty="), &["q", "limit", "empty"]).unwrap();
        assert_eq!(p.text("q"), Some("PC 1"));
        assert_eq!(p.text("empty"), None);
        assert_eq!(p.integer("limit", 1, 10).unwrap(), Some(5));
        assert!(p.integer("limit", 6, 10).is_err());
        assert!(Params::parse(Some("x=1"), &["q"]).is_err());
        assert!(Params::parse(Some("q=1&q=2"), &["q"]).is_err());
        let p = Params::parse(Some("id=nope&c=Asc"), &["id", "c"]).unwrap();
        assert!(p.uuid("id").is_err());
        assert_eq!(p.choice("c", &["asc", "desc"]).unwrap(), Some("asc"));
        assert!(p.choice("c", &["desc"]).is_err());
        assert!(path_uuid("CMID", "{55c92734-d682-4d71-983e-d6ec3f16059f}").is_ok());
        assert!(path_uuid("CMID", "x").is_err());
    }
}
