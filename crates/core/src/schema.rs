//! JSON Schema: checking that a schema a tenant wrote compiles, and validating values (tool
//! arguments, structured answers) against it with errors a model or a person can act on.
//! Remote `$ref`s are not fetched (no outbound request hides in a schema).

use serde_json::Value;

use crate::error::{Error, Result};

/// A compiled schema.
#[derive(Debug)]
pub struct Schema(jsonschema::Validator);

/// Most errors listed for one value.
const MAX_ERRORS: usize = 5;

/// Compiles `schema`; a schema that does not compile is a 400 naming `field`.
pub fn compile(field: &str, schema: &Value) -> Result<Schema> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map(Schema)
        .map_err(|e| Error::invalid(field, format!("not a valid JSON Schema: {e}")))
}

impl Schema {
    /// `Ok` when `value` matches; else a short description of the first few mismatches,
    /// each with where it is (`/items/0/qty: …`).
    pub fn check(&self, value: &Value) -> std::result::Result<(), String> {
        let errors: Vec<String> = self
            .0
            .iter_errors(value)
            .take(MAX_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_checked_with_their_path() {
        let schema = compile(
            "s",
            &json!({"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}, "required": ["qty"]}),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(schema.check(&json!({"qty": 2})).is_ok());
        let error = schema.check(&json!({"qty": 0})).unwrap_err();
        assert!(error.starts_with("/qty: "), "{error}");
        assert!(schema.check(&json!({})).unwrap_err().contains("qty"));
        assert!(compile("f", &json!({"type": "nonsense"})).is_err());
    }
}
