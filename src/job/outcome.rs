//! The outcome of a job: what every door reports and what `result.json` stores.

use crate::encode::OutputFormat;
use crate::error::JobError;
use serde::{Deserialize, Serialize};

/// Final state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Succeeded,
    Failed,
}

/// One stored generated image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub key: String,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub bytes: u64,
    pub sha256: String,
    /// Base64 of the file when the destination is `inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// One stored mockup (or print file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockupOutput {
    /// Which of the job's images (variations) this shows: index into `images`.
    #[serde(default)]
    pub image: u32,
    pub product: String,
    pub color: String,
    /// `mockup` or `print_file`.
    #[serde(default = "default_mockup_kind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// One stored print-shop deliverable (`print`): a traced SVG, a die-cut sticker's PNG, SVG or
/// PDF, a separation film, an underbase or a separations preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrintOutput {
    /// Which of the job's images (variations) it was made from.
    pub image: u32,
    /// `vector`, `sticker_png`, `sticker_svg`, `sticker_pdf`, `separation`, `underbase` or
    /// `separation_preview`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub key: String,
    pub content_type: String,
    pub bytes: u64,
    /// Pixels at `output.print_dpi` (for SVG and PDF: the page's size in those pixels).
    pub width: u32,
    pub height: u32,
    /// The physical size in millimetres.
    pub width_mm: f64,
    pub height_mm: f64,
    /// A separation's ink: `#rrggbb` (sRGB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ink: Option<String>,
    /// A separation's (or underbase's) share of the print area, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// A vector SVG's fill colours (`#rrggbb`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub colors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

fn default_mockup_kind() -> String {
    "mockup".to_owned()
}

/// Which model produced the images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub preset: String,
    pub weights: String,
    pub device: String,
    /// Bytes of model files loaded at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_bytes: Option<u64>,
    /// The worker process's peak resident host memory when loading finished (Linux VmHWM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_host_memory_bytes: Option<u64>,
}

/// Milliseconds per stage; absent stages did not run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_inputs: Option<u64>,
    /// The job's LoRAs: reading and parsing them (0 when the same set ran before), and applying
    /// them to the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_load: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_apply: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encode_text: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encode_image: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denoise: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<u64>,
    /// Background removal by the matting model (its first load is `matting_load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matting: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matting_load: Option<u64>,
    /// Model-free background removal (`remove_flat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_flat: Option<u64>,
    /// Super-resolution (its first load is `upscale_load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale_load: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mockups: Option<u64>,
    /// Hard alpha of the print files (summed over them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_alpha: Option<u64>,
    /// The `print` deliverables, each over every variation, stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_vector: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_sticker: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_separations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) encode_images: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<u64>,
    pub total: u64,
}

/// Outcome of the completion webhook, recorded in `result.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReport {
    pub delivered: bool,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a job produced, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutcome {
    pub id: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageOutput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mockups: Vec<MockupOutput>,
    /// The print-shop deliverables (`print`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub print: Vec<PrintOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<Timings>,
    #[serde(default)]
    pub cold_start: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// True when this outcome was read back from an earlier delivery's `result.json`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookReport>,
    /// SHA-256 of the job this outcome answers (see `ValidJob::spec_sha256`); `result.json`
    /// keeps it so that a different job reusing the id is refused (`job_id_conflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_sha256: Option<String>,
}

impl Timings {
    /// Each stage that ran, by its `timings_ms` name, with its milliseconds.
    pub fn stages(&self) -> Vec<(String, u64)> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(stages)) => stages
                .into_iter()
                .filter_map(|(stage, ms)| Some((stage, ms.as_u64()?)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl JobOutcome {
    /// A failed outcome carrying only the error (and the id, when known).
    pub fn failed(id: impl Into<String>, error: JobError) -> Self {
        JobOutcome {
            id: id.into(),
            status: JobStatus::Failed,
            images: Vec::new(),
            mockups: Vec::new(),
            print: Vec::new(),
            seed: None,
            model: None,
            timings_ms: None,
            cold_start: false,
            error: Some(error),
            replayed: false,
            webhook: None,
            job_sha256: None,
        }
    }

    /// A succeeded outcome with nothing in it yet; the worker fills it as stages finish.
    pub fn started(id: impl Into<String>) -> Self {
        JobOutcome {
            status: JobStatus::Succeeded,
            error: None,
            ..JobOutcome::failed(id, JobError::internal(""))
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status == JobStatus::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn failed_outcome_serializes_to_design_shape() {
        let o = JobOutcome::failed("j1", JobError::invalid("width", "bad"));
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"]["code"], "invalid_input");
        assert_eq!(v["error"]["field"], "width");
        assert_eq!(v["error"]["retryable"], false);
        assert!(v.get("images").is_none());
        let back: JobOutcome = serde_json::from_value(v).unwrap();
        assert_eq!(back.error.unwrap().code, ErrorCode::InvalidInput);
    }
}
