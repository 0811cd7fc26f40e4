//! Tenants, users and memberships.

use async_trait::async_trait;
use frontdesk_core::id::{TenantId, UserId};
use frontdesk_core::store::{NewMember, StoreResult, TenantSetup, TenantStore};
use frontdesk_core::tenant::{Membership, Role, Tenant, User};
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, IfNone, Row, Stmt};
use crate::keys::insert_key;
use crate::sql::{bad_value, col, id_col, ts};
use crate::SqlStore;

pub(crate) fn tenant_row(row: &Row) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: id_col(row, "id", TenantId::parse)?,
        name: col(row, "name")?,
        monthly_token_quota: col(row, "monthly_token_quota")?,
        created_at: ts(row, "created_at")?,
    })
}

fn user_row(row: &Row) -> StoreResult<User> {
    Ok(User {
        id: id_col(row, "id", UserId::parse)?,
        email: col(row, "email")?,
        name: col(row, "name")?,
        password_hash: col(row, "password_hash")?,
        created_at: ts(row, "created_at")?,
        avatar_url: col(row, "avatar_url")?,
    })
}

/// The statements that add a member: the user when new, then the membership.
pub(crate) fn member_statements(member: &NewMember) -> Vec<Stmt> {
    let mut statements = Vec::with_capacity(2);
    if let Some(user) = &member.new_user {
        statements.push(
            Stmt::new("INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
                .arg(user.id.as_str())
                .arg(user.email.as_str())
                .arg(user.name.as_str())
                .arg(user.password_hash.as_str())
                .arg(user.created_at.as_millis())
                .unique("email"),
        );
    }
    let membership = &member.membership;
    statements.push(
        Stmt::new(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .arg(membership.tenant_id.as_str())
        .arg(membership.user_id.as_str())
        .arg(membership.role.as_str())
        .arg(membership.created_at.as_millis()),
    );
    statements
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn create_tenant(&self, setup: &TenantSetup) -> StoreResult<()> {
        let tenant = &setup.tenant;
        let mut statements = vec![Stmt::new(
            "INSERT INTO tenants (id, name, monthly_token_quota, created_at) VALUES ($1, $2, $3, $4)",
        )
        .arg(tenant.id.as_str())
        .arg(tenant.name.as_str())
        .arg(tenant.monthly_token_quota)
        .arg(tenant.created_at.as_millis())
        .unique("id")];
        if let Some(owner) = &setup.owner {
            statements.extend(member_statements(owner));
        }
        statements.push(insert_key(&setup.key, &setup.key_hash)?);
        self.db.transaction(statements).await.map(|_| ())
    }

    async fn get_tenant(&self, tenant: &TenantId) -> StoreResult<Tenant> {
        let stmt = Stmt::new(
            "SELECT id, name, monthly_token_quota, created_at FROM tenants WHERE id = $1",
        )
        .arg(tenant.as_str());
        let row = query_one(self.db.as_ref(), stmt)
            .await?
            .ok_or(StoreError::NotFound)?;
        tenant_row(&row)
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let stmt = Stmt::new(
            "SELECT id, email, name, password_hash, created_at, avatar_url FROM users WHERE email = $1",
        )
        .arg(email);
        query_one(self.db.as_ref(), stmt)
            .await?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    async fn set_user_password(&self, user: &UserId, password_hash: &str) -> StoreResult<()> {
        let stmt = Stmt::new("UPDATE users SET password_hash = $2 WHERE id = $1")
            .arg(user.as_str())
            .arg(password_hash)
            .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn add_member(&self, member: &NewMember) -> StoreResult<()> {
        self.db
            .transaction(member_statements(member))
            .await
            .map(|_| ())
    }

    async fn get_user(&self, user: &UserId) -> StoreResult<User> {
        let stmt =
            Stmt::new("SELECT id, email, name, password_hash, created_at, avatar_url FROM users WHERE id = $1")
                .arg(user.as_str());
        let row = query_one(self.db.as_ref(), stmt)
            .await?
            .ok_or(StoreError::NotFound)?;
        user_row(&row)
    }

    async fn user_memberships(&self, user: &UserId) -> StoreResult<Vec<(Membership, Tenant)>> {
        let stmt = Stmt::new(
            "SELECT m.role, m.created_at AS joined_at, t.id, t.name, t.monthly_token_quota, t.created_at \
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = $1 ORDER BY t.name, t.id",
        )
        .arg(user.as_str());
        let rows = self.db.query(stmt).await?;
        rows.iter()
            .map(|row| {
                let tenant = tenant_row(row)?;
                let role: String = col(row, "role")?;
                let membership = Membership {
                    tenant_id: tenant.id.clone(),
                    user_id: user.clone(),
                    role: Role::parse(&role).map_err(|e| bad_value("role", e))?,
                    created_at: ts(row, "joined_at")?,
                };
                Ok((membership, tenant))
            })
            .collect()
    }

    async fn remove_member(&self, tenant: &TenantId, user: &UserId) -> StoreResult<()> {
        let stmt = Stmt::new("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .arg(tenant.as_str())
            .arg(user.as_str())
            .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn list_memberships(&self, tenant: &TenantId) -> StoreResult<Vec<(Membership, User)>> {
        let stmt = Stmt::new(
            "SELECT m.role, m.created_at AS joined_at, u.id, u.email, u.name, u.password_hash, u.created_at, u.avatar_url \
             FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY u.email",
        )
        .arg(tenant.as_str());
        let rows = self.db.query(stmt).await?;
        rows.iter()
            .map(|row| {
                let user = user_row(row)?;
                let role: String = col(row, "role")?;
                let membership = Membership {
                    tenant_id: tenant.clone(),
                    user_id: user.id.clone(),
                    role: Role::parse(&role).map_err(|e| bad_value("role", e))?,
                    created_at: ts(row, "joined_at")?,
                };
                Ok((membership, user))
            })
            .collect()
    }
}
