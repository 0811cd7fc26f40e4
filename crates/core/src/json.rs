//! JSON decoding that names the offending field in its error.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Deserializes `value`, turning a failure into a 422 that names the field path.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // serde reports unknown fields at the parent; name the field itself.
        let field = match unknown_field_name(&message) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) if path == name || path.ends_with(&format!(".{name}")) => path,
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        Error::invalid(field, message)
    })
}

/// The field an "unknown field" or "missing field" message is about.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}

/// Parses a request body: malformed JSON is a 400, a wrong shape a 422 naming the field.
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Error::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(Error::invalid("body", "the body must be a JSON object"));
    }
    from_value(value)
}
