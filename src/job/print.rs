//! A job's `print` section: vector SVG, die-cut sticker, screen-print separations and hard
//! alpha, validated into `ValidPrint` (ranges, colours, names; every error names its field).
//! What needs the product library or the design (a border that does not fit the print area, a
//! transparent design) is checked by the worker.

use super::spec::{AlphaMode, DetailLevel, JobSpec, PrintSpec};
use crate::error::JobError;

/// Fill colours of a vector SVG.
pub(crate) const VECTOR_COLORS: std::ops::RangeInclusive<u32> = 2..=16;
/// Inks of a separation.
pub(crate) const SEPARATION_INKS: std::ops::RangeInclusive<u32> = 1..=16;
/// A print area's sides in inches.
const SIZE_IN: std::ops::RangeInclusive<f64> = 0.5..=60.0;

/// Which print area the deliverables are made on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PrintArea {
    /// A product's print area (the job's `print.product`, else its first mockup product).
    Product(String),
    /// `print.size_in`, in inches.
    Inches(f64, f64),
}

/// DTF hard alpha for the print files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ValidHardAlpha {
    pub choke_px: u32,
    pub min_feature_mm: f64,
}

/// A traced SVG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValidVector {
    pub colors: u32,
    pub detail: DetailLevel,
}

/// A die-cut sticker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidSticker {
    pub border_mm: f64,
    pub bleed_mm: f64,
    pub border_color: [u8; 3],
    pub cut_name: String,
}

/// The inks of a separation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValidInks {
    Count(u32),
    Given(Vec<[u8; 3]>),
}

/// Screen-print separations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidSeparations {
    pub inks: ValidInks,
    /// The underbase's choke in pixels; None: no underbase.
    pub underbase_choke_px: Option<u32>,
}

/// The validated `print` section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidPrint {
    pub area: PrintArea,
    pub hard_alpha: Option<ValidHardAlpha>,
    pub vector: Option<ValidVector>,
    pub sticker: Option<ValidSticker>,
    pub separations: Option<ValidSeparations>,
}

impl ValidPrint {
    /// True when the section asks for a file of its own (not only hard alpha).
    pub(crate) fn has_deliverables(&self) -> bool {
        self.vector.is_some() || self.sticker.is_some() || self.separations.is_some()
    }
}

/// Validate `spec.print` (None when the job has none).
pub(crate) fn validate(spec: &JobSpec) -> Result<Option<ValidPrint>, JobError> {
    let Some(p) = &spec.print else {
        return Ok(None);
    };
    let area = area(spec, p)?;
    let hard_alpha = hard_alpha(spec, p)?;
    let vector = p
        .vector
        .as_ref()
        .map(|v| {
            let colors = v.colors.unwrap_or(8);
            if !VECTOR_COLORS.contains(&colors) {
                return Err(JobError::invalid(
                    "print.vector.colors",
                    format!("{colors} is out of range: 2 to 16 colours"),
                ));
            }
            Ok(ValidVector {
                colors,
                detail: v.detail.unwrap_or_default(),
            })
        })
        .transpose()?;
    let sticker = p.sticker.as_ref().map(sticker).transpose()?;
    let separations = p.separations.as_ref().map(separations).transpose()?;
    let valid = ValidPrint {
        area,
        hard_alpha,
        vector,
        sticker,
        separations,
    };
    if !valid.has_deliverables() && valid.hard_alpha.is_none() {
        return Err(JobError::invalid(
            "print",
            "asks for nothing: add `vector`, `sticker`, `separations` or `alpha: \"hard\"`",
        ));
    }
    Ok(Some(valid))
}

