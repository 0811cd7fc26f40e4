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
    ("inbox", "/inbox", "Inbox"),
    ("conversations", "/conversations", "Conversations"),
    ("calls", "/calls", "Calls"),
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

/// A timestamp as templates show it: ISO 8601 for `<time datetime>`, the time relative to
/// now ("3 min ago": the script keeps it current in the same words, so nothing moves when it
/// runs) and the exact UTC time for its title (the script shows the viewer's zone there).
#[derive(Debug, Clone, Serialize)]
pub struct When {
    pub iso: String,
    pub text: String,
    pub exact: String,
}

impl When {
    pub fn of(at: Timestamp) -> Self {
        let iso = at.to_rfc3339();
        let exact = iso
            .get(..16)
            .map(|s| format!("{} UTC", s.replace('T', " ")))
            .unwrap_or_else(|| iso.clone());
        let text = relative(at.as_millis() - Timestamp::now().as_millis(), &iso);
        Self { iso, text, exact }
    }
}

/// "just now", "5 min ago", "in 3 h", "yesterday", "4 days ago", or the date; `app.js`
/// words it the same way.
fn relative(delta_ms: i64, iso: &str) -> String {
    let minutes = delta_ms.abs() / 60_000;
    let (past, amount) = (delta_ms <= 0, minutes);
    let phrase = |n: i64, unit: &str| {
        if past {
            format!("{n} {unit} ago")
        } else {
            format!("in {n} {unit}")
        }
    };
    match amount {
        0 => "just now".to_owned(),
        1..=59 => phrase(amount, "min"),
        60..=1439 => phrase(amount / 60, "h"),
        1440..=2879 if past => "yesterday".to_owned(),
        1440..=2879 => "tomorrow".to_owned(),
        2880..=43199 => phrase(amount / 1440, "days"),
        _ => iso.get(..10).unwrap_or(iso).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn times_read_relative_to_now() {
        let iso = "2026-12-01T10:00:00Z";
        let min = 60_000;
        assert_eq!(relative(-10_000, iso), "just now");
        assert_eq!(relative(-5 * min, iso), "5 min ago");
        assert_eq!(relative(3 * 60 * min, iso), "in 3 h");
        assert_eq!(relative(-30 * 60 * min, iso), "yesterday");
        assert_eq!(relative(-4 * 1440 * min, iso), "4 days ago");
        assert_eq!(relative(-90 * 1440 * min, iso), "2026-12-01");
    }
}
