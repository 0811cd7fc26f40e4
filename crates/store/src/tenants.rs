//! Tenants, users and memberships.

use async_trait::async_trait;
use frontdesk_core::id::{TenantId, UserId};
use frontdesk_core::store::{StoreResult, TenantStore};
use frontdesk_core::tenant::{Membership, Role, Tenant, User};
use frontdesk_core::StoreError;
use sqlx::any::AnyRow;

use crate::sql::{backend, bad_value, col, db_error, id_col, ts};
use crate::SqlStore;

fn tenant_row(row: &AnyRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: id_col(row, "id", TenantId::parse)?,
        name: col(row, "name")?,
        monthly_token_quota: col(row, "monthly_token_quota")?,
        created_at: ts(row, "created_at")?,
    })
}

fn user_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: id_col(row, "id", UserId::parse)?,
        email: col(row, "email")?,
        name: col(row, "name")?,
        password_hash: col(row, "password_hash")?,
        created_at: ts(row, "created_at")?,
    })
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        sqlx::query("INSERT INTO tenants (id, name, monthly_token_quota, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant.id.as_str())
            .bind(tenant.name.as_str())
            .bind(tenant.monthly_token_quota)
            .bind(tenant.created_at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, "id"))?;
        Ok(())
    }

    async fn get_tenant(&self, tenant: &TenantId) -> StoreResult<Tenant> {
        let row = sqlx::query("SELECT id, name, monthly_token_quota, created_at FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        tenant_row(&row)
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(user.id.as_str())
            .bind(user.email.as_str())
            .bind(user.name.as_str())
            .bind(user.password_hash.as_str())
            .bind(user.created_at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, "email"))?;
        Ok(())
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT id, email, name, password_hash, created_at FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn set_user_password(&self, user: &UserId, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user.as_str())
            .bind(password_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn upsert_membership(&self, membership: &Membership) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(membership.tenant_id.as_str())
        .bind(membership.user_id.as_str())
        .bind(membership.role.as_str())
        .bind(membership.created_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_memberships(&self, tenant: &TenantId) -> StoreResult<Vec<(Membership, User)>> {
        let rows = sqlx::query(
            "SELECT m.role, m.created_at AS joined_at, u.id, u.email, u.name, u.password_hash, u.created_at \
             FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY u.email",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
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
