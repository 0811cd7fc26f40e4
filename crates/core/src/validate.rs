//! Small validation helpers shared by the domain types. Each names the field it checks.

use crate::error::{Error, Result};

/// Fails when `value` has more than `max` characters.
pub fn max_chars(field: &str, value: &str, max: usize) -> Result<()> {
    let count = value.chars().count();
    if count > max {
        return Err(Error::invalid(
            field,
            format!("is {count} characters long; the limit is {max}"),
        ));
    }
    Ok(())
}

/// Fails when `value` is empty or only whitespace, or longer than `max` characters.
pub fn non_empty(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    max_chars(field, value, max)
}

/// Fails when a list has more than `max` entries.
pub fn max_items<T>(field: &str, items: &[T], max: usize) -> Result<()> {
    if items.len() > max {
        return Err(Error::invalid(
            field,
            format!("has {} entries; the limit is {max}", items.len()),
        ));
    }
    Ok(())
}

/// A slug: 1–64 characters of `a-z`, `0-9` and `-`, starting with a letter or digit.
pub fn slug(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && value.as_bytes().first().is_some_and(|b| *b != b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "`{}` is not a slug (1-64 characters of a-z, 0-9 and '-', not starting with '-')",
                truncate(value, 80)
            ),
        ))
    }
}

/// A tool or function name as model providers accept it: 1–64 of `A-Za-z0-9_-`.
pub fn tool_name(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "`{}` is not a valid name (1-64 characters of A-Z, a-z, 0-9, '_' and '-')",
                truncate(value, 80)
            ),
        ))
    }
}

/// An absolute `http` or `https` URL without credentials.
pub fn http_url(field: &str, value: &str) -> Result<()> {
    max_chars(field, value, 2048)?;
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| Error::invalid(field, "must be an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || value.contains(char::is_whitespace) {
        return Err(Error::invalid(
            field,
            "must be an absolute URL with a host and no credentials or spaces",
        ));
    }
    Ok(())
}

/// The first `max` characters of `value`, for messages that quote input.
pub fn truncate(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for (input, ok) in [
            ("support", true),
            ("a-1", true),
            ("-a", false),
            ("A", false),
            ("", false),
            ("a_b", false),
            (&"a".repeat(65), false),
        ] {
            assert_eq!(slug("slug", input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn urls() {
        for (input, ok) in [
            ("https://example.com/hook", true),
            ("http://localhost:9000", true),
            ("ftp://example.com", false),
            ("https://", false),
            ("https://user:pw@example.com", false),
            ("https://exa mple.com", false),
        ] {
            assert_eq!(http_url("url", input).is_ok(), ok, "{input}");
        }
    }
}
