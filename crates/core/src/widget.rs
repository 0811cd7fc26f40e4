//! The chat widget's settings, part of an agent's config: appearance (title, avatar, accent
//! colour, radius, position, theme), behaviour (greeting, starter prompts, placeholder,
//! whether the agent has a public hosted page) and texts for other languages.
//!
//! The widget picks the texts of the visitor's language (`texts["de"]`, else the primary
//! subtag of `de-AT`, else the base settings); `labels` rename the widget's own buttons and
//! messages, so a tenant can translate all of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::validate;

const MAX_SHORT: usize = 200;
const MAX_GREETING: usize = 2_000;
const MAX_STARTERS: usize = 8;
const MAX_LANGUAGES: usize = 40;

/// The widget's own texts a tenant may rename or translate (`labels`).
pub const LABELS: &[&str] = &[
    "open",
    "close",
    "new_chat",
    "conversations",
    "back",
    "message",
    "send",
    "stop",
    "retry",
    "regenerate",
    "approve",
    "reject",
    "allow_tool",
    "using_tool",
    "handed_over",
    "waits_for_staff",
    "talk_to_person",
    "person_joined",
    "assistant_back",
    "typing",
    "error",
    "sources",
    "no_conversations",
];

/// Where the widget's launcher sits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WidgetPosition {
    #[default]
    BottomRight,
    BottomLeft,
}

/// Light, dark, or following the visitor's system setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WidgetTheme {
    Light,
    Dark,
    #[default]
    Auto,
}

/// The texts of one language: each one given replaces the base setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetTexts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starter_prompts: Option<Vec<String>>,
    /// The widget's own texts by name (see [`LABELS`]), e.g. `{"send": "Senden"}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Appearance and behaviour of the chat widget for this agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetSettings {
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub avatar_url: Option<String>,
    /// CSS hex colour such as `#4f46e5`.
    pub accent_color: Option<String>,
    /// Corner radius in pixels.
    pub radius: Option<u32>,
    pub position: WidgetPosition,
    pub theme: WidgetTheme,
    pub greeting: Option<String>,
    pub starter_prompts: Vec<String>,
    pub placeholder: Option<String>,
    /// Whether anyone may chat with this agent on its hosted page `/c/{tenant}/{agent}`
    /// (no key needed there; off by default).
    pub public_page: bool,
    /// Whether end users see tools' arguments and results (off by default: they see that a
    /// tool ran, by name, and whether it worked).
    pub tool_details: bool,
    /// Whether the widget offers a "talk to a person" button: the conversation then waits
    /// for the tenant's staff (see the agent's `human` settings; off by default).
    pub human_button: bool,
    /// Texts for other languages, by language tag (`{"de": {"greeting": "Hallo!"}}`).
    pub texts: BTreeMap<String, WidgetTexts>,
}

impl WidgetSettings {
    /// Settings as stored, read leniently: texts for a language that do not fit today's
    /// shape (saved when `texts` was a free map) are left out rather than making the whole
    /// agent unreadable; the next save replaces them.
    pub fn from_stored(mut value: serde_json::Value) -> serde_json::Result<Self> {
        if let Some(texts) = value
            .get_mut("texts")
            .and_then(serde_json::Value::as_object_mut)
        {
            texts.retain(|_, one| WidgetTexts::deserialize(&*one).is_ok());
        }
        Self::deserialize(value)
    }
}

fn starters(field: &str, prompts: &[String]) -> Result<()> {
    validate::max_items(field, prompts, MAX_STARTERS)?;
    for (idx, prompt) in prompts.iter().enumerate() {
        validate::non_empty(&format!("{field}[{idx}]"), prompt, MAX_SHORT)?;
    }
    Ok(())
}

/// A language tag such as `de`, `pt-BR` or `zh-Hant` (BCP 47 shape, not the registry).
fn language_tag(field: &str, tag: &str) -> Result<()> {
    let well_formed = !tag.is_empty()
        && tag.len() <= 35
        && tag.split('-').enumerate().all(|(n, part)| {
            (1..=8).contains(&part.len())
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
                && (n > 0 || part.bytes().all(|b| b.is_ascii_alphabetic()))
        });
    if well_formed {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "`{}` is not a language tag such as de or pt-BR",
                validate::truncate(tag, 40)
            ),
        ))
    }
}

