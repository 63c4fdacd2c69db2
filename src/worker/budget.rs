//! The pixel budget of a job: every output pixel it would make (stored images after
//! upscaling, mockups and print files, for every variation) against `MERCHGEN_MAX_JOB_PIXELS`,
//! checked before any GPU work so an oversized job fails at once with `invalid_input` naming
//! the field that contributes most, instead of exhausting memory half-way.

use crate::error::JobError;

/// The output pixels a job would make, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct JobPixels {
    pub images: u64,
    pub mockups: u64,
    pub prints: u64,
    /// The `print` deliverables (vector trace, sticker, separation films).
    pub deliverables: u64,
}

impl JobPixels {
    pub(super) fn total(&self) -> u64 {
        self.images + self.mockups + self.prints + self.deliverables
    }
}

/// Which field to name when each kind is the largest.
#[derive(Debug, Clone, Copy)]
pub(super) struct BudgetFields {
    pub images: &'static str,
    pub mockups: &'static str,
    pub prints: &'static str,
    pub deliverables: &'static str,
}

/// Refuse a job over `limit` pixels, naming the field behind the largest share.
pub(super) fn check(pixels: JobPixels, limit: u64, fields: BudgetFields) -> Result<(), JobError> {
    if pixels.total() <= limit {
        return Ok(());
    }
    let field = [
        (pixels.images, fields.images),
        (pixels.mockups, fields.mockups),
        (pixels.prints, fields.prints),
        (pixels.deliverables, fields.deliverables),
    ]
    .into_iter()
    .max_by_key(|(px, _)| *px)
    .map(|(_, f)| f)
    .expect("four candidates");
    let mp = |px: u64| px as f64 / 1e6;
    Err(JobError::invalid(
        field,
        format!(
            "the job would make {:.1} megapixels (images {:.1}, mockups {:.1}, print files {:.1}, \
             print deliverables {:.1}); this worker allows at most {:.1} per job: ask for fewer images, products, colours, \
             inks or a smaller size, upscale or DPI",
            mp(pixels.total()),
            mp(pixels.images),
            mp(pixels.mockups),
            mp(pixels.prints),
            mp(pixels.deliverables),
            mp(limit)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: BudgetFields = BudgetFields {
        images: "upscale",
        mockups: "mockups.products",
        prints: "mockups.print_files",
        deliverables: "print.separations",
    };

    #[test]
    fn check_over_budget_names_largest_share() {
        let px = JobPixels {
            images: 10,
            mockups: 5,
            prints: 100,
            deliverables: 20,
        };
        let e = check(px, 50, FIELDS).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mockups.print_files"));
        assert!(e.message.contains("at most"), "{}", e.message);
    }

    #[test]
    fn check_within_budget_passes() {
        let px = JobPixels {
            images: 10,
            mockups: 5,
            prints: 100,
            deliverables: 0,
        };
        assert!(check(px, 115, FIELDS).is_ok());
    }
}
