//! Style presets: named prompt wrappers, read from the one data file `styles.json`.

use crate::error::JobError;
use serde::Deserialize;
use std::sync::OnceLock;

/// One style preset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Style {
    pub name: String,
    /// Template with one `{prompt}` placeholder.
    pub prompt: String,
    /// The same style phrased as an edit of the job's photo (FLUX.1 Kontext's `mode: edit`),
    /// with one `{prompt}` placeholder.
    pub edit: String,
    /// Negative prompt added to the job's own.
    pub negative: String,
    /// The background mode of a job with this style that names none (designs meant to be cut
    /// out: stickers, logos, line art).
    #[serde(default)]
    pub background: crate::job::spec::BackgroundMode,
}

impl Style {
    /// The job's prompt wrapped by this style.
    pub(crate) fn apply(&self, prompt: &str) -> String {
        self.prompt.replace("{prompt}", prompt.trim())
    }

    /// The job's prompt wrapped by this style's edit phrasing.
    pub(crate) fn apply_edit(&self, prompt: &str) -> String {
        self.edit
            .replace("{prompt}", prompt.trim())
            .trim()
            .to_owned()
    }

    /// The style's negative prompt joined with the job's; `None` when both are empty.
    pub(crate) fn apply_negative(&self, job_negative: Option<&str>) -> Option<String> {
        let parts: Vec<&str> = [job_negative.unwrap_or("").trim(), self.negative.trim()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleFile {
    #[allow(dead_code)]
    version: u32,
    styles: Vec<Style>,
}

/// Every preset, in file order.
pub(crate) fn all() -> &'static [Style] {
    static STYLES: OnceLock<Vec<Style>> = OnceLock::new();
    STYLES.get_or_init(|| {
        let file: StyleFile = serde_json::from_str(include_str!("styles.json"))
            .expect("styles.json is checked by a unit test");
        file.styles
    })
}

/// The preset of that name, or `invalid_input` on `style` listing the valid names.
pub(crate) fn find(name: &str) -> Result<&'static Style, JobError> {
    all().iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|s| s.name.as_str()).collect();
        JobError::invalid(
            "style",
            format!(
                "unknown style '{}'; valid styles: {}",
                name.escape_debug(),
                names.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_file_has_the_twelve_presets() {
        let names: Vec<&str> = all().iter().map(|s| s.name.as_str()).collect();
        for expected in [
            "standard",
            "metal",
            "pop_art",
            "watercolor",
            "anime",
            "line_art",
            "flat_logo",
            "abstract",
            "minimalist",
            "vintage",
            "grunge",
            "sticker",
        ] {
            assert!(names.contains(&expected), "{expected} missing");
        }
        for s in all() {
            assert_eq!(s.prompt.matches("{prompt}").count(), 1, "{}", s.name);
        }
    }

    #[test]
    fn every_style_has_one_placeholder_in_both_phrasings() {
        for s in all() {
            assert_eq!(s.prompt.matches("{prompt}").count(), 1, "{}", s.name);
            assert_eq!(s.edit.matches("{prompt}").count(), 1, "{}", s.name);
            if s.name != "standard" {
                assert!(s.edit.starts_with("Turn this photo into"), "{}", s.name);
            }
        }
        assert!(find("pop_art")
            .unwrap()
            .apply_edit("my dog")
            .ends_with("recognisable. my dog"));
    }

    #[test]
    fn find_unknown_lists_valid_names() {
        let err = find("cubism").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("style"));
        assert!(err.message.contains("pop_art"));
    }

    #[test]
    fn apply_wraps_prompt_and_joins_negatives() {
        let s = find("pop_art").unwrap();
        assert!(s.apply(" corgi ").starts_with("corgi, pop art"));
        assert_eq!(find("standard").unwrap().apply_negative(None), None);
        assert!(s
            .apply_negative(Some("text"))
            .unwrap()
            .starts_with("text, "));
    }
}
