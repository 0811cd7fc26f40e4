//! Tenants (organisations), users, their roles, and password hashing.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{random_bytes, TenantId, UserId};
use crate::time::Timestamp;
use crate::validate;

/// An organisation using frontdesk. Every other object belongs to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Monthly token quota; `None` means unlimited.
    pub monthly_token_quota: Option<i64>,
    pub created_at: Timestamp,
}

/// A person who can sign in to the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: Timestamp,
    /// The picture staff replies show to visitors (an `http(s)` URL); initials without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// What a member may do in a tenant, from most to least powerful.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Editor,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(Error::invalid(
                "role",
                format!("`{other}` is not one of owner, admin, editor, viewer"),
            )),
        }
    }
}

/// A user's role in one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: Timestamp,
}

/// Normalises and checks an email address (lowercased, trimmed, one `@`, no spaces).
pub fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    validate::max_chars("email", &email, 254)?;
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err(Error::invalid(
            "email",
            format!("`{}` is not an email address", raw.trim()),
        ))
    }
}

/// A random password for generated logins: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    random_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Hashes a password with argon2id (PHC string with its own salt and parameters).
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < 8 {
        return Err(Error::invalid("password", "must be at least 8 characters"));
    }
    validate::max_chars("password", password, 256)?;
    let mut salt_bytes = [0u8; 16];
    random_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| Error::internal(anyhow::anyhow!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2: {e}")))
}

/// Checks a password against a stored argon2 hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let password = generate_password();
        assert_eq!(password.len(), 20);
        let hash = hash_password(&password).unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&password, &hash));
        assert!(!verify_password("wrong password", &hash));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn emails_are_normalised() {
        let cases = [
            (" Ada@Example.COM ", Some("ada@example.com")),
            ("ada@example", None),
            ("@example.com", None),
            ("ada example@example.com", None),
            ("ada@@example.com", None),
        ];
        for (input, expect) in cases {
            assert_eq!(normalize_email(input).ok().as_deref(), expect, "{input}");
        }
    }
}
