//! Dashboard sign-in and membership management: sessions, tenant switching, invites,
//! password resets, self-service sign-up, roles.

use std::sync::OnceLock;

use super::{NewTenant, NewUser, Service};
use crate::error::{Error, Result};
use crate::id::{TenantId, UserId};
use crate::session::{
    Action, LinkKind, Session, SignInLink, Token, INVITE_TTL_MS, RESET_TTL_MS, SESSION_TOUCH_MS,
};
use crate::store::NewMember;
use crate::tenant::{
    hash_password, normalize_email, verify_password, Membership, Role, Tenant, User,
};
use crate::time::Timestamp;
use crate::validate;

/// A new session: the cookie's value (shown once) and what the store keeps.
#[derive(Debug)]
pub struct SignedIn {
    pub token: Token,
    pub session: Session,
}

/// Who is behind a dashboard request: the session, the person, the tenant shown and their
/// role in it, and every tenant they can switch to.
#[derive(Debug, Clone)]
pub struct Staff {
    pub session: Session,
    pub user: User,
    pub tenant: Tenant,
    pub role: Role,
    pub tenants: Vec<(Membership, Tenant)>,
}

impl Staff {
    /// `Forbidden` unless the member's role allows `action`.
    pub fn require(&self, action: Action) -> Result<()> {
        if self.role.allows(action) {
            return Ok(());
        }
        let needed = match action {
            Action::Read => "viewer",
            Action::Edit => "editor",
            Action::Administer => "admin",
            Action::Own => "owner",
        };
        Err(Error::Forbidden {
            code: "role_not_allowed",
            message: format!(
                "your role in {} is {}; this needs {needed} or above",
                self.tenant.name,
                self.role.as_str()
            ),
        })
    }
}

/// What someone signing up (when the operator allows it) sends.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub organisation: String,
    pub email: String,
    pub name: Option<String>,
    pub password: String,
}

/// An invite being accepted: the invitee's login.
#[derive(Debug, Clone)]
pub struct AcceptInvite {
    pub email: String,
    pub name: Option<String>,
    pub password: String,
}

fn wrong_login() -> Error {
    Error::Unauthenticated {
        code: "invalid_login",
        message: "that email and password do not match an account".to_owned(),
    }
}

fn session_ended() -> Error {
    Error::Unauthenticated {
        code: "session_expired",
        message: "your session has ended; sign in again".to_owned(),
    }
}

fn link_unusable() -> Error {
    Error::NotFound {
        resource: "link (it may have expired or been used already)",
    }
}

/// A hash to check a password against when the email has no account, so that a wrong
/// email costs as long as a wrong password (no account discovery by timing).
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password at all").unwrap_or_default())
}

impl Service {
    /// Checks a login and opens a session on the user's first tenant.
    pub async fn sign_in(&self, email: &str, password: &str, user_agent: &str) -> Result<SignedIn> {
        let email = normalize_email(email).map_err(|_| wrong_login())?;
        let user = self
            .store
            .find_user_by_email(&email)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        let Some(user) = user else {
            let _ = verify_password(password, dummy_hash());
            return Err(wrong_login());
        };
        if !verify_password(password, &user.password_hash) {
            return Err(wrong_login());
        }
        let tenants = self.user_tenants(&user.id).await?;
        let Some((first, _)) = tenants.first() else {
            return Err(Error::Forbidden {
                code: "no_organisation",
                message: "this account belongs to no organisation; ask an owner for an invite"
                    .to_owned(),
            });
        };
        self.open_session(&user.id, &first.tenant_id, user_agent)
            .await
    }

    async fn open_session(
        &self,
        user: &UserId,
        tenant: &TenantId,
        user_agent: &str,
    ) -> Result<SignedIn> {
        let token = Token::generate();
        let now = Timestamp::now();
        let session = Session {
            token_hash: token.hash(),
            user_id: user.clone(),
            tenant_id: tenant.clone(),
            csrf_token: Token::generate().expose().to_owned(),
            created_at: now,
            last_seen_at: now,
            user_agent: user_agent.chars().take(200).collect(),
        };
        self.store
            .insert_session(&session)
            .await
            .map_err(|e| Error::from_store("session", e))?;
        Ok(SignedIn { token, session })
    }