fn area(spec: &JobSpec, p: &PrintSpec) -> Result<PrintArea, JobError> {
    let first_product = spec.mockups.as_ref().and_then(|m| m.products.first());
    match (&p.product, p.size_in) {
        (Some(_), Some(_)) => Err(JobError::invalid(
            "print.size_in",
            "give either `product` or `size_in`, not both",
        )),
        (Some(product), None) => Ok(PrintArea::Product(product.clone())),
        (None, Some(size)) => {
            for (field, v) in [
                ("print.size_in.width", size.width),
                ("print.size_in.height", size.height),
            ] {
                if !v.is_finite() || !SIZE_IN.contains(&v) {
                    return Err(JobError::invalid(field, "must be 0.5 to 60 inches"));
                }
            }
            Ok(PrintArea::Inches(size.width, size.height))
        }
        (None, None) => match first_product {
            Some(product) => Ok(PrintArea::Product(product.clone())),
            None if p.vector.is_none() && p.sticker.is_none() && p.separations.is_none() => {
                // Hard alpha alone needs no area of its own.
                Ok(PrintArea::Inches(1.0, 1.0))
            }
            None => Err(JobError::invalid(
                "print.product",
                "name the product whose print area the files are made for, or give `size_in`",
            )),
        },
    }
}

fn hard_alpha(spec: &JobSpec, p: &PrintSpec) -> Result<Option<ValidHardAlpha>, JobError> {
    let hard = p.alpha.unwrap_or_default() == AlphaMode::Hard;
    if !hard {
        for (field, given) in [
            ("print.alpha_choke_px", p.alpha_choke_px.is_some()),
            (
                "print.alpha_min_feature_mm",
                p.alpha_min_feature_mm.is_some(),
            ),
        ] {
            if given {
                return Err(JobError::invalid(
                    field,
                    "applies only with `alpha: \"hard\"`",
                ));
            }
        }
        return Ok(None);
    }
    let print_files = spec
        .mockups
        .as_ref()
        .and_then(|m| m.print_files)
        .unwrap_or(false);
    if !print_files {
        return Err(JobError::invalid(
            "print.alpha",
            "hard alpha is for print files: set `mockups.print_files` to true",
        ));
    }
    let choke_px = p.alpha_choke_px.unwrap_or(1);
    if choke_px > 16 {
        return Err(JobError::invalid(
            "print.alpha_choke_px",
            "must be 0 to 16 pixels",
        ));
    }
    let min_feature_mm = p.alpha_min_feature_mm.unwrap_or(0.5);
    if !min_feature_mm.is_finite() || !(0.0..=10.0).contains(&min_feature_mm) {
        return Err(JobError::invalid(
            "print.alpha_min_feature_mm",
            "must be 0 to 10 millimetres",
        ));
    }
    Ok(Some(ValidHardAlpha {
        choke_px,
        min_feature_mm,
    }))
}

