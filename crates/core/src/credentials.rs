//! Model provider keys that tenants bring, sealed at rest with XChaCha20-Poly1305 under the
//! operator's master key.
//!
//! A sealed credential is `v1:` + base64(24-byte random nonce ‖ ciphertext ‖ tag). The
//! associated data binds it to its tenant and provider, so a sealed value copied to another
//! row (or tenant) does not open. Keys never leave this module in the clear except to the
//! provider call that uses them; the API shows only a hint (`sk-…4f2a`).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::time::Timestamp;

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 24;
/// The longest provider key accepted.
pub const MAX_KEY_CHARS: usize = 512;

/// What the API shows of a stored provider key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CredentialInfo {
    /// The provider name, as in `provider/model`.
    pub provider: String,
    /// The key's first three and last four characters.
    pub hint: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A provider key sealed for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredential {
    pub provider: String,
    pub sealed: String,
    pub hint: String,
    pub at: Timestamp,
}

/// Parses a 32-byte master key given as base64 (standard or URL-safe) or 64 hex digits.
pub fn parse_master_key(text: &str) -> Result<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .ok()
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            Error::invalid(
                "master_key",
                "must be 32 bytes as base64 or 64 hex digits (openssl rand -base64 32)",
            )
        })
}

/// A fresh random master key, base64.
pub fn generate_master_key() -> String {
    let mut key = [0u8; 32];
    crate::id::random_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Seals and opens provider keys.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

fn associated_data(tenant: &TenantId, provider: &str) -> String {
    format!("frontdesk/provider-credential/v1|{tenant}|{provider}")
}

fn server_data(name: &str) -> String {
    format!("frontdesk/server-secret/v1|{name}")
}

impl Sealer {
    pub fn new(master_key: [u8; 32]) -> Self {
        Self {
            key: std::sync::Arc::new(SecretBox::new(Box::new(master_key))),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.expose_secret().into())
    }

    /// Seals `secret` for `tenant`'s `provider`.
    pub fn seal(&self, tenant: &TenantId, provider: &str, secret: &str) -> Result<String> {
        self.seal_with(&associated_data(tenant, provider), secret)
    }

    /// Seals one of the server's own secrets (not a tenant's), under its `name`.
    pub fn seal_server(&self, name: &str, secret: &str) -> Result<String> {
        self.seal_with(&server_data(name), secret)
    }

    /// Opens what `seal_server` made under the same name.
    pub fn open_server(&self, name: &str, sealed: &str) -> Result<SecretString> {
        self.open_with(&server_data(name), name, sealed)
    }

    /// Whether a stored value is sealed (rather than a value kept in the clear before).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(VERSION)
    }

    fn seal_with(&self, aad: &str, secret: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::id::random_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::internal(std::io::Error::other("sealing failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(format!(
            "{VERSION}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Opens what `seal` made for the same tenant and provider. Anything else (another
    /// tenant's row, another master key, tampering) fails without saying more.
    pub fn open(&self, tenant: &TenantId, provider: &str, sealed: &str) -> Result<SecretString> {
        self.open_with(&associated_data(tenant, provider), provider, sealed)
    }

    fn open_with(&self, aad: &str, provider: &str, sealed: &str) -> Result<SecretString> {
        let broken = || {
            Error::internal(std::io::Error::other(format!(
                "the stored key for provider `{provider}` cannot be opened (was the master key changed?)"
            )))
        };
        let bytes = sealed
            .strip_prefix(VERSION)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(broken)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| broken())?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| broken())
    }
}

/// The sealer for this configuration: from `master_key`; else, on SQLite, from
/// `<data_dir>/master.key` (made on first use, readable by its owner only); else none.
pub fn sealer_for(config: &crate::config::Config) -> Result<Option<Sealer>> {
    if let Some(key) = &config.master_key {
        return Ok(Some(Sealer::new(parse_master_key(key.expose_secret())?)));
    }
    if !config.database_url().starts_with("sqlite:") {
        return Ok(None);
    }
    let path = config.data_dir.join("master.key");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_new_key(&path)?;
            std::fs::read_to_string(&path).map_err(Error::internal)?
        }
        Err(e) => return Err(Error::internal(e)),
    };
    parse_master_key(&text).map(|key| Some(Sealer::new(key)))
}

/// Writes a new random key to `path` unless another process just did.
fn write_new_key(path: &std::path::Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::internal)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => file
            .write_all(generate_master_key().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::internal),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::internal(e)),
    }
}

/// The hint shown for a key: its first three and last four characters.
pub fn hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".to_owned();
    }
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_tenant_provider_and_key() {
        let sealer = Sealer::new(parse_master_key(&generate_master_key()).unwrap());
        let tenant = TenantId::new();
        let sealed = sealer
            .seal(&tenant, "openai", "sk-proj-abcdef123456")
            .unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("abcdef123456"));
        let opened = sealer.open(&tenant, "openai", &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "sk-proj-abcdef123456");
        // Sealing twice gives different ciphertexts (random nonces).
        assert_ne!(
            sealed,
            sealer
                .seal(&tenant, "openai", "sk-proj-abcdef123456")
                .unwrap()
        );

        assert!(sealer.open(&TenantId::new(), "openai", &sealed).is_err());
        assert!(sealer.open(&tenant, "anthropic", &sealed).is_err());
        let other = Sealer::new([7u8; 32]);
        assert!(other.open(&tenant, "openai", &sealed).is_err());
        // Another last character (the same one would leave it untampered, 1 time in 64).
        let mut tampered = sealed.clone();
        let last = tampered.pop();
        tampered.push(if last == Some('A') { 'B' } else { 'A' });
        assert!(sealer.open(&tenant, "openai", &tampered).is_err());
        assert!(sealer.open(&tenant, "openai", "v1:").is_err());
    }

    #[test]
    fn master_keys_parse_from_base64_or_hex() {
        assert!(parse_master_key(&"ab".repeat(32)).is_ok());
        assert!(parse_master_key(&generate_master_key()).is_ok());
        assert!(parse_master_key("short").is_err());
        assert!(parse_master_key(&"ab".repeat(31)).is_err());
        assert_eq!(hint("sk-proj-abcdef123456"), "sk-…3456");
        assert_eq!(hint("tiny"), "…");
    }
}
