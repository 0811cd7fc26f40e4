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
    let mut value = value;
    whole_numbers_as_integers(&mut value);
    from_value(value)
}

/// `8.0` and `1e2` are integers to JSON (and to JSON Schema's `integer`), but serde refuses
/// them for integer fields; they become `8` and `100`. Other numbers stay as they are.
fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64() {
                // Exactly representable whole numbers only (|x| < 2^53).
                if float.fract() == 0.0 && float.abs() < 9_007_199_254_740_992.0 {
                    *value = Value::from(float as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        top_k: u32,
        temperature: f64,
    }

    #[test]
    fn whole_numbers_in_float_form_read_as_integers() {
        let counts: Counts = super::from_body(br#"{"top_k": 8.0, "temperature": 0.5}"#).unwrap();
        assert_eq!((counts.top_k, counts.temperature), (8, 0.5));
        let counts: Counts = super::from_body(br#"{"top_k": 1e2, "temperature": 1}"#).unwrap();
        assert_eq!((counts.top_k, counts.temperature), (100, 1.0));
        assert!(super::from_body::<Counts>(br#"{"top_k": 8.5, "temperature": 1}"#).is_err());
    }
}
