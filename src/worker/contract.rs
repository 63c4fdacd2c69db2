//! Where the job contract meets the engine. The engine knows no job and the job contract no
//! model, so the few values both speak of have a type on each side, mapped here and nowhere
//! else: the model's defaults and abilities (engine -> job validation), which model ran (engine
//! -> outcome), true CFG and the photo's fit (job -> engine request).

use crate::engine;
use crate::job::outcome::ModelInfo;
use crate::job::spec::ImageFit;
use crate::job::{GenerationDefaults, TrueCfg};

impl From<&engine::ModelDefaults> for GenerationDefaults {
    fn from(d: &engine::ModelDefaults) -> Self {
        GenerationDefaults {
            width: d.width,
            height: d.height,
            steps: d.steps,
            guidance: d.guidance,
            max_sequence_length: d.max_sequence_length,
            true_cfg: d.true_cfg,
            edit: d.edit,
        }
    }
}

impl From<&engine::ModelInfo> for ModelInfo {
    fn from(m: &engine::ModelInfo) -> Self {
        ModelInfo {
            preset: m.preset.clone(),
            weights: m.weights.clone(),
            device: m.device.clone(),
            load_bytes: m.load_bytes,
            peak_host_memory_bytes: m.peak_host_memory_bytes,
        }
    }
}

impl From<&TrueCfg> for engine::TrueCfg {
    fn from(t: &TrueCfg) -> Self {
        engine::TrueCfg {
            negative_prompt: t.negative_prompt.clone(),
            scale: t.scale,
        }
    }
}

impl From<ImageFit> for engine::ImageFit {
    fn from(fit: ImageFit) -> Self {
        match fit {
            ImageFit::Cover => engine::ImageFit::Cover,
            ImageFit::Contain => engine::ImageFit::Contain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_defaults_map_onto_the_job_contract_field_by_field() {
        let engine = engine::ModelDefaults {
            width: 880,
            height: 1184,
            steps: 28,
            guidance: 3.5,
            max_sequence_length: 512,
            true_cfg: true,
            edit: true,
        };
        let job = GenerationDefaults::from(&engine);
        assert_eq!(
            (job.width, job.height, job.steps, job.guidance),
            (880, 1184, 28, 3.5)
        );
        assert_eq!(
            (job.max_sequence_length, job.true_cfg, job.edit),
            (512, true, true)
        );
        assert_eq!(
            GenerationDefaults::from(&engine::ModelDefaults::default()),
            GenerationDefaults::default(),
            "both sides default to FLUX.1-schnell"
        );
    }
}