impl WidgetTexts {
    fn validate(&self, prefix: &str) -> Result<()> {
        for (name, value) in [
            ("title", &self.title),
            ("subtitle", &self.subtitle),
            ("placeholder", &self.placeholder),
        ] {
            if let Some(value) = value {
                validate::max_chars(&format!("{prefix}.{name}"), value, MAX_SHORT)?;
            }
        }
        if let Some(greeting) = &self.greeting {
            validate::max_chars(&format!("{prefix}.greeting"), greeting, MAX_GREETING)?;
        }
        if let Some(prompts) = &self.starter_prompts {
            starters(&format!("{prefix}.starter_prompts"), prompts)?;
        }
        for (name, text) in &self.labels {
            let field = format!("{prefix}.labels.{}", validate::truncate(name, 40));
            if !LABELS.contains(&name.as_str()) {
                return Err(Error::invalid(
                    field,
                    format!("is not one of the widget's texts: {}", LABELS.join(", ")),
                ));
            }
            validate::non_empty(&field, text, MAX_SHORT)?;
        }
        Ok(())
    }
}

impl WidgetSettings {
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("widget.title", &self.title),
            ("widget.subtitle", &self.subtitle),
            ("widget.placeholder", &self.placeholder),
        ] {
            if let Some(value) = value {
                validate::max_chars(field, value, MAX_SHORT)?;
            }
        }
        if let Some(greeting) = &self.greeting {
            validate::max_chars("widget.greeting", greeting, MAX_GREETING)?;
        }
        if let Some(url) = &self.avatar_url {
            validate::http_url("widget.avatar_url", url)?;
            if !url.starts_with("https://") {
                // Pages served over HTTPS would not show it, and ours allow only https: images.
                return Err(Error::invalid(
                    "widget.avatar_url",
                    "must be an https:// URL",
                ));
            }
        }
        if let Some(color) = &self.accent_color {
            let hex = color.strip_prefix('#').unwrap_or("");
            if !(hex.len() == 6 || hex.len() == 3) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    "widget.accent_color",
                    "must be a hex colour such as #4f46e5",
                ));
            }
        }
        if self.radius.is_some_and(|r| r > 48) {
            return Err(Error::invalid("widget.radius", "must be between 0 and 48"));
        }
        starters("widget.starter_prompts", &self.starter_prompts)?;
        if self.texts.len() > MAX_LANGUAGES {
            return Err(Error::invalid(
                "widget.texts",
                format!("at most {MAX_LANGUAGES} languages"),
            ));
        }
        for (tag, texts) in &self.texts {
            language_tag("widget.texts", tag)?;
            texts.validate(&format!("widget.texts.{tag}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: serde_json::Value) -> WidgetSettings {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn field_of(settings: &WidgetSettings) -> Option<String> {
        match settings.validate() {
            Err(Error::InvalidField { field, .. }) => Some(field),
            Err(other) => panic!("{other}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn texts_for_other_languages_are_checked() {
        let good = settings(json!({"texts": {
            "de": {"greeting": "Hallo!", "starter_prompts": ["Wo ist meine Bestellung?"],
                   "labels": {"send": "Senden", "new_chat": "Neuer Chat"}},
            "pt-BR": {"title": "Suporte"}
        }}));
        assert_eq!(field_of(&good), None);
        for (texts, field) in [
            (json!({"d e": {}}), "widget.texts"),
            (json!({"1x": {}}), "widget.texts"),
            (
                json!({"de": {"labels": {"sned": "x"}}}),
                "widget.texts.de.labels.sned",
            ),
            (
                json!({"de": {"labels": {"send": ""}}}),
                "widget.texts.de.labels.send",
            ),
            (
                json!({"de": {"starter_prompts": [""]}}),
                "widget.texts.de.starter_prompts[0]",
            ),
            (
                json!({"de": {"title": "x".repeat(201)}}),
                "widget.texts.de.title",
            ),
        ] {
            let bad = settings(json!({ "texts": texts }));
            assert_eq!(field_of(&bad).as_deref(), Some(field), "{texts}");
        }
        assert!(
            serde_json::from_value::<WidgetSettings>(json!({"texts": {"de": {"x": 1}}})).is_err()
        );
    }

    #[test]
    fn stored_settings_with_old_free_form_texts_still_load() {
        let stored = json!({
            "title": "Help",
            "texts": {"de": {"greeting": "Hallo!"}, "fr": "Bonjour", "es": {"colour": "rojo"}}
        });
        let loaded = WidgetSettings::from_stored(stored).unwrap();
        assert_eq!(loaded.title.as_deref(), Some("Help"));
        assert_eq!(loaded.texts.len(), 1);
        assert_eq!(loaded.texts["de"].greeting.as_deref(), Some("Hallo!"));
        // Input from the API stays strict.
        assert!(
            serde_json::from_value::<WidgetSettings>(json!({"texts": {"fr": "Bonjour"}})).is_err()
        );
    }

    #[test]
    fn avatars_must_be_https() {
        assert_eq!(
            field_of(&settings(json!({"avatar_url": "http://cdn.example/a.png"}))).as_deref(),
            Some("widget.avatar_url")
        );
        assert_eq!(
            field_of(&settings(
                json!({"avatar_url": "https://cdn.example/a.png"})
            )),
            None
        );
    }
}
