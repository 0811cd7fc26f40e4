//! Widget sessions: a publishable key, from an origin it allows, for an agent it allows,
//! gets a visitor token; widget requests present it and reach only their end user's
//! conversations. The token key is the server's own (kept in the settings table, so every
//! instance signs and checks alike).

use std::collections::HashSet;

use secrecy::ExposeSecret;
use serde::Serialize;

use super::{ListConversations, Service};
use crate::agent::{Agent, AgentRef};
use crate::conversation::{Conversation, Page};
use crate::credentials::Sealer;
use crate::error::{Error, Result};
use crate::id::{AgentId, ConversationId, TenantId};
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
    /// The publishable key of an embedded widget; none on a hosted page.
    pub key: Option<ApiKey>,
    pub claims: VisitorClaims,
    /// The agent of a hosted page's visitor, found public when the request was checked.
    pub page_agent: Option<AgentId>,
}

impl Visitor {
    pub fn tenant(&self) -> &TenantId {
        &self.claims.tenant
    }

    /// Whether this visitor may talk to `agent`: one its key allows, or the agent of its
    /// hosted page while that page is public.
    pub fn may_use(&self, agent: &Agent) -> bool {
        match &self.key {
            Some(key) => {
                key.allowed_agents.is_empty() || key.allowed_agents.contains(&agent.spec.slug)
            }
            None => {
                agent.spec.widget.public_page
                    && self.claims.page.as_deref() == Some(agent.spec.slug.as_str())
            }
        }
    }

    /// The bucket its requests share beside its own: its key's, or its hosted page's.
    pub fn shared_bucket(&self) -> String {
        match (&self.key, &self.claims.page) {
            (Some(key), _) => key.id.as_str().to_owned(),
            (None, page) => format!(
                "page:{}:{}",
                self.claims.tenant.as_str(),
                page.as_deref().unwrap_or("")
            ),
        }
    }
}

