//! Creating tenants, users and memberships.

use serde::Deserialize;

use super::Service;
use crate::error::{Error, Result};
use crate::id::{TenantId, UserId};
use crate::key::{ApiKey, KeyKind, KeySecret};
use crate::store::{NewMember, TenantSetup};
use crate::tenant::{
    generate_password, hash_password, normalize_email, Membership, Role, Tenant, User,
};
use crate::time::Timestamp;
use crate::validate;

/// What the operator sends to create a tenant.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub name: String,
    /// Creates (or reuses) a user with this email as the tenant's owner.
    #[serde(default)]
    pub owner_email: Option<String>,
    #[serde(default)]
    pub monthly_token_quota: Option<i64>,
}

/// A new tenant with its first secret key and, when asked, its owner.
#[derive(Debug)]
pub struct TenantCreated {
    pub tenant: Tenant,
    pub owner: Option<UserAdded>,
    pub secret_key: ApiKey,
    pub secret: KeySecret,
}

/// A user to add to a tenant.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// `None` generates one (for a new user).
    pub password: Option<String>,
}

/// A user added to a tenant; `password` is set when one was generated.
#[derive(Debug)]
pub struct UserAdded {
    pub user: User,
    pub role: Role,
    pub generated_password: Option<String>,
}

impl Service {
    /// Creates a tenant, its first secret key, and optionally its owner, all at once.
    pub async fn create_tenant(&self, input: NewTenant) -> Result<TenantCreated> {
        let owner = input.owner_email.clone().map(|email| NewUser {
            email,
            name: None,
            role: Role::Owner,
            password: None,
        });
        self.create_tenant_with_owner(input, owner).await
    }

    /// Creates a tenant with `owner` (its email wins over `input.owner_email`).
    pub(super) async fn create_tenant_with_owner(
        &self,
        input: NewTenant,
        owner: Option<NewUser>,
    ) -> Result<TenantCreated> {
        validate::non_empty("name", &input.name, 200)?;
        if input.monthly_token_quota.is_some_and(|q| q < 0) {
            return Err(Error::invalid(
                "monthly_token_quota",
                "must not be negative",
            ));
        }
        let tenant = Tenant {
            id: TenantId::new(),
            name: input.name.trim().to_owned(),
            monthly_token_quota: input.monthly_token_quota,
            created_at: Timestamp::now(),
        };
        let owner = match owner {
            Some(request) => Some(self.prepare_member(&tenant.id, request).await?),
            None => None,
        };
        let (secret_key, secret) = super::keys::build_key(
            &tenant.id,
            super::NewKey::named(KeyKind::Secret, "Default secret key"),
        );
        let setup = TenantSetup {
            tenant: tenant.clone(),
            owner: owner.as_ref().map(|(member, _)| member.new.clone()),
            key: secret_key.clone(),
            key_hash: secret.hash(),
        };
        self.store
            .create_tenant(&setup)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        let owner = owner.map(|(member, generated_password)| UserAdded {
            user: member.user,
            role: member.new.membership.role,
            generated_password,
        });
        Ok(TenantCreated {
            tenant,
            owner,
            secret_key,
            secret,
        })
    }

    /// Fails with 429 `quota_exceeded` when the tenant has used its monthly tokens.
    pub async fn check_quota(&self, tenant: &TenantId) -> Result<()> {
        let tenant = self.get_tenant(tenant).await?;
        if tenant.monthly_token_quota.is_none() {
            return Ok(());
        }
        let now = Timestamp::now();
        let used = self
            .store
            .tokens_used(&tenant.id, &now.month_key())
            .await
            .map_err(|e| Error::from_store("tenant", e))?;
        quota_verdict(&tenant, used, now)
    }

    pub async fn get_tenant(&self, tenant: &TenantId) -> Result<Tenant> {
        self.store
            .get_tenant(tenant)
            .await
            .map_err(|e| Error::from_store("tenant", e))
    }

    /// Adds a user to a tenant with a role, creating the user when the email is new.
    /// An existing user keeps their password unless a new one is given.
    pub async fn add_user(&self, tenant: &TenantId, input: NewUser) -> Result<UserAdded> {
        self.get_tenant(tenant).await?;
        let (member, generated_password) = self.prepare_member(tenant, input).await?;
        self.store
            .add_member(&member.new)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        Ok(UserAdded {
            user: member.user,
            role: member.new.membership.role,
            generated_password,
        })
    }

