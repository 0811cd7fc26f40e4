//! Widget sessions: a publishable key, from an origin it allows, for an agent it allows,
//! gets a visitor token; widget requests present it and reach only their end user's
//! conversations. The token key is the server's own (kept in the settings table, so every
//! instance signs and checks alike).

use secrecy::ExposeSecret;
use serde::Serialize;

use super::Service;
use crate::agent::{Agent, AgentRef};
use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::key::{ApiKey, KeyKind, Origin};
use crate::time::Timestamp;
use crate::visitor::{self, VisitorClaims};

const TOKEN_SECRET: &str = "widget_token_secret";

/// A new widget session.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetSession {
    /// `Authorization: Bearer <token>` on every widget request.
    pub token: String,
    pub visitor_id: String,
    /// Who the visitor acts as: `visitor:<id>` or, identified, `user:<id>`.
    pub end_user_id: String,
    pub expires_at: Timestamp,
    #[serde(skip)]
    pub agent: Option<Agent>,
}

/// A widget request's visitor, checked.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub key: ApiKey,
    pub claims: VisitorClaims,
}

impl Visitor {
    pub fn tenant(&self) -> &TenantId {
        &self.claims.tenant
    }

    /// Whether the key lets this visitor talk to `agent` (a slug).
    pub fn may_use(&self, agent: &str) -> bool {
        self.key.allowed_agents.is_empty() || self.key.allowed_agents.iter().any(|a| a == agent)
    }
}

fn check_origin(key: &ApiKey, origin: Option<&str>) -> Result<()> {
    let forbidden = |message: String| Error::Forbidden {
        code: "origin_not_allowed",
        message,
    };
    let Some(origin) = origin else {
        return Err(forbidden(
            "widget requests must come from a web page (an Origin header)".into(),
        ));
    };
    let parsed = Origin::parse(origin).map_err(|_| {
        forbidden(format!(
            "`{}` is not an origin",
            crate::validate::truncate(origin, 100)
        ))
    })?;
    if key.allowed_origins.contains(&parsed) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "this publishable key does not allow {}; add it to the key's allowed_origins",
            parsed.as_str()
        )))
    }
}

impl Service {
    /// The server's key for visitor tokens, made once and shared through the settings.
    async fn widget_token_secret(&self) -> Result<Vec<u8>> {
        let read = || async {
            self.store
                .get_setting(TOKEN_SECRET)
                .await
                .map_err(|e| Error::from_store("setting", e))
        };
        if let Some(hexed) = read().await? {
            return hex::decode(hexed).map_err(Error::internal);
        }
        let mut bytes = [0u8; 32];
        crate::id::random_bytes(&mut bytes);
        let _ = self
            .store
            .swap_setting(TOKEN_SECRET, None, &hex::encode(bytes))
            .await
            .map_err(|e| Error::from_store("setting", e))?;
        // Whoever won the race, everyone uses what is stored.
        let stored = read()
            .await?
            .ok_or_else(|| Error::internal(std::io::Error::other("token secret vanished")))?;
        hex::decode(stored).map_err(Error::internal)
    }

    /// Opens a widget session: checks the publishable key, the page's origin and the agent;
    /// keeps the visitor of a `previous` token (even a recently expired one); acts as the
    /// tenant's user when a valid `user_token` comes along.
    pub async fn open_widget_session(
        &self,
        presented_key: &str,
        origin: Option<&str>,
        agent: &str,
        user_token: Option<&str>,
        previous: Option<&str>,
    ) -> Result<WidgetSession> {
        let key = self.authenticate(presented_key).await?;
        if key.kind != KeyKind::Publishable {
            return Err(Error::Forbidden {
                code: "publishable_key_required",
                message: "the widget takes a publishable key (fd_pk_…); never put a secret key in a web page".into(),
            });
        }
        check_origin(&key, origin)?;
        let agent = self
            .get_agent(&key.tenant_id, &AgentRef::parse(agent)?)
            .await?;
        if !key.allowed_agents.is_empty() && !key.allowed_agents.contains(&agent.spec.slug) {
            return Err(Error::NotFound { resource: "agent" });
        }
        let secret = self.widget_token_secret().await?;
        let now = Timestamp::now().as_millis() / 1000;
        let visitor_id = previous
            .and_then(|token| visitor::verify(&secret, token, now, visitor::RENEW_SECS).ok())
            .filter(|claims| claims.tenant == key.tenant_id)
            .map(|claims| claims.visitor)
            .unwrap_or_else(|| format!("vis_{}", crate::id::new_body()));
        let end_user = match user_token {
            Some(token) => {
                let identity = self.widget_identity_secret(&key.tenant_id).await?;
                format!(
                    "user:{}",
                    visitor::verify_user_token(identity.expose_secret(), token, now)?
                )
            }
            None => format!("visitor:{visitor_id}"),
        };
        let claims = VisitorClaims {
            tenant: key.tenant_id.clone(),
            key: key.id.clone(),
            visitor: visitor_id.clone(),
            end_user: end_user.clone(),
            exp: now + visitor::TOKEN_SECS,
        };
        Ok(WidgetSession {
            token: visitor::sign(&secret, &claims),
            visitor_id,
            end_user_id: end_user,
            expires_at: Timestamp::from_millis(claims.exp * 1000),
            agent: Some(agent),
        })
    }

    /// Checks a widget request: its token, that its key still works, and its origin.
    pub async fn widget_visitor(&self, token: &str, origin: Option<&str>) -> Result<Visitor> {
        let secret = self.widget_token_secret().await?;
        let now = Timestamp::now().as_millis() / 1000;
        let claims = visitor::verify(&secret, token, now, 0)?;
        let key = self
            .store
            .get_api_key(&claims.tenant, &claims.key)
            .await
            .map_err(|e| Error::from_store("API key", e))
            .map_err(|_| Error::Unauthenticated {
                code: "invalid_visitor_token",
                message: "the visitor token's key no longer exists".into(),
            })?;
        if key.revoked_at.is_some() {
            return Err(Error::Unauthenticated {
                code: "revoked_api_key",
                message: "the widget's publishable key was revoked".into(),
            });
        }
        check_origin(&key, origin)?;
        Ok(Visitor { key, claims })
    }
}
