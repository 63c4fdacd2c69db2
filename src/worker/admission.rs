//! Memory admission of a generation (see `engine::memory`): a job whose single image cannot fit
//! in the device memory left after loading the model fails at once with `invalid_input` naming
//! `width`, before any work; a batch that does not fit is generated in smaller batches.

use crate::engine::memory::{self, Admission};
use crate::engine::EngineHandle;
use crate::error::JobError;
use crate::job::ValidGeneration;

const GIB: f64 = (1u64 << 30) as f64;

/// `Ok(Some(batch))`: generate at most `batch` images at a time; `Ok(None)`: as the engine
/// likes (it fits, or nothing is known to check with).
pub(super) fn admit(
    engine: Option<&EngineHandle>,
    setting_gb: Option<f64>,
    gen: &ValidGeneration,
) -> Result<Option<u32>, JobError> {
    let Some(report) = engine.map(EngineHandle::load_report) else {
        return Ok(None);
    };
    let Some(footprint) = report.footprint else {
        return Ok(None);
    };
    let Some(capacity) = memory::capacity_bytes(setting_gb, report.bytes, report.free_after_load)
    else {
        return Ok(None);
    };
    let (w, h) = (gen.width, gen.height);
    match footprint.admit(capacity, w, h, gen.num_images, gen.max_sequence_length) {
        Admission::Fits { batch } if batch < gen.num_images => {
            tracing::info!(batch, num_images = gen.num_images, "not every image fits in device memory at once: generating in smaller batches");
            Ok(Some(batch))
        }
        Admission::Fits { .. } => Ok(None),
        Admission::TooLarge {
            needs,
            capacity,
            largest_square,
        } => Err(JobError::invalid(
            "width",
            format!(
                "a {w}x{h} image needs about {:.1} GiB of device memory beside the model and this worker has {:.1} GiB: ask for at most about {largest_square}x{largest_square} pixels",
                needs as f64 / GIB,
                capacity as f64 / GIB
            ),
        )),
    }
}