    /// Finds or makes the user for a membership; a new user gets the given password or a
    /// generated one (returned). An existing user's password changes only when one is given.
    async fn prepare_member(
        &self,
        tenant: &TenantId,
        input: NewUser,
    ) -> Result<(PreparedMember, Option<String>)> {
        let email = normalize_email(&input.email)?;
        let name = input
            .name
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
        validate::max_chars("name", &name, 200)?;
        let existing = self
            .store
            .find_user_by_email(&email)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        let (user, new_user, generated) = match existing {
            Some(user) => {
                if let Some(password) = &input.password {
                    let hash = hash_password(password)?;
                    self.store
                        .set_user_password(&user.id, &hash)
                        .await
                        .map_err(|e| Error::from_store("user", e))?;
                }
                (user, None, None)
            }
            None => {
                let (password, generated) = match input.password {
                    Some(password) => (password, None),
                    None => {
                        let password = generate_password();
                        (password.clone(), Some(password))
                    }
                };
                let user = User {
                    id: UserId::new(),
                    email,
                    name,
                    password_hash: hash_password(&password)?,
                    created_at: Timestamp::now(),
                    avatar_url: None,
                };
                (user.clone(), Some(user), generated)
            }
        };
        let membership = Membership {
            tenant_id: tenant.clone(),
            user_id: user.id.clone(),
            role: input.role,
            created_at: Timestamp::now(),
        };
        Ok((
            PreparedMember {
                user,
                new: NewMember {
                    new_user,
                    membership,
                },
            },
            generated,
        ))
    }
}

/// A membership ready to store, and the user it is for.
struct PreparedMember {
    user: User,
    new: NewMember,
}

/// The setting that records the demo tenant made at first start.
const DEMO_TENANT_SETTING: &str = "demo_tenant_id";
const DEMO_WIDGET_KEY_SETTING: &str = "demo_widget_key";
/// The demo owner's login.
pub const DEMO_OWNER_EMAIL: &str = "owner@demo.frontdesk.dev";

/// What the first start created; its secrets are printed once and never again.
#[derive(Debug)]
pub struct DemoCreated {
    pub tenant: Tenant,
    pub owner_email: String,
    pub owner_password: String,
    pub agent_slug: String,
    pub secret_key: KeySecret,
    pub publishable_key: KeySecret,
}

/// The demo as a later start finds it (no secrets).
#[derive(Debug)]
pub enum Demo {
    Created(Box<DemoCreated>),
    Existing {
        tenant: Tenant,
        owner_email: String,
        agent_slug: String,
    },
    /// Another process is creating it right now.
    InProgress,
}

impl Service {
    /// The demo tenant, once it exists.
    pub async fn demo_tenant(&self) -> Result<Option<TenantId>> {
        let value = self
            .store
            .get_setting(DEMO_TENANT_SETTING)
            .await
            .map_err(|e| Error::from_store("setting", e))?;
        Ok(value.and_then(|v| TenantId::parse(&v).ok()))
    }

    /// The demo's publishable key and agent, for the `/demo` page (once the demo exists).
    pub async fn demo_widget(&self) -> Result<Option<(String, String)>> {
        let key = self
            .store
            .get_setting(DEMO_WIDGET_KEY_SETTING)
            .await
            .map_err(|e| Error::from_store("setting", e))?;
        Ok(key.map(|key| (key, "support".to_owned())))
    }

