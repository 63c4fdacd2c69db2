//! The finishing steps a job asks for after its design exists: background removal and
//! super-resolution upscaling. Validation only (the worker runs them): a bad value fails with
//! `invalid_input` naming the field, before any work.

use super::spec::{BackgroundMode, JobSpec};
use super::styles::Style;
use crate::encode::OutputFormat;
use crate::error::JobError;

/// Upscale factors the Real-ESRGAN models offer.
pub(crate) const UPSCALE_FACTORS: [u32; 2] = [2, 4];

/// What happens to each design before it is stored, placed on products and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Finishing {
    pub background: BackgroundMode,
    /// 2 or 4: super-resolve by this factor; None keeps the design's size.
    pub upscale: Option<u32>,
}

impl Finishing {
    /// True when a stage runs on the engine (a model is needed).
    pub(crate) fn needs_models(&self) -> bool {
        self.background == BackgroundMode::Remove || self.upscale.is_some()
    }
}

/// The job's finishing: its own `background`, else the style's default; `upscale` 2 or 4.
/// JPEG has no alpha: a job that asks for `background: remove*` with JPEG images is refused; a
/// style's default yields to the job's explicit JPEG (the background is kept).
pub(crate) fn validate(spec: &JobSpec, style: Option<&Style>) -> Result<Finishing, JobError> {
    let jpeg = spec.output.as_ref().and_then(|o| o.format) == Some(OutputFormat::Jpeg);
    let background = match (spec.background, style.map(|s| s.background)) {
        (Some(mode), _) => {
            if jpeg && mode != BackgroundMode::Keep {
                return Err(JobError::invalid(
                    "output.format",
                    "jpeg cannot keep a transparent background; use png or webp with `background`",
                ));
            }
            mode
        }
        (None, Some(_)) if jpeg => BackgroundMode::Keep,
        (None, style_default) => style_default.unwrap_or_default(),
    };
    if let Some(factor) = spec.upscale {
        if !UPSCALE_FACTORS.contains(&factor) {
            return Err(JobError::invalid(
                "upscale",
                format!("{factor} is not offered; use 2 or 4"),
            ));
        }
    }
    Ok(Finishing {
        background,
        upscale: spec.upscale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::styles;

    fn spec(json: serde_json::Value) -> JobSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn validate_upscale_three_names_the_field() {
        let e = validate(
            &spec(serde_json::json!({"prompt": "x", "upscale": 3})),
            None,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("upscale"));
        assert!(e.message.contains("2 or 4"), "{}", e.message);
    }

    #[test]
    fn validate_style_default_applies_only_without_own_background() {
        let sticker = styles::find("sticker").unwrap();
        let f = validate(&spec(serde_json::json!({"prompt": "x"})), Some(sticker)).unwrap();
        assert_eq!(f.background, BackgroundMode::Remove);
        let own = spec(serde_json::json!({"prompt": "x", "background": "keep"}));
        assert_eq!(
            validate(&own, Some(sticker)).unwrap().background,
            BackgroundMode::Keep
        );
        let plain = styles::find("standard").unwrap();
        let f = validate(&spec(serde_json::json!({"prompt": "x"})), Some(plain)).unwrap();
        assert_eq!(f, Finishing::default());
    }

    #[test]
    fn validate_jpeg_with_removal_refused_but_style_default_yields() {
        let own = spec(
            serde_json::json!({"prompt": "x", "background": "remove", "output": {"format": "jpeg"}}),
        );
        let e = validate(&own, None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("output.format"));
        let styled = spec(serde_json::json!({"prompt": "x", "output": {"format": "jpeg"}}));
        let f = validate(&styled, Some(styles::find("sticker").unwrap())).unwrap();
        assert_eq!(f.background, BackgroundMode::Keep);
    }

    #[test]
    fn spec_unknown_background_mode_is_refused_by_the_parser() {
        let r: Result<JobSpec, _> =
            serde_json::from_value(serde_json::json!({"prompt": "x", "background": "erase"}));
        assert!(r.is_err());
    }
}
