//! Widget visitors: a publishable key and an allowed `Origin` get a visitor token, signed by
//! the server, naming the tenant, the key, the visitor and the end user it acts as. Every
//! widget request carries it; the visitor reaches only conversations of its end user.
//!
//! A tenant can say who its signed-in users are: it signs a JWT (HS256, `sub` = its user id,
//! `exp`) with its widget identity secret and passes it to `Frontdesk.identify(token)`; the
//! visitor then acts as `user:<sub>` instead of an anonymous `visitor:<id>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{KeyId, TenantId};

/// How long a visitor token lives.
pub const TOKEN_SECS: i64 = 24 * 3600;
/// How long after it expired a token may still renew its visitor (the same visitor id).
pub const RENEW_SECS: i64 = 30 * 24 * 3600;
const PREFIX: &str = "fdv1";

/// What a visitor token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    #[serde(rename = "t")]
    pub tenant: TenantId,
    /// The publishable key that opened the session; none on a hosted page.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyId>,
    /// The agent whose hosted page opened the session (the only one it may talk to).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// `vis_…`, stable across the visitor's sessions on this browser.
    #[serde(rename = "v")]
    pub visitor: String,
    /// Who the visitor acts as: `visitor:<id>`, or `user:<sub>` once identified.
    #[serde(rename = "u")]
    pub end_user: String,
    /// The identified user's claims beside the registered ones (`sub`, `exp`, …): part of
    /// the run's context, signed by the tenant.
    #[serde(
        rename = "c",
        default,
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    pub context: serde_json::Map<String, serde_json::Value>,
    /// Expiry, unix seconds.
    pub exp: i64,
}

/// HMAC-SHA256 of `message` under `key`.
fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length.
        Err(_) => Vec::new(),
    }
}

/// Whether `signature` is the HMAC-SHA256 of `message` under `key` (compared in constant time).
fn verify_mac(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    Hmac::<sha2::Sha256>::new_from_slice(key).is_ok_and(|mut mac| {
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    })
}

fn unauthenticated(code: &'static str, message: &str) -> Error {
    Error::Unauthenticated {
        code,
        message: message.to_owned(),
    }
}

