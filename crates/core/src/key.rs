//! API keys: secret keys (`fd_sk_…`) act for a tenant on the server side; publishable keys
//! (`fd_pk_…`) are for the widget, limited to named agents and allowed origins.
//!
//! A key is shown once when created. The store keeps only its SHA-256 (keys carry 160 random
//! bits, so a fast hash is enough and keeps authentication cheap) and a short display prefix.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::id::{random_bytes, KeyId, TenantId};
use crate::time::Timestamp;
use crate::validate;

/// Which kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Secret,
    Publishable,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "fd_sk_",
            KeyKind::Publishable => "fd_pk_",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "secret" => Ok(KeyKind::Secret),
            "publishable" => Ok(KeyKind::Publishable),
            other => Err(Error::invalid(
                "kind",
                format!("`{other}` is not one of secret, publishable"),
            )),
        }
    }
}

/// A key as stored and listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: KeyId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub kind: KeyKind,
    pub name: String,
    /// The first characters of the key, to recognise it (`fd_sk_3k9x2a`).
    pub prefix: String,
    pub allowed_origins: Vec<Origin>,
    /// Agent slugs a publishable key may reach; empty means all agents.
    pub allowed_agents: Vec<String>,
    /// Requests per minute; `None` uses the server default.
    pub rate_limit_per_minute: Option<u32>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The plaintext of a newly minted key. Shown once; its `Debug` is redacted.
#[derive(Clone)]
pub struct KeySecret(String);

impl KeySecret {
    /// Mints a new random key of the given kind.
    pub fn generate(kind: KeyKind) -> Self {
        let mut bytes = [0u8; 20];
        random_bytes(&mut bytes);
        const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
        let mut body = String::with_capacity(32);
        let mut bits: u32 = 0;
        let mut n_bits = 0;
        for byte in bytes {
            bits = (bits << 8) | u32::from(byte);
            n_bits += 8;
            while n_bits >= 5 {
                n_bits -= 5;
                body.push(ALPHABET[((bits >> n_bits) & 31) as usize] as char);
            }
        }
        Self(format!("{}{body}", kind.prefix()))
    }

    /// Wraps a key presented by a client.
    pub fn from_presented(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The key itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The kind this key's prefix names, if any.
    pub fn kind(&self) -> Option<KeyKind> {
        if self.0.starts_with(KeyKind::Secret.prefix()) {
            Some(KeyKind::Secret)
        } else if self.0.starts_with(KeyKind::Publishable.prefix()) {
            Some(KeyKind::Publishable)
        } else {
            None
        }
    }

    /// The hex SHA-256 the store keeps.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The display prefix the store keeps.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(12).collect()
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySecret({}…)", self.display_prefix())
    }
}

/// A web origin: `scheme://host[:port]`, lowercased, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "https://shop.example.com")]
pub struct Origin(String);

impl Origin {
    pub fn parse(raw: &str) -> Result<Self> {
        validate::max_chars("allowed_origins", raw, 300)?;
        let value = raw.trim().trim_end_matches('/').to_lowercase();
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or_else(|| {
                Error::invalid(
                    "allowed_origins",
                    format!(
                        "`{}` must start with http:// or https://",
                        validate::truncate(raw, 80)
                    ),
                )
            })?;
        if !is_host_and_port(rest) {
            return Err(Error::invalid(
                "allowed_origins",
                format!(
                    "`{}` is not an origin (scheme://host[:port], no path)",
                    validate::truncate(raw, 80)
                ),
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An origin as stored: checked when it was saved (by the rules of its day), so a rule
    /// tightened since cannot make a stored key unreadable.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
}

/// `host[:port]`: a host name of dot-separated labels (`a-z`, `0-9`, `-`) or a bracketed
/// IPv6 address, and a port of up to five digits.
fn is_host_and_port(rest: &str) -> bool {
    let (host, port) = match rest.strip_prefix('[') {
        Some(inner) => match inner.split_once(']') {
            Some((address, after)) => {
                let address_ok = !address.is_empty()
                    && address
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
                if !address_ok {
                    return false;
                }
                ("", after)
            }
            None => return false,
        },
        None => match rest.split_once(':') {
            Some((host, _)) => (host, &rest[host.len()..]),
            None => (rest, ""),
        },
    };
    let host_ok = host.is_empty() && rest.starts_with('[')
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(value: String) -> std::result::Result<Self, String> {
        Self::parse(&value).map_err(|error| match error {
            Error::InvalidField { message, .. } => message,
            other => other.to_string(),
        })
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> String {
        origin.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        for (raw, ok) in [
            ("https://shop.example.com", true),
            (" HTTPS://Shop.Example.com/ ", true),
            ("http://localhost:3000", true),
            ("http://[::1]:8080", true),
            ("http://[", false),
            ("http://[::1", false),
            ("http://a..b", false),
            ("http://a:port", false),
            ("http://a:123456", false),
            ("https://shop.example.com/path", false),
            ("shop.example.com", false),
        ] {
            assert_eq!(Origin::parse(raw).is_ok(), ok, "{raw}");
        }
    }

    #[test]
    fn generated_keys_have_prefix_kind_and_stable_hash() {
        let key = KeySecret::generate(KeyKind::Secret);
        assert!(key.expose().starts_with("fd_sk_"));
        assert_eq!(key.expose().len(), 6 + 32);
        assert_eq!(key.kind(), Some(KeyKind::Secret));
        assert_eq!(key.hash(), KeySecret::from_presented(key.expose()).hash());
        assert!(!format!("{key:?}").contains(&key.expose()[12..]));
        let publishable = KeySecret::generate(KeyKind::Publishable);
        assert_eq!(publishable.kind(), Some(KeyKind::Publishable));
        assert_ne!(publishable.hash(), key.hash());
        assert_eq!(KeySecret::from_presented("sk-openai").kind(), None);
    }

    #[test]
    fn origins() {
        let cases = [
            (
                "https://Shop.Example.com/",
                Some("https://shop.example.com"),
            ),
            ("http://localhost:3000", Some("http://localhost:3000")),
            ("shop.example.com", None),
            ("https://shop.example.com/path", None),
            ("https://", None),
        ];
        for (input, expect) in cases {
            assert_eq!(
                Origin::parse(input).ok().as_ref().map(Origin::as_str),
                expect,
                "{input}"
            );
        }
    }
}