/// How a widget session is opened.
#[derive(Debug, Clone, Copy)]
pub enum WidgetEntry<'a> {
    /// A page embedding the widget with a publishable key (`fd_pk_…`) from an origin the
    /// key allows.
    Key(&'a str),
    /// The agent's hosted page on this server (`/c/{tenant}/{agent}`): no key, but the
    /// request must come from this server's own origin and the agent's page be public.
    HostedPage(&'a TenantId),
}

/// Where a widget request comes from: the page's origin, and whether that is this server's
/// own. Browsers leave `Origin` out of same-origin reads, so the server passes its own origin
/// for a request without one (a session must name its origin).
#[derive(Debug, Clone)]
pub struct PageOrigin {
    pub origin: Option<String>,
    pub own: bool,
}

impl PageOrigin {
    /// A hosted page's session (no key) comes from the page on this server, or not at all.
    pub fn check_own(&self) -> Result<()> {
        check_own_origin(self)
    }
}

fn check_own_origin(page: &PageOrigin) -> Result<()> {
    if page.own {
        Ok(())
    } else {
        Err(Error::Forbidden {
            code: "origin_not_allowed",
            message: "a hosted page's session must come from the page on this server".into(),
        })
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
    /// The server's key for visitor tokens, made once and shared through the settings; sealed
    /// under the master key when the server has one (a value kept in the clear by an older
    /// version is sealed on its next use).
    async fn widget_token_secret(&self) -> Result<Vec<u8>> {
        let read = || async {
            self.store
                .get_setting(TOKEN_SECRET)
                .await
                .map_err(|e| Error::from_store("setting", e))
        };
        let sealer = self.sealer.as_ref();
        let open = |stored: &str| -> Result<Vec<u8>> {
            let hexed = if Sealer::is_sealed(stored) {
                let sealer = sealer.ok_or_else(|| {
                    Error::internal(std::io::Error::other(
                        "the widget token secret is sealed and the server has no master key",
                    ))
                })?;
                sealer
                    .open_server(TOKEN_SECRET, stored)?
                    .expose_secret()
                    .to_owned()
            } else {
                stored.to_owned()
            };
            hex::decode(hexed).map_err(Error::internal)
        };
        if let Some(stored) = read().await? {
            let secret = open(&stored)?;
            if let (Some(sealer), false) = (sealer, Sealer::is_sealed(&stored)) {
                let sealed = sealer.seal_server(TOKEN_SECRET, &stored)?;
                // Whoever seals it first wins; the value is the same either way.
                let _ = self
                    .store
                    .swap_setting(TOKEN_SECRET, Some(&stored), &sealed)
                    .await
                    .map_err(|e| Error::from_store("setting", e))?;
            }
            return Ok(secret);
        }
        let mut bytes = [0u8; 32];
        crate::id::random_bytes(&mut bytes);
        let hexed = hex::encode(bytes);
        let value = match sealer {
            Some(sealer) => sealer.seal_server(TOKEN_SECRET, &hexed)?,
            None => hexed,
        };
        let _ = self
            .store
            .swap_setting(TOKEN_SECRET, None, &value)
            .await
            .map_err(|e| Error::from_store("setting", e))?;
        // Whoever won the race, everyone uses what is stored.
        let stored = read()
            .await?
            .ok_or_else(|| Error::internal(std::io::Error::other("token secret vanished")))?;
        open(&stored)
    }

    /// Opens a widget session: checks the publishable key (or the hosted page), the page's
    /// origin and the agent; keeps the visitor of a `previous` token (even a recently expired
    /// one); acts as the tenant's user when a valid `user_token` comes along.
    pub async fn open_widget_session(
        &self,
        entry: WidgetEntry<'_>,
        page: &PageOrigin,
        agent: &str,
        user_token: Option<&str>,
        previous: Option<&str>,
    ) -> Result<WidgetSession> {
        let (tenant, key) = match entry {
            WidgetEntry::Key(presented) => {
                let key = self.authenticate(presented).await?;
                if key.kind != KeyKind::Publishable {
                    return Err(Error::Forbidden {
                        code: "publishable_key_required",
                        message: "the widget takes a publishable key (fd_pk_…); never put a secret key in a web page".into(),
                    });
                }
                check_origin(&key, page.origin.as_deref())?;
                (key.tenant_id.clone(), Some(key))
            }
            WidgetEntry::HostedPage(tenant) => {
                check_own_origin(page)?;
                (tenant.clone(), None)
            }
        };
        let agent = self.get_agent(&tenant, &AgentRef::parse(agent)?).await?;
        let may_use = match &key {
            Some(key) => {
                key.allowed_agents.is_empty() || key.allowed_agents.contains(&agent.spec.slug)
            }
            None => agent.spec.widget.public_page,
        };
        if !may_use {
            return Err(Error::NotFound { resource: "agent" });
        }
        let secret = self.widget_token_secret().await?;
        let now = Timestamp::now().as_millis() / 1000;
        let previous = previous
            .and_then(|token| visitor::verify(&secret, token, now, visitor::RENEW_SECS).ok())
            .filter(|claims| claims.tenant == tenant);
        // A token issued through a key revoked since is not renewed: its visitor starts anew.
        let previous = match previous {
            Some(claims) => match &claims.key {
                Some(key_id) => match self.store.get_api_key(&claims.tenant, key_id).await {
                    Ok(old) if old.revoked_at.is_none() => Some(claims),
                    Ok(_) | Err(crate::StoreError::NotFound) => None,
                    Err(other) => return Err(Error::from_store("API key", other)),
                },
                None => Some(claims),
            },
            None => None,
        };
        let visitor_id = previous
            .map(|claims| claims.visitor)
            .unwrap_or_else(|| format!("vis_{}", crate::id::new_body()));
        let (end_user, context) = match user_token {
            Some(token) => {
                // A token signed with the secret a rotation replaced counts while its overlap
                // lasts.
                let identity = self.widget_identity_secrets(&tenant).await?;
                let user = match visitor::verify_user_token(
                    identity.current.expose_secret(),
                    token,
                    now,
                ) {
                    Ok(user) => user,
                    Err(first) => match &identity.previous {
                        Some(previous) => {
                            visitor::verify_user_token(previous.expose_secret(), token, now)
                                .map_err(|_| first)?
                        }
                        None => return Err(first),
                    },
                };
                (format!("user:{}", user.sub), user.claims)
            }
            None => (format!("visitor:{visitor_id}"), serde_json::Map::new()),
        };
        let claims = VisitorClaims {
            page: key.is_none().then(|| agent.spec.slug.clone()),
            tenant,
            key: key.map(|key| key.id),
            visitor: visitor_id.clone(),
            end_user: end_user.clone(),
            context,
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
    pub async fn widget_visitor(&self, token: &str, page: &PageOrigin) -> Result<Visitor> {
        let secret = self.widget_token_secret().await?;
        let now = Timestamp::now().as_millis() / 1000;
        let claims = visitor::verify(&secret, token, now, 0)?;
        let Some(key_id) = &claims.key else {
            check_own_origin(page)?;
            // A hosted page's visitor lasts only as long as its page is public.
            let page_agent = match &claims.page {
                Some(slug) => match self
                    .get_agent(&claims.tenant, &AgentRef::Slug(slug.clone()))
                    .await
                {
                    Ok(agent) if agent.spec.widget.public_page => Some(agent.id),
                    Ok(_) | Err(Error::NotFound { .. }) => None,
                    Err(other) => return Err(other),
                },
                None => None,
            };
            if page_agent.is_none() {
                return Err(Error::Unauthenticated {
                    code: "invalid_visitor_token",
                    message: "this chat page is no longer available".into(),
                });
            }
            return Ok(Visitor {
                key: None,
                claims,
                page_agent,
            });
        };
        let key = self
            .store
            .get_api_key(&claims.tenant, key_id)
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
        check_origin(&key, page.origin.as_deref())?;
        Ok(Visitor {
            key: Some(key),
            claims,
            page_agent: None,
        })
    }

    /// One of the visitor's conversations, with an agent it may still use; any other is
    /// not found.
    pub async fn visitor_conversation(
        &self,
        visitor: &Visitor,
        id: &ConversationId,
    ) -> Result<Conversation> {
        let not_found = || Error::NotFound {
            resource: "conversation",
        };
        let conversation = self.get_conversation(visitor.tenant(), id).await?;
        if conversation.end_user_id.as_deref() != Some(visitor.claims.end_user.as_str()) {
            return Err(not_found());
        }
        // Most visitors need no second look at the agent: a hosted page's agent was checked
        // with the request, and a key for every agent allows any.
        match (&visitor.page_agent, &visitor.key) {
            (Some(page), _) if *page == conversation.agent_id => return Ok(conversation),
            (Some(_), _) => return Err(not_found()),
            (None, Some(key)) if key.allowed_agents.is_empty() => return Ok(conversation),
            _ => {}
        }
        let agent = self
            .get_agent(
                visitor.tenant(),
                &AgentRef::Id(conversation.agent_id.clone()),
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => not_found(),
                other => other,
            })?;
        if !visitor.may_use(&agent) {
            return Err(not_found());
        }
        Ok(conversation)
    }

    /// The visitor's conversations with agents it may use, newest first.
    pub async fn visitor_conversations(
        &self,
        visitor: &Visitor,
        mut params: ListConversations,
    ) -> Result<Page<Conversation>> {
        params.end_user_id = Some(visitor.claims.end_user.clone());
        if let Some(page) = &visitor.claims.page {
            if params.agent.as_ref().is_some_and(|agent| agent != page) {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            }
            params.agent = Some(page.clone());
        }
        let mut listed = self.list_conversations(visitor.tenant(), params).await?;
        let allowed = visitor
            .key
            .as_ref()
            .map(|key| &key.allowed_agents)
            .filter(|agents| !agents.is_empty());
        if let Some(allowed) = allowed {
            let ids: HashSet<AgentId> = self
                .list_agents(visitor.tenant())
                .await?
                .into_iter()
                .filter(|agent| allowed.contains(&agent.spec.slug))
                .map(|agent| agent.id)
                .collect();
            listed
                .items
                .retain(|conversation| ids.contains(&conversation.agent_id));
        }
        Ok(listed)
    }
}