    async fn user_tenants(&self, user: &UserId) -> Result<Vec<(Membership, Tenant)>> {
        self.store
            .user_memberships(user)
            .await
            .map_err(|e| Error::from_store("user", e))
    }

    /// The staff member behind a session cookie. An expired session is deleted; a session
    /// whose tenant the member left moves to another of their tenants, or ends.
    pub async fn staff(&self, cookie: &str) -> Result<Staff> {
        let hash = Token::presented(cookie).hash();
        let mut session = self
            .store
            .get_session(&hash)
            .await
            .map_err(|e| Error::from_store("session", e))?
            .ok_or_else(session_ended)?;
        let now = Timestamp::now();
        if session.expired(now) {
            self.sign_out(cookie).await?;
            return Err(session_ended());
        }
        if now.as_millis() - session.last_seen_at.as_millis() >= SESSION_TOUCH_MS {
            self.store
                .touch_session(&hash, now)
                .await
                .map_err(|e| Error::from_store("session", e))?;
            session.last_seen_at = now;
        }
        let user = self
            .store
            .get_user(&session.user_id)
            .await
            .map_err(|_| session_ended())?;
        let tenants = self.user_tenants(&user.id).await?;
        let current = tenants
            .iter()
            .find(|(m, _)| m.tenant_id == session.tenant_id)
            .or_else(|| tenants.first())
            .cloned();
        let Some((membership, tenant)) = current else {
            self.sign_out(cookie).await?;
            return Err(session_ended());
        };
        if membership.tenant_id != session.tenant_id {
            self.store
                .set_session_tenant(&hash, &membership.tenant_id)
                .await
                .map_err(|e| Error::from_store("session", e))?;
            session.tenant_id = membership.tenant_id.clone();
        }
        Ok(Staff {
            session,
            user,
            tenant,
            role: membership.role,
            tenants,
        })
    }