/// Signs claims into a token.
pub fn sign(secret: &[u8], claims: &VisitorClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signed = format!("{PREFIX}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// Checks a token's signature; `grace` seconds past its expiry are still accepted (for
/// renewing a visitor), none for requests.
pub fn verify(secret: &[u8], token: &str, now: i64, grace: i64) -> Result<VisitorClaims> {
    let invalid = || {
        unauthenticated(
            "invalid_visitor_token",
            "the visitor token is not valid; start a new widget session",
        )
    };
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let given = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
    if !verify_mac(secret, format!("{PREFIX}.{payload}").as_bytes(), &given) {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
    let claims: VisitorClaims = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if claims.exp + grace < now {
        return Err(unauthenticated(
            "visitor_token_expired",
            "the visitor token expired; start a new widget session",
        ));
    }
    Ok(claims)
}

#[derive(Deserialize)]
struct UserClaims {
    sub: String,
    exp: i64,
    /// Everything else the tenant put in.
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// JWT claims that say something about the token, not about the user.
const REGISTERED_CLAIMS: [&str; 5] = ["iat", "nbf", "iss", "aud", "jti"];

/// Most bytes of claims (as JSON) a user token may bring into the run's context: they ride
/// in the visitor token on every widget request.
pub const MAX_USER_CLAIMS_BYTES: usize = 2 * 1024;

/// An identified user: the token's `sub` and its other claims.
#[derive(Debug, Clone, PartialEq)]
pub struct UserIdentity {
    pub sub: String,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// Checks a tenant's user token (a JWT signed HS256 with its widget identity secret) and
/// returns who it names, with its claims beside `sub` and `exp` (registered JWT claims such
/// as `iat` left out).
pub fn verify_user_token(secret: &str, token: &str, now: i64) -> Result<UserIdentity> {
    let invalid = || {
        Error::invalid(
            "user_token",
            "is not a valid HS256 JWT signed with the tenant's widget identity secret",
        )
    };
    let mut parts = token.split('.');
    let (Some(head), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    if header["alg"] != "HS256" {
        return Err(invalid());
    }
    let given = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
    if !verify_mac(
        secret.as_bytes(),
        format!("{head}.{payload}").as_bytes(),
        &given,
    ) {
        return Err(invalid());
    }
    let claims: UserClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    if claims.exp < now {
        return Err(Error::invalid("user_token", "has expired"));
    }
    crate::validate::non_empty("user_token.sub", &claims.sub, 200)?;
    let mut extra = claims.extra;
    for registered in REGISTERED_CLAIMS {
        extra.remove(registered);
    }
    let size = serde_json::to_vec(&extra).map_or(usize::MAX, |v| v.len());
    if size > MAX_USER_CLAIMS_BYTES {
        return Err(Error::invalid(
            "user_token",
            format!("carries {size} bytes of claims; the limit is {MAX_USER_CLAIMS_BYTES}"),
        ));
    }
    Ok(UserIdentity {
        sub: claims.sub,
        claims: extra,
    })
}

/// Signs a user token the way a tenant's backend would (tests, docs).
pub fn sign_user_token(secret: &str, sub: &str, exp: i64) -> String {
    sign_user_claims(secret, &serde_json::json!({"sub": sub, "exp": exp}))
}

/// Signs a user token with any claims (`sub` and `exp` among them).
pub fn sign_user_claims(secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(mac(
        secret.as_bytes(),
        format!("{header}.{payload}").as_bytes(),
    ));
    format!("{header}.{payload}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> VisitorClaims {
        VisitorClaims {
            tenant: TenantId::new(),
            key: Some(KeyId::new()),
            page: None,
            visitor: "vis_1".into(),
            end_user: "visitor:vis_1".into(),
            context: serde_json::Map::new(),
            exp,
        }
    }

    #[test]
    fn tokens_verify_only_unchanged_unexpired_and_with_the_right_secret() {
        let token = sign(b"secret", &claims(1_000));
        assert_eq!(
            verify(b"secret", &token, 999, 0).map(|c| c.visitor).ok(),
            Some("vis_1".into())
        );
        assert!(verify(b"other", &token, 999, 0).is_err());
        assert!(verify(b"secret", &token, 1_001, 0).is_err());
        assert!(verify(b"secret", &token, 1_001, 10).is_ok());
        let mut tampered = token.clone();
        tampered.insert(10, 'x');
        assert!(verify(b"secret", &tampered, 999, 0).is_err());
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(mac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn user_tokens_are_checked() {
        let token = sign_user_token("idsecret", "user-42", 2_000);
        assert_eq!(
            verify_user_token("idsecret", &token, 1_000)
                .ok()
                .map(|user| user.sub),
            Some("user-42".into())
        );
        assert!(verify_user_token("wrong", &token, 1_000).is_err());
        assert!(verify_user_token("idsecret", &token, 3_000).is_err());
        assert!(verify_user_token("idsecret", "a.b", 1_000).is_err());
    }

    #[test]
    fn a_user_tokens_own_claims_come_along_and_registered_ones_do_not() {
        let token = sign_user_claims(
            "idsecret",
            &serde_json::json!({"sub": "u1", "exp": 2_000, "iat": 1, "iss": "shop",
                                "client_name": "Acme Dental", "plan": {"tier": "gold"}}),
        );
        let user =
            verify_user_token("idsecret", &token, 1_000).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(user.sub, "u1");
        assert_eq!(
            serde_json::Value::Object(user.claims),
            serde_json::json!({"client_name": "Acme Dental", "plan": {"tier": "gold"}})
        );
        let heavy = sign_user_claims(
            "idsecret",
            &serde_json::json!({"sub": "u1", "exp": 2_000, "notes": "x".repeat(MAX_USER_CLAIMS_BYTES)}),
        );
        assert!(verify_user_token("idsecret", &heavy, 1_000).is_err());
    }
}
