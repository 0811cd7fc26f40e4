//! The paragraph styles of `word/styles.xml`: what heading level a style id stands for and
//! whether it is numbered, each answered through the chain of styles it is based on. Built-in
//! styles are known by their name, which stays English (`heading 1`, `Title`) in every
//! language of Word, so a German `berschrift1` is a heading too; without `styles.xml`, the
//! built-in ids (`Heading1`, `Title`) are.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::NsReader;

use super::{attribute, in_namespace, WORD_NAMESPACES};

/// The paragraph styles of `word/styles.xml`, by style id.
#[derive(Debug, Default)]
pub(super) struct Styles {
    by_id: HashMap<String, Style>,
}

#[derive(Debug, Default)]
struct Style {
    /// The name, lowercase: built-in styles keep their English name (`heading 1`) whatever
    /// the language of Word that made the file.
    name: String,
    based_on: Option<String>,
    outline_level: Option<u8>,
    numbered: Option<bool>,
}

impl Styles {
    /// The styles that parse; the rest of a damaged part is left out.
    pub(super) fn parse(xml: &str) -> Self {
        let mut by_id = HashMap::new();
        let mut reader = NsReader::from_str(xml);
        let mut current: Option<(String, Style)> = None;
        while let Ok((namespace, event)) = reader.read_resolved_event() {
            let word = in_namespace(&namespace, &WORD_NAMESPACES);
            let element = match event {
                Event::Start(element) | Event::Empty(element) if word => element,
                Event::End(element) if word && element.local_name().as_ref() == "style" => {
                    by_id.extend(current.take());
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = element.local_name();
            if name.as_ref() == "style" {
                current = attribute(&element, "styleId").map(|id| (id, Style::default()));
                continue;
            }
            let Some((_, style)) = current.as_mut() else {
                continue;
            };
            let value = attribute(&element, "val");
            match name.as_ref() {
                "name" => style.name = value.unwrap_or_default().to_lowercase(),
                "basedOn" => style.based_on = value,
                "outlineLvl" => {
                    style.outline_level = value
                        .and_then(|level| level.parse().ok())
                        .filter(|level| *level < 9);
                }
                "numPr" => style.numbered = Some(true),
                "numId" => style.numbered = Some(value.as_deref() != Some("0")),
                _ => {}
            }
        }
        Self { by_id }
    }

    /// The heading level of a paragraph in style `id`, through the styles it is based on.
    pub(super) fn heading(&self, id: &str) -> Option<u8> {
        self.inherited(id, |style| {
            heading_level(&style.name).or(style.outline_level.map(|level| level + 1))
        })
        // A file without styles.xml names the built-in styles by their ids.
        .or_else(|| heading_level(&id.to_lowercase()).filter(|_| !self.by_id.contains_key(id)))
    }

    /// Whether a paragraph in style `id` is numbered, through the styles it is based on.
    pub(super) fn numbered(&self, id: &str) -> Option<bool> {
        self.inherited(id, |style| style.numbered)
    }

    /// The first answer of `read` along the chain of styles from `id` (at most 16 deep: a
    /// chain that loops ends there).
    fn inherited<T>(&self, id: &str, read: impl Fn(&Style) -> Option<T>) -> Option<T> {
        let mut id = id;
        for _ in 0..16 {
            let style = self.by_id.get(id)?;
            if let Some(found) = read(style) {
                return Some(found);
            }
            id = style.based_on.as_deref()?;
        }
        None
    }
}

/// The heading level a style name (or id) stands for: `title` is 1, `heading 2` (or
/// `heading2`) is 2.
fn heading_level(name: &str) -> Option<u8> {
    if name == "title" {
        return Some(1);
    }
    let level: u8 = name.strip_prefix("heading")?.trim().parse().ok()?;
    (1..=9).contains(&level).then_some(level)
}
