//! Dashboard sessions and one-time links (invites, password resets).

use async_trait::async_trait;
use frontdesk_core::id::{TenantId, UserId};
use frontdesk_core::session::{LinkKind, Session, SignInLink};
use frontdesk_core::store::{NewMember, SessionStore, StoreResult};
use frontdesk_core::tenant::Role;
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, IfNone, Row, Stmt};
use crate::sql::{bad_value, col, id_col, id_col_opt, ts, ts_opt};
use crate::tenants::member_statements;
use crate::SqlStore;

const SESSION_COLUMNS: &str =
    "token_hash, user_id, tenant_id, csrf_token, created_at, last_seen_at, user_agent";
const LINK_COLUMNS: &str =
    "token_hash, kind, tenant_id, user_id, email, role, created_by, created_at, expires_at, used_at";

fn session_row(row: &Row) -> StoreResult<Session> {
    Ok(Session {
        token_hash: col(row, "token_hash")?,
        user_id: id_col(row, "user_id", UserId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        csrf_token: col(row, "csrf_token")?,
        created_at: ts(row, "created_at")?,
        last_seen_at: ts(row, "last_seen_at")?,
        user_agent: col(row, "user_agent")?,
    })
}

fn link_row(row: &Row) -> StoreResult<SignInLink> {
    let kind: String = col(row, "kind")?;
    let role: Option<String> = col(row, "role")?;
    Ok(SignInLink {
        token_hash: col(row, "token_hash")?,
        kind: LinkKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(anyhow::anyhow!("column kind: `{kind}`")))?,
        tenant_id: id_col_opt(row, "tenant_id", TenantId::parse)?,
        user_id: id_col_opt(row, "user_id", UserId::parse)?,
        email: col(row, "email")?,
        role: role
            .map(|r| Role::parse(&r).map_err(|e| bad_value("role", e)))
            .transpose()?,
        created_by: id_col_opt(row, "created_by", UserId::parse)?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        used_at: ts_opt(row, "used_at")?,
    })
}

/// Marks a link of `kind` used, unless it was used or expired meanwhile (then the
/// transaction stops with `NotFound`).
fn use_link(token_hash: &str, kind: LinkKind, at: Timestamp) -> Stmt {
    Stmt::new(
        "UPDATE sign_in_links SET used_at = $2 \
         WHERE token_hash = $1 AND kind = $3 AND used_at IS NULL AND expires_at > $2",
    )
    .arg(token_hash)
    .arg(at.as_millis())
    .arg(kind.as_str())
    .if_none(IfNone::NotFound)
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        let stmt = Stmt::new(format!(
            "INSERT INTO dashboard_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .arg(session.token_hash.as_str())
        .arg(session.user_id.as_str())
        .arg(session.tenant_id.as_str())
        .arg(session.csrf_token.as_str())
        .arg(session.created_at.as_millis())
        .arg(session.last_seen_at.as_millis())
        .arg(session.user_agent.as_str());
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let stmt = Stmt::new(format!(
            "SELECT {SESSION_COLUMNS} FROM dashboard_sessions WHERE token_hash = $1"
        ))
        .arg(token_hash);
        query_one(self.db.as_ref(), stmt)
            .await?
            .as_ref()
            .map(session_row)
            .transpose()
    }

    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> StoreResult<()> {
        let stmt =
            Stmt::new("UPDATE dashboard_sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .arg(token_hash)
                .arg(at.as_millis());
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn set_session_tenant(&self, token_hash: &str, tenant: &TenantId) -> StoreResult<()> {
        let stmt = Stmt::new("UPDATE dashboard_sessions SET tenant_id = $2 WHERE token_hash = $1")
            .arg(token_hash)
            .arg(tenant.as_str())
            .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let stmt =
            Stmt::new("DELETE FROM dashboard_sessions WHERE token_hash = $1").arg(token_hash);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn insert_link(&self, link: &SignInLink) -> StoreResult<()> {
        let stmt = Stmt::new(format!(
            "INSERT INTO sign_in_links ({LINK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .arg(link.token_hash.as_str())
        .arg(link.kind.as_str())
        .arg(link.tenant_id.as_ref().map(|t| t.as_str().to_owned()))
        .arg(link.user_id.as_ref().map(|u| u.as_str().to_owned()))
        .arg(link.email.clone())
        .arg(link.role.map(|r| r.as_str().to_owned()))
        .arg(link.created_by.as_ref().map(|u| u.as_str().to_owned()))
        .arg(link.created_at.as_millis())
        .arg(link.expires_at.as_millis())
        .arg(link.used_at.map(|t| t.as_millis()));
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn get_link(&self, token_hash: &str) -> StoreResult<Option<SignInLink>> {
        let stmt = Stmt::new(format!(
            "SELECT {LINK_COLUMNS} FROM sign_in_links WHERE token_hash = $1"
        ))
        .arg(token_hash);
        query_one(self.db.as_ref(), stmt)
            .await?
            .as_ref()
            .map(link_row)
            .transpose()
    }

    async fn pending_invites(&self, tenant: &TenantId) -> StoreResult<Vec<SignInLink>> {
        let stmt = Stmt::new(format!(
            "SELECT {LINK_COLUMNS} FROM sign_in_links \
             WHERE tenant_id = $1 AND kind = 'invite' AND used_at IS NULL ORDER BY created_at DESC LIMIT 200"
        ))
        .arg(tenant.as_str());
        self.db.query(stmt).await?.iter().map(link_row).collect()
    }

    async fn delete_invite(&self, tenant: &TenantId, token_hash: &str) -> StoreResult<()> {
        let stmt = Stmt::new(
            "DELETE FROM sign_in_links WHERE tenant_id = $1 AND token_hash = $2 AND kind = 'invite' AND used_at IS NULL",
        )
        .arg(tenant.as_str())
        .arg(token_hash)
        .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn accept_invite(
        &self,
        token_hash: &str,
        at: Timestamp,
        member: &NewMember,
    ) -> StoreResult<()> {
        let mut statements = vec![use_link(token_hash, LinkKind::Invite, at)];
        statements.extend(member_statements(member));
        self.db.transaction(statements).await.map(|_| ())
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        at: Timestamp,
        user: &UserId,
        password_hash: &str,
    ) -> StoreResult<()> {
        let statements = vec![
            use_link(token_hash, LinkKind::Reset, at),
            Stmt::new("UPDATE users SET password_hash = $2 WHERE id = $1")
                .arg(user.as_str())
                .arg(password_hash)
                .if_none(IfNone::NotFound),
            Stmt::new("DELETE FROM dashboard_sessions WHERE user_id = $1").arg(user.as_str()),
        ];
        self.db.transaction(statements).await.map(|_| ())
    }
}
