//! Members: who belongs to the tenant with which role, invites (a link shown once), role
//! changes and removal. Everyone may read the list; admins and owners manage it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use frontdesk_core::id::UserId;
use frontdesk_core::session::Action;
use frontdesk_core::tenant::Role;
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::{NoFields, StaffSession, Submit};
use crate::AppState;

const ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];

async fn members_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    invite_link: Option<String>,
    error: Option<String>,
) -> PageResult {
    let staff = &session.staff;
    let members = state.service.list_members(&staff.tenant.id).await?;
    let rows: Vec<Value> = members
        .iter()
        .map(|(membership, user)| {
            json!({
                "id": user.id.as_str(),
                "name": user.name,
                "email": user.email,
                "role": membership.role.as_str(),
                "joined": When::of(membership.created_at),
                "me": user.id == staff.user.id,
                // Whom this member may manage: people at or below their own role.
                "manageable": staff.role.allows(Action::Administer) && membership.role >= staff.role,
            })
        })
        .collect();
    let invites: Vec<Value> = if staff.role.allows(Action::Administer) {
        state
            .service
            .pending_invites(&staff.tenant.id)
            .await?
            .iter()
            .map(|link| {
                json!({
                    "id": link.token_hash,
                    "email": link.email,
                    "role": link.role.map(Role::as_str),
                    "created": When::of(link.created_at),
                    "expires": When::of(link.expires_at),
                    "expired": !link.usable(frontdesk_core::time::Timestamp::now()),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let grantable: Vec<&str> = ROLES
        .iter()
        .filter(|r| staff.role.may_grant(**r))
        .map(|r| r.as_str())
        .collect();
    Ok(page(
        status,
        "members.html",
        context! {
            frame => Frame::new(staff, "members", "Members"),
            members => rows, invites, grantable, invite_link, error,
        },
    ))
}

pub async fn list(State(state): State<AppState>, session: StaffSession) -> PageResult {
    members_page(&state, &session, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    role: String,
}

pub async fn invite(State(state): State<AppState>, submit: Submit<InviteForm>) -> PageResult {
    let session = &submit.session;
    let role = Role::parse(submit.form.role.trim())?;
    let email = Some(submit.form.email.as_str()).filter(|e| !e.trim().is_empty());
    match state
        .service
        .create_invite(&session.staff, email, role)
        .await
    {
        Ok((token, _)) => {
            let link = format!(
                "{}/invite/{}",
                state.config.public_url().trim_end_matches('/'),
                token.expose()
            );
            members_page(&state, session, StatusCode::CREATED, Some(link), None).await
        }
        Err(error @ Error::InvalidField { .. }) => {
            members_page(
                &state,
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(error.public_message()),
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    Path(invite): Path<String>,
    submit: Submit<NoFields>,
) -> PageResult {
    if invite.len() != 64 || !invite.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound { resource: "invite" }.into());
    }
    state
        .service
        .revoke_invite(&submit.session.staff, &invite)
        .await?;
    Ok(Redirect::to("/members").into_response())
}

fn user_id(raw: &str) -> Result<UserId, Error> {
    UserId::parse(raw).map_err(|_| Error::NotFound { resource: "member" })
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    Path(user): Path<String>,
    submit: Submit<RoleForm>,
) -> PageResult {
    let user = user_id(&user)?;
    let role = Role::parse(submit.form.role.trim())?;
    match state
        .service
        .set_member_role(&submit.session.staff, &user, role)
        .await
    {
        Ok(()) => Ok(Redirect::to("/members").into_response()),
        Err(error @ (Error::InvalidField { .. } | Error::Conflict { .. })) => {
            members_page(
                &state,
                &submit.session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(error.public_message()),
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    Path(user): Path<String>,
    submit: Submit<NoFields>,
) -> PageResult {
    let user = user_id(&user)?;
    let leaving = user == submit.session.staff.user.id;
    match state
        .service
        .remove_member(&submit.session.staff, &user)
        .await
    {
        Ok(()) if leaving => Ok(Redirect::to("/").into_response()),
        Ok(()) => Ok(Redirect::to("/members").into_response()),
        Err(error @ Error::Conflict { .. }) => {
            members_page(
                &state,
                &submit.session,
                StatusCode::CONFLICT,
                None,
                Some(error.public_message()),
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}