fn sticker(s: &super::spec::StickerSpec) -> Result<ValidSticker, JobError> {
    let border_mm = s.border_mm.unwrap_or(3.0);
    if !border_mm.is_finite() || !(0.5..=25.0).contains(&border_mm) {
        return Err(JobError::invalid(
            "print.sticker.border_mm",
            "must be 0.5 to 25 millimetres",
        ));
    }
    let bleed_mm = s.bleed_mm.unwrap_or(1.0);
    if !bleed_mm.is_finite() || !(0.0..=10.0).contains(&bleed_mm) {
        return Err(JobError::invalid(
            "print.sticker.bleed_mm",
            "must be 0 to 10 millimetres",
        ));
    }
    let border_color = match &s.border_color {
        Some(c) => parse_hex("print.sticker.border_color", c)?,
        None => [255, 255, 255],
    };
    let cut_name = s
        .cut_name
        .clone()
        .unwrap_or_else(|| "CutContour".to_owned());
    let ok = (1..=64).contains(&cut_name.len())
        && cut_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if !ok {
        return Err(JobError::invalid(
            "print.sticker.cut_name",
            "must be 1 to 64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    Ok(ValidSticker {
        border_mm,
        bleed_mm,
        border_color,
        cut_name,
    })
}

fn separations(s: &super::spec::SeparationsSpec) -> Result<ValidSeparations, JobError> {
    let inks = match (&s.inks, &s.colors) {
        (Some(_), Some(_)) => {
            return Err(JobError::invalid(
                "print.separations.colors",
                "give either `inks` (a count) or `colors`, not both",
            ))
        }
        (None, Some(colors)) => {
            if colors.is_empty() || colors.len() > *SEPARATION_INKS.end() as usize {
                return Err(JobError::invalid(
                    "print.separations.colors",
                    "must list 1 to 16 inks",
                ));
            }
            let parsed = colors
                .iter()
                .enumerate()
                .map(|(i, c)| parse_hex(&format!("print.separations.colors[{i}]"), c))
                .collect::<Result<Vec<_>, _>>()?;
            ValidInks::Given(parsed)
        }
        (inks, None) => {
            let n = inks.unwrap_or(4);
            if !SEPARATION_INKS.contains(&n) {
                return Err(JobError::invalid(
                    "print.separations.inks",
                    format!("{n} is out of range: 1 to 16 inks"),
                ));
            }
            ValidInks::Count(n)
        }
    };
    let underbase = s.underbase.unwrap_or(false);
    if !underbase && s.underbase_choke_px.is_some() {
        return Err(JobError::invalid(
            "print.separations.underbase_choke_px",
            "applies only with `underbase: true`",
        ));
    }
    let choke = s.underbase_choke_px.unwrap_or(2);
    if choke > 32 {
        return Err(JobError::invalid(
            "print.separations.underbase_choke_px",
            "must be 0 to 32 pixels",
        ));
    }
    Ok(ValidSeparations {
        inks,
        underbase_choke_px: underbase.then_some(choke),
    })
}

/// `#rrggbb` (case-insensitive).
fn parse_hex(field: &str, s: &str) -> Result<[u8; 3], JobError> {
    let bad = || JobError::invalid(field, format!("'{s}' is not a colour: use #rrggbb"));
    let hex = s.strip_prefix('#').ok_or_else(bad)?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: serde_json::Value) -> Result<Option<ValidPrint>, JobError> {
        validate(&serde_json::from_value(json).unwrap())
    }

    fn field(json: serde_json::Value) -> String {
        check(json).unwrap_err().field.unwrap()
    }

    #[test]
    fn validate_defaults_follow_the_first_product() {
        let p = check(serde_json::json!({
            "prompt": "x",
            "mockups": {"products": ["tshirt"]},
            "print": {"vector": {}, "sticker": {}, "separations": {"underbase": true}}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(p.area, PrintArea::Product("tshirt".into()));
        assert_eq!(p.vector.unwrap().colors, 8);
        let s = p.sticker.unwrap();
        assert_eq!(
            (s.border_mm, s.bleed_mm, s.cut_name.as_str()),
            (3.0, 1.0, "CutContour")
        );
        let sep = p.separations.unwrap();
        assert_eq!(
            (sep.inks, sep.underbase_choke_px),
            (ValidInks::Count(4), Some(2))
        );
    }

    #[test]
    fn validate_bad_values_name_their_fields() {
        let base = |print: serde_json::Value| {
            serde_json::json!({"prompt": "x", "print": print,
                "mockups": {"products": ["tshirt"], "print_files": true}})
        };
        assert_eq!(
            field(base(serde_json::json!({"vector": {"colors": 1}}))),
            "print.vector.colors"
        );
        assert_eq!(
            field(base(serde_json::json!({"vector": {"colors": 17}}))),
            "print.vector.colors"
        );
        assert_eq!(
            field(base(serde_json::json!({"separations": {"inks": 0}}))),
            "print.separations.inks"
        );
        assert_eq!(
            field(base(
                serde_json::json!({"separations": {"colors": ["#12345"]}})
            )),
            "print.separations.colors[0]"
        );
        assert_eq!(
            field(base(serde_json::json!({"sticker": {"border_mm": 0.1}}))),
            "print.sticker.border_mm"
        );
        assert_eq!(
            field(base(serde_json::json!({"sticker": {"cut_name": "a b"}}))),
            "print.sticker.cut_name"
        );
        assert_eq!(field(base(serde_json::json!({}))), "print");
        assert_eq!(
            field(base(serde_json::json!({"alpha_choke_px": 2, "vector": {}}))),
            "print.alpha_choke_px"
        );
        assert_eq!(
            field(base(
                serde_json::json!({"size_in": {"width": 0.1, "height": 3}, "vector": {}})
            )),
            "print.size_in.width"
        );
        let no_print_files = serde_json::json!({"prompt": "x", "print": {"alpha": "hard"}});
        assert_eq!(field(no_print_files), "print.alpha");
        let no_area = serde_json::json!({"prompt": "x", "print": {"vector": {}}});
        assert_eq!(field(no_area), "print.product");
    }
}
