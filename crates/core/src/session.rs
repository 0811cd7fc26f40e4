//! Dashboard sign-in: server-side sessions, one-time links (invites and password resets),
//! and what each role may do.
//!
//! A session's cookie value and a link's token are random secrets shown once; the store
//! keeps only their SHA-256, so a copy of the database signs no one in.

use std::fmt;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::id::{random_bytes, TenantId, UserId};
use crate::tenant::Role;
use crate::time::Timestamp;

/// How long a session lives at most, however active (7 days).
pub const SESSION_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a session lives without a request (12 hours).
pub const SESSION_IDLE_MS: i64 = 12 * 3600 * 1000;
/// How often `last_seen_at` is written back (5 minutes): not on every page view.
pub const SESSION_TOUCH_MS: i64 = 5 * 60 * 1000;
/// How long an invite link works (7 days).
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a password reset link works (1 hour).
pub const RESET_TTL_MS: i64 = 3600 * 1000;

/// A random secret shown once (a session cookie, a link token); `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// 32 random bytes, base64url.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        random_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token presented by a client.
    pub fn presented(value: &str) -> Self {
        Self(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 the store keeps.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// A signed-in person's session, as the store keeps it (the cookie's hash is its key).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    /// The tenant the dashboard shows; the member switches it.
    pub tenant_id: TenantId,
    /// Sent back with every state-changing request (forms, `fetch`).
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub user_agent: String,
}

impl Session {
    /// Whether the session has lived too long or idled too long at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        let now = now.as_millis();
        now - self.created_at.as_millis() >= SESSION_MAX_AGE_MS
            || now - self.last_seen_at.as_millis() >= SESSION_IDLE_MS
    }
}

/// What a one-time link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// Joins a tenant with a role (and makes the user when new).
    Invite,
    /// Sets a user's password.
    Reset,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Invite => "invite",
            LinkKind::Reset => "reset",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "invite" => Some(LinkKind::Invite),
            "reset" => Some(LinkKind::Reset),
            _ => None,
        }
    }
}

/// A one-time link: an invite into a tenant or a password reset.
#[derive(Debug, Clone, PartialEq)]
pub struct SignInLink {
    pub token_hash: String,
    pub kind: LinkKind,
    /// The tenant an invite joins (`None` for a reset).
    pub tenant_id: Option<TenantId>,
    /// The user a reset is for (`None` for an invite).
    pub user_id: Option<UserId>,
    /// An invite's email, when the inviter named one (the invitee may not choose another).
    pub email: Option<String>,
    /// An invite's role.
    pub role: Option<Role>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

impl SignInLink {
    /// Whether the link can still be used at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.used_at.is_none() && now.as_millis() < self.expires_at.as_millis()
    }
}

/// Something a member does in the dashboard (and through it, the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See agents, conversations, runs, usage.
    Read,
    /// Create and edit agents and knowledge; chat in the playground; decide approvals.
    Edit,
    /// Manage keys, members, invites and settings.
    Administer,
    /// Delete the tenant's data wholesale, change owners.
    Own,
}

impl Role {
    /// Whether a member with this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Edit => self <= Role::Editor,
            Action::Administer => self <= Role::Admin,
            Action::Own => self == Role::Owner,
        }
    }

    /// Whether this role may give `other` to someone (never more than one's own).
    pub fn may_grant(self, other: Role) -> bool {
        self.allows(Action::Administer) && self <= other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_issue_says() {
        use Action::*;
        let table = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Editor, [true, true, false, false]),
            (Role::Admin, [true, true, true, false]),
            (Role::Owner, [true, true, true, true]),
        ];
        for (role, expected) in table {
            let got = [Read, Edit, Administer, Own].map(|a| role.allows(a));
            assert_eq!(got, expected, "{role:?}");
        }
        assert!(Role::Admin.may_grant(Role::Editor));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(!Role::Editor.may_grant(Role::Viewer));
        assert!(Role::Owner.may_grant(Role::Owner));
    }

    #[test]
    fn sessions_expire_by_age_and_by_idleness() {
        let start = Timestamp::from_millis(1_000_000);
        let mut session = Session {
            token_hash: Token::generate().hash(),
            user_id: UserId::new(),
            tenant_id: TenantId::new(),
            csrf_token: "c".into(),
            created_at: start,
            last_seen_at: start,
            user_agent: String::new(),
        };
        let at = |ms: i64| Timestamp::from_millis(1_000_000 + ms);
        assert!(!session.expired(at(SESSION_IDLE_MS - 1)));
        assert!(session.expired(at(SESSION_IDLE_MS)));
        session.last_seen_at = at(SESSION_MAX_AGE_MS - 1000);
        assert!(!session.expired(at(SESSION_MAX_AGE_MS - 1)));
        assert!(session.expired(at(SESSION_MAX_AGE_MS)));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), a.expose());
        assert_eq!(format!("{a:?}"), "Token(…)");
    }
}