    /// Creates the demo tenant, its owner, a demo agent and one secret and one publishable
    /// key on first start; later starts find it again. `origins` are the origins the
    /// publishable key accepts (the server's own, for the demo page).
    pub async fn bootstrap_demo(&self, origins: &[String]) -> Result<Demo> {
        let setting_error = |e| Error::from_store("setting", e);
        let existing = self
            .store
            .get_setting(DEMO_TENANT_SETTING)
            .await
            .map_err(setting_error)?;
        if let Some(id) = existing.as_deref().and_then(|id| TenantId::parse(id).ok()) {
            if let Ok(tenant) = self.get_tenant(&id).await {
                return Ok(Demo::Existing {
                    tenant,
                    owner_email: DEMO_OWNER_EMAIL.to_owned(),
                    agent_slug: "support".to_owned(),
                });
            }
        }
        // Claim the creation, so that of several instances starting at once only one makes
        // the demo. A claim older than two minutes belongs to a process that died midway.
        let now = Timestamp::now().as_millis();
        if let Some(claimed_at) = existing
            .as_deref()
            .and_then(|v| v.strip_prefix("pending:"))
            .and_then(|v| v.parse::<i64>().ok())
        {
            if now - claimed_at < 120_000 {
                return Ok(Demo::InProgress);
            }
        }
        let claim = format!("pending:{now}");
        if !self
            .store
            .swap_setting(DEMO_TENANT_SETTING, existing.as_deref(), &claim)
            .await
            .map_err(setting_error)?
        {
            return Ok(Demo::InProgress);
        }
        let created = self
            .create_tenant(NewTenant {
                name: "Demo Company".into(),
                owner_email: Some(DEMO_OWNER_EMAIL.into()),
                monthly_token_quota: None,
            })
            .await?;
        let tenant = created.tenant;
        let owner = created
            .owner
            .ok_or_else(|| Error::internal(anyhow::anyhow!("demo owner was not created")))?;
        let owner_password = match owner.generated_password {
            Some(password) => password,
            // The demo email existed already (a wiped settings table): give it a fresh password.
            None => {
                let password = generate_password();
                self.add_user(
                    &tenant.id,
                    NewUser {
                        email: DEMO_OWNER_EMAIL.into(),
                        name: None,
                        role: Role::Owner,
                        password: Some(password.clone()),
                    },
                )
                .await?;
                password
            }
        };
        let agent = self
            .create_agent(
                &tenant.id,
                serde_json::json!({
                    "slug": "support",
                    "name": "Demo support agent",
                    "description": "Answers questions about the demo company's orders, shipping and returns.",
                    "instructions": "You are the friendly support assistant of Demo Company, an online shop. Answer briefly and politely. If you do not know something, say so and offer to connect the customer with a human.",
                    "widget": {
                        "title": "Demo Company",
                        "subtitle": "We usually answer right away",
                        "greeting": "Hi! How can I help you today?",
                        "starter_prompts": ["Where is my order?", "What is your return policy?"]
                    }
                }),
            )
            .await?;
        let mut origins_parsed = Vec::new();
        for origin in origins {
            origins_parsed.push(crate::key::Origin::parse(origin)?);
        }
        let (_, publishable) = self
            .create_key(
                &tenant.id,
                super::NewKey {
                    kind: KeyKind::Publishable,
                    name: "Demo widget".into(),
                    allowed_origins: origins_parsed,
                    allowed_agents: vec![agent.spec.slug.clone()],
                    rate_limit_per_minute: None,
                },
            )
            .await?;
        // A publishable key is public by design (it sits in web pages); the demo page needs it.
        self.store
            .set_setting(DEMO_WIDGET_KEY_SETTING, publishable.expose())
            .await
            .map_err(|e| Error::from_store("setting", e))?;
        self.store
            .set_setting(DEMO_TENANT_SETTING, tenant.id.as_str())
            .await
            .map_err(|e| Error::from_store("setting", e))?;
        Ok(Demo::Created(Box::new(DemoCreated {
            tenant,
            owner_email: DEMO_OWNER_EMAIL.to_owned(),
            owner_password,
            agent_slug: agent.spec.slug,
            secret_key: created.secret,
            publishable_key: publishable,
        })))
    }
}

/// `quota_exceeded` when `tenant` has a monthly quota and `used` (this month's tokens at
/// `now`) reached it.
pub(super) fn quota_verdict(tenant: &Tenant, used: i64, now: Timestamp) -> Result<()> {
    let Some(quota) = tenant.monthly_token_quota else {
        return Ok(());
    };
    if used < quota {
        return Ok(());
    }
    let month = now.month_key();
    Err(Error::QuotaExceeded {
        retry_after_secs: now.secs_to_next_month().max(1),
        message: format!(
            "this organisation has used {used} of its {quota} tokens for {month}; the quota renews on the 1st (UTC)"
        ),
    })
}