    /// Ends a session (signing out); an unknown one is already ended.
    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        self.store
            .delete_session(&Token::presented(cookie).hash())
            .await
            .map_err(|e| Error::from_store("session", e))
    }

    /// Shows another of the member's tenants; a tenant they do not belong to is a 404.
    pub async fn switch_tenant(&self, staff: &Staff, tenant: &TenantId) -> Result<()> {
        if !staff.tenants.iter().any(|(m, _)| &m.tenant_id == tenant) {
            return Err(Error::NotFound { resource: "tenant" });
        }
        self.store
            .set_session_tenant(&staff.session.token_hash, tenant)
            .await
            .map_err(|e| Error::from_store("session", e))
    }

    /// Creates an invite link into the staff member's tenant (admins and owners; never a
    /// role above one's own). The link is shown once.
    pub async fn create_invite(
        &self,
        staff: &Staff,
        email: Option<&str>,
        role: Role,
    ) -> Result<(Token, SignInLink)> {
        staff.require(Action::Administer)?;
        if !staff.role.may_grant(role) {
            return Err(Error::invalid(
                "role",
                format!(
                    "you cannot invite an {} (your role is {})",
                    role.as_str(),
                    staff.role.as_str()
                ),
            ));
        }
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(email) => Some(normalize_email(email)?),
            None => None,
        };
        let token = Token::generate();
        let now = Timestamp::now();
        let link = SignInLink {
            token_hash: token.hash(),
            kind: LinkKind::Invite,
            tenant_id: Some(staff.tenant.id.clone()),
            user_id: None,
            email,
            role: Some(role),
            created_by: Some(staff.user.id.clone()),
            created_at: now,
            expires_at: Timestamp::from_millis(now.as_millis() + INVITE_TTL_MS),
            used_at: None,
        };
        self.store
            .insert_link(&link)
            .await
            .map_err(|e| Error::from_store("invite", e))?;
        Ok((token, link))
    }

    /// A usable link of `kind` (for the page that accepts it), with an invite's tenant.
    pub async fn usable_link(
        &self,
        token: &str,
        kind: LinkKind,
    ) -> Result<(SignInLink, Option<Tenant>)> {
        let link = self
            .store
            .get_link(&Token::presented(token).hash())
            .await
            .map_err(|e| Error::from_store("link", e))?
            .filter(|link| link.kind == kind && link.usable(Timestamp::now()))
            .ok_or_else(link_unusable)?;
        let tenant = match &link.tenant_id {
            Some(id) => Some(self.get_tenant(id).await?),
            None => None,
        };
        Ok((link, tenant))
    }

    /// Joins the invite's tenant: a new email becomes a user with the given password; an
    /// existing account must give its own password. Signs the member in.
    pub async fn accept_invite(
        &self,
        token: &str,
        input: AcceptInvite,
        user_agent: &str,
    ) -> Result<SignedIn> {
        let (link, _) = self.usable_link(token, LinkKind::Invite).await?;
        let (Some(tenant), Some(role)) = (link.tenant_id.clone(), link.role) else {
            return Err(link_unusable());
        };
        let email = normalize_email(&input.email)?;
        if link
            .email
            .as_deref()
            .is_some_and(|invited| invited != email)
        {
            return Err(Error::invalid(
                "email",
                "this invite is for another email address",
            ));
        }
        let existing = self
            .store
            .find_user_by_email(&email)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        let (user, new_user) = match existing {
            Some(user) => {
                if !verify_password(&input.password, &user.password_hash) {
                    return Err(Error::Unauthenticated {
                        code: "invalid_login",
                        message: "that email and password do not match: an email with an account joins with its password".to_owned(),
                    });
                }
                // Joining never changes the role of someone who is a member already.
                let memberships = self.user_tenants(&user.id).await?;
                if memberships.iter().any(|(m, _)| m.tenant_id == tenant) {
                    return Err(Error::Conflict {
                        code: "already_member",
                        message: "this account is a member of this organisation already: sign in"
                            .to_owned(),
                    });
                }
                (user, None)
            }
            None => {
                let name = input
                    .name
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
                validate::max_chars("name", &name, 200)?;
                let user = User {
                    id: UserId::new(),
                    email,
                    name,
                    password_hash: hash_password(&input.password)?,
                    created_at: Timestamp::now(),
                    avatar_url: None,
                };
                (user.clone(), Some(user))
            }
        };
        let member = NewMember {
            new_user,
            membership: Membership {
                tenant_id: tenant.clone(),
                user_id: user.id.clone(),
                role,
                created_at: Timestamp::now(),
            },
        };
        self.store
            .accept_invite(&link.token_hash, Timestamp::now(), &member)
            .await
            .map_err(|e| match e {
                crate::StoreError::NotFound => link_unusable(),
                other => Error::from_store("user", other),
            })?;
        self.open_session(&user.id, &tenant, user_agent).await
    }

    /// The tenant's invites not used yet.
    pub async fn pending_invites(&self, tenant: &TenantId) -> Result<Vec<SignInLink>> {
        self.store
            .pending_invites(tenant)
            .await
            .map_err(|e| Error::from_store("invite", e))
    }

    /// Withdraws an invite (admins and owners).
    pub async fn revoke_invite(&self, staff: &Staff, token_hash: &str) -> Result<()> {
        staff.require(Action::Administer)?;
        self.store
            .delete_invite(&staff.tenant.id, token_hash)
            .await
            .map_err(|e| Error::from_store("invite", e))
    }

    /// A one-time password reset link for the user with `email` (the operator's CLI).
    pub async fn create_reset_link(&self, email: &str) -> Result<Token> {
        let email = normalize_email(email)?;
        let user = self
            .store
            .find_user_by_email(&email)
            .await
            .map_err(|e| Error::from_store("user", e))?
            .ok_or(Error::NotFound { resource: "user" })?;
        let token = Token::generate();
        let now = Timestamp::now();
        let link = SignInLink {
            token_hash: token.hash(),
            kind: LinkKind::Reset,
            tenant_id: None,
            user_id: Some(user.id),
            email: None,
            role: None,
            created_by: None,
            created_at: now,
            expires_at: Timestamp::from_millis(now.as_millis() + RESET_TTL_MS),
            used_at: None,
        };
        self.store
            .insert_link(&link)
            .await
            .map_err(|e| Error::from_store("link", e))?;
        Ok(token)
    }

    /// Sets a new password with a reset link; every session of that user ends.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<()> {
        let (link, _) = self.usable_link(token, LinkKind::Reset).await?;
        let user = link.user_id.clone().ok_or_else(link_unusable)?;
        let hash = hash_password(password)?;
        self.store
            .reset_password(&link.token_hash, Timestamp::now(), &user, &hash)
            .await
            .map_err(|e| match e {
                crate::StoreError::NotFound => link_unusable(),
                other => Error::from_store("user", other),
            })
    }

    /// Self-service sign-up (when the operator enables it): a new tenant whose owner is the
    /// new user, signed in.
    pub async fn sign_up(&self, input: SignUp, user_agent: &str) -> Result<SignedIn> {
        validate::non_empty("organisation", &input.organisation, 200)?;
        let email = normalize_email(&input.email)?;
        hash_password(&input.password)?;
        let existing = self
            .store
            .find_user_by_email(&email)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        if existing.is_some() {
            return Err(Error::Conflict {
                code: "email_taken",
                message: "this email has an account already: sign in instead".to_owned(),
            });
        }
        let created = self
            .create_tenant_with_owner(
                NewTenant {
                    name: input.organisation,
                    owner_email: Some(email.clone()),
                    monthly_token_quota: None,
                },
                Some(NewUser {
                    email,
                    name: input.name,
                    role: Role::Owner,
                    password: Some(input.password),
                }),
            )
            .await?;
        let owner = created
            .owner
            .ok_or_else(|| Error::internal(anyhow::anyhow!("sign-up made no owner")))?;
        self.open_session(&owner.user.id, &created.tenant.id, user_agent)
            .await
    }

    /// Changes a member's role. One cannot grant above one's own role nor change someone
    /// above it, and a tenant keeps at least one owner.
    pub async fn set_member_role(&self, staff: &Staff, user: &UserId, role: Role) -> Result<()> {
        let (target, members) = self.manageable_member(staff, user).await?;
        if !staff.role.may_grant(role) {
            return Err(Error::invalid(
                "role",
                format!(
                    "you cannot make someone {} (your role is {})",
                    role.as_str(),
                    staff.role.as_str()
                ),
            ));
        }
        if target.role == Role::Owner && role != Role::Owner {
            last_owner_guard(&members)?;
        }
        let membership = Membership { role, ..target };
        self.store
            .add_member(&NewMember {
                new_user: None,
                membership,
            })
            .await
            .map_err(|e| Error::from_store("member", e))
    }

    /// Removes a member from the staff member's tenant (or oneself, leaving it).
    pub async fn remove_member(&self, staff: &Staff, user: &UserId) -> Result<()> {
        let (target, members) = if user == &staff.user.id {
            let members = self.list_members(&staff.tenant.id).await?;
            let own = members
                .iter()
                .find(|(m, _)| &m.user_id == user)
                .map(|(m, _)| m.clone())
                .ok_or(Error::NotFound { resource: "member" })?;
            (own, members)
        } else {
            self.manageable_member(staff, user).await?
        };
        if target.role == Role::Owner {
            last_owner_guard(&members)?;
        }
        self.store
            .remove_member(&staff.tenant.id, user)
            .await
            .map_err(|e| Error::from_store("member", e))
    }

    /// A tenant's members with their users, by email.
    pub async fn list_members(&self, tenant: &TenantId) -> Result<Vec<(Membership, User)>> {
        self.store
            .list_memberships(tenant)
            .await
            .map_err(|e| Error::from_store("member", e))
    }

    async fn manageable_member(
        &self,
        staff: &Staff,
        user: &UserId,
    ) -> Result<(Membership, Vec<(Membership, User)>)> {
        staff.require(Action::Administer)?;
        let members = self.list_members(&staff.tenant.id).await?;
        let target = members
            .iter()
            .find(|(m, _)| &m.user_id == user)
            .map(|(m, _)| m.clone())
            .ok_or(Error::NotFound { resource: "member" })?;
        if target.role < staff.role {
            return Err(Error::Forbidden {
                code: "role_not_allowed",
                message: format!("only an owner can change an {}", target.role.as_str()),
            });
        }
        Ok((target, members))
    }
}

/// `Conflict` when `members` has only one owner (who must stay).
fn last_owner_guard(members: &[(Membership, User)]) -> Result<()> {
    let owners = members
        .iter()
        .filter(|(m, _)| m.role == Role::Owner)
        .count();
    if owners <= 1 {
        return Err(Error::Conflict {
            code: "last_owner",
            message: "an organisation needs an owner: make someone else owner first".to_owned(),
        });
    }
    Ok(())
}
