//! Prefixed, sortable, unguessable identifiers (`ten_…`, `agt_…`, `conv_…`, …).
//!
//! An id is a type prefix, an underscore and 26 lowercase Crockford base32 characters
//! encoding 128 bits: 48 bits of Unix milliseconds (so ids sort by creation time) followed
//! by 80 random bits from the operating system (so ids cannot be guessed). Each kind of id
//! is its own type with a private field: an `AgentId` cannot be passed where a
//! `ConversationId` is expected, and one is only made by minting or by `parse`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// Fills `buf` from the operating system's random source.
///
/// Failure of the OS random source is not recoverable for a service that mints
/// secrets, so it aborts the process rather than handing out weak values.
pub fn random_bytes(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        std::process::abort();
    }
}

/// Encodes 128 bits as 26 Crockford base32 characters, most significant first.
fn encode_u128(mut value: u128) -> String {
    let mut out = [0u8; BODY_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Whether `b` is in [`ALPHABET`]: the digits and the lowercase letters but i, l, o and u
/// (a comparison per byte; searching the alphabet cost more than the rest of a parse).
fn is_base32(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'h' | b'j' | b'k' | b'm' | b'n' | b'p'..=b't' | b'v'..=b'z')
}

fn is_body(body: &str) -> bool {
    body.len() == BODY_LEN
        && body.bytes().all(is_base32)
        // 26 * 5 = 130 bits: the first character may only carry the top 3 bits.
        && body.as_bytes().first().is_some_and(|&b| b <= b'7')
}

/// Mints a new id body: 48 bits of milliseconds, then 80 random bits.
pub fn new_body() -> String {
    let millis = Timestamp::now().as_millis().max(0) as u128 & ((1u128 << 48) - 1);
    let mut random = [0u8; 10];
    random_bytes(&mut random);
    let mut value = millis << 80;
    for (idx, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - idx));
    }
    encode_u128(value)
}

/// A malformed id: wrong prefix or wrong body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a valid {kind} id (expected `{prefix}_` followed by 26 base32 characters)"
)]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with (without the underscore).
            pub const PREFIX: &'static str = $prefix;

            /// Mints a fresh id.
            pub fn new() -> Self {
                Self(format!("{}_{}", $prefix, new_body()))
            }

            /// Parses an id received from outside, checking prefix and body.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                match value.strip_prefix(concat!($prefix, "_")) {
                    Some(body) if is_body(body) => Ok(Self(value.to_owned())),
                    _ => Err(IdError { kind: $kind, prefix: $prefix, value: value.chars().take(80).collect() }),
                }
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $kind, " id: `", $prefix, "_` followed by 26 base32 characters.")))
                    .examples([serde_json::json!(concat!($prefix, "_01jd8x5k7m3q4r5s6t7v8w9x0y"))])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

define_id!(/// A tenant (organisation).
    TenantId, "ten", "tenant");
define_id!(/// A user who can sign in to the dashboard.
    UserId, "usr", "user");
define_id!(/// An API key (secret or publishable).
    KeyId, "key", "API key");
define_id!(/// An agent.
    AgentId, "agt", "agent");
define_id!(/// A conversation.
    ConversationId, "conv", "conversation");
define_id!(/// A message in a conversation.
    MessageId, "msg", "message");
define_id!(/// A run (one turn of an agent).
    RunId, "run", "run");
define_id!(/// A knowledge base: a tenant's documents an agent answers from.
    KnowledgeBaseId, "kb", "knowledge base");
define_id!(/// An uploaded document.
    DocumentId, "doc", "document");
define_id!(/// A voice call (a phone call or a browser voice session).
    CallId, "call", "call");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_test_is_the_alphabet() {
        for b in 0..=u8::MAX {
            assert_eq!(is_base32(b), ALPHABET.contains(&b), "byte {b}");
        }
    }

    #[test]
    fn minted_ids_parse_back_and_sort_by_time() {
        let first = ConversationId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ConversationId::new();
        assert!(first.as_str().starts_with("conv_"));
        assert_eq!(first.as_str().len(), "conv_".len() + 26);
        assert_eq!(ConversationId::parse(first.as_str()), Ok(first.clone()));
        assert!(first < second, "{first} should sort before {second}");
    }

    #[test]
    fn parse_rejects_bad_ids() {
        let good = AgentId::new();
        let cases = [
            ("", false),
            ("agt_", false),
            ("conv_01jd8x5k7m3q4r5s6t7v8w9x0y", false),
            ("agt_01jd8x5k7m3q4r5s6t7v8w9x0", false),
            ("agt_01jd8x5k7m3q4r5s6t7v8w9x0yy", false),
            ("agt_01JD8X5K7M3Q4R5S6T7V8W9X0Y", false),
            ("agt_01jd8x5k7m3q4r5s6t7v8w9x0u", false),
            ("agt_91jd8x5k7m3q4r5s6t7v8w9x0y", false),
            ("agt_01jd8x5k7m3q4r5s6t7v8w9x0y", true),
            (good.as_str(), true),
        ];
        for (input, ok) in cases {
            assert_eq!(AgentId::parse(input).is_ok(), ok, "input {input:?}");
        }
    }

    #[test]
    fn ids_are_unique() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| MessageId::new()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
