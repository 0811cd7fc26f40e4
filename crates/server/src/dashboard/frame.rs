//! What every signed-in page shows around its content: the navigation, the tenant switcher,
//! the member, what their role lets them do, and the CSRF token for the page's forms.

use frontdesk_core::service::Staff;
use frontdesk_core::session::Action;
use frontdesk_core::time::Timestamp;
use serde::Serialize;

/// The navigation, in order: `(section, path, label)`.
const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/", "Overview"),
    ("agents", "/agents", "Agents"),
    ("playground", "/playground", "Playground"),
    ("conversations", "/conversations", "Conversations"),
    ("approvals", "/approvals", "Approvals"),
    ("keys", "/keys", "API keys"),
    ("embed", "/embed", "Embed"),
    ("usage", "/usage", "Usage"),
    ("members", "/members", "Members"),
    ("settings", "/settings", "Settings"),
];

#[derive(Debug, Serialize)]
struct NavItem {
    path: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Debug, Serialize)]
struct TenantItem {
    id: String,
    name: String,
    role: &'static str,
    current: bool,
}

/// The page frame's context (`frame` in templates).
#[derive(Debug, Serialize)]
pub struct Frame {
    title: String,
    section: &'static str,
    nav: Vec<NavItem>,
    tenants: Vec<TenantItem>,
    tenant_name: String,
    tenant_id: String,
    user_name: String,
    user_email: String,
    role: &'static str,
    pub csrf: String,
    pub can_edit: bool,
    pub can_admin: bool,
    pub can_own: bool,
}

impl Frame {
    pub fn new(staff: &Staff, section: &'static str, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            section,
            nav: NAV
                .iter()
                .map(|(key, path, label)| NavItem {
                    path,
                    label,
                    current: *key == section,
                })
                .collect(),
            tenants: staff
                .tenants
                .iter()
                .map(|(membership, tenant)| TenantItem {
                    id: tenant.id.as_str().to_owned(),
                    name: tenant.name.clone(),
                    role: membership.role.as_str(),
                    current: tenant.id == staff.tenant.id,
                })
                .collect(),
            tenant_name: staff.tenant.name.clone(),
            tenant_id: staff.tenant.id.as_str().to_owned(),
            user_name: staff.user.name.clone(),
            user_email: staff.user.email.clone(),
            role: staff.role.as_str(),
            csrf: staff.session.csrf_token.clone(),
            can_edit: staff.role.allows(Action::Edit),
            can_admin: staff.role.allows(Action::Administer),
            can_own: staff.role.allows(Action::Own),
        }
    }
}

/// A timestamp as templates show it: ISO 8601 for `<time datetime>` (the script turns it
/// into "3 min ago" in the viewer's zone) and a readable UTC fallback.
#[derive(Debug, Clone, Serialize)]
pub struct When {
    pub iso: String,
    pub text: String,
}

impl When {
    pub fn of(at: Timestamp) -> Self {
        let iso = at.to_rfc3339();
        let text = iso
            .get(..16)
            .map(|s| format!("{} UTC", s.replace('T', " ")))
            .unwrap_or_else(|| iso.clone());
        Self { iso, text }
    }
}
