//! The finishing models on the engine thread: matting (background removal) and
//! super-resolution upscaling. Each is resolved and loaded on first use (a worker that never
//! cuts out pays nothing), then kept on the device the generator uses. Synchronous, like the
//! generator: only the engine thread calls it.

use super::files::net_presets::{self, NetRole};
use super::matting::{self, Matting};
use super::upscale::{TileOptions, Upscaler};
use super::{files::hub::HubSettings, EngineError};
use candle_core::Device;
use image::RgbaImage;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Which finishing models to use and where they are.
#[derive(Debug, Clone)]
pub(crate) struct FinishSettings {
    pub hub: HubSettings,
    /// Matting model: a preset (`merchgen models list`) or a weights file.
    pub matting: String,
    /// x4 upscaler: a preset or a weights file.
    pub(crate) upscale_x4: String,
    /// x2 upscaler; an x4 model and a resample stand in when it cannot be found.
    pub(crate) upscale_x2: String,
    pub(crate) tiles: TileOptions,
    /// Fetch missing preset files into the cache (unless offline).
    pub(crate) download: bool,
}

/// What one finishing call did, for `timings_ms` and the log.
#[derive(Debug, Clone)]
pub(crate) struct FinishOutput {
    pub images: Vec<RgbaImage>,
    /// Milliseconds spent loading the model in this call (first use only).
    pub load_ms: Option<u64>,
    pub(crate) run_ms: u64,
    /// The model's file, for logs.
    pub model: String,
}

/// Milliseconds that loading the (matting, upscaling) models took, when they loaded.
pub(crate) type LoadTimes = (Option<u64>, Option<u64>);

/// The loaded finishing models.
pub(crate) struct Finishers {
    settings: FinishSettings,
    device: Device,
    matting: Option<(Matting, String)>,
    x4: Option<(Upscaler, String)>,
    x2: Option<(Upscaler, String)>,
    /// The x2 model could not be found once: later x2 jobs go straight to the x4 model instead
    /// of looking it up (and maybe downloading) again on every job.
    x2_missing: bool,
}

impl Finishers {
    pub(crate) fn new(settings: FinishSettings, device: Device) -> Self {
        Finishers {
            settings,
            device,
            matting: None,
            x4: None,
            x2: None,
            x2_missing: false,
        }
    }

    /// Load (on first use) the models a job will need, so a missing or broken model fails the
    /// job before any generation. Returns the milliseconds loading took (matting, upscaler).
    pub(crate) fn prepare(
        &mut self,
        matting: bool,
        upscale: Option<u32>,
    ) -> Result<LoadTimes, EngineError> {
        let matting_ms = if matting {
            self.ensure_matting()?
        } else {
            None
        };
        let upscale_ms = match upscale {
            Some(factor) => self.ensure_upscaler(factor)?,
            None => None,
        };
        Ok((matting_ms, upscale_ms))
    }

    /// Cut the salient object out of each image (alpha from the model's mask).
    pub(crate) fn matte(
        &mut self,
        images: Vec<RgbaImage>,
        cancel: &AtomicBool,
    ) -> Result<FinishOutput, EngineError> {
        let load_ms = self.ensure_matting()?;
        let (model, name) = self.matting.as_ref().expect("ensure_matting loaded it");
        let started = Instant::now();
        let mut out = Vec::with_capacity(images.len());
        for img in &images {
            check_cancel(cancel)?;
            let mask = model.predict_mask(img, cancel)?;
            out.push(matting::apply_mask(img, &mask));
        }
        Ok(FinishOutput {
            images: out,
            load_ms,
            run_ms: started.elapsed().as_millis() as u64,
            model: name.clone(),
        })
    }

    /// Super-resolve each image by `factor` (2 or 4), tile by tile. Without an x2 model the x4
    /// one stands in and its images come back four times the size: the caller resamples them
    /// to the size it asked for (CPU work that does not belong on the device's thread).
    pub(crate) fn upscale(
        &mut self,
        images: Vec<RgbaImage>,
        factor: u32,
        cancel: &AtomicBool,
    ) -> Result<FinishOutput, EngineError> {
        let load_ms = self.ensure_upscaler(factor)?;
        let slot = if factor == 2 && self.x2.is_some() {
            &self.x2
        } else {
            &self.x4
        };
        let (model, name) = slot.as_ref().expect("ensure_upscaler loaded it");
        let tiles = self.settings.tiles;
        let started = Instant::now();
        let mut out = Vec::with_capacity(images.len());
        for img in &images {
            check_cancel(cancel)?;
            out.push(model.upscale(img, &tiles, cancel)?);
        }
        Ok(FinishOutput {
            images: out,
            load_ms,
            run_ms: started.elapsed().as_millis() as u64,
            model: name.clone(),
        })
    }

    fn ensure_matting(&mut self) -> Result<Option<u64>, EngineError> {
        if self.matting.is_some() {
            return Ok(None);
        }
        let started = Instant::now();
        let path = self.resolve(&self.settings.matting.clone(), NetRole::Matting)?;
        let model =
            Matting::load(&path, &self.device).map_err(|e| not_a_model(&path, "matting", &e))?;
        tracing::info!(model = %path.display(), arch = model.arch(), elapsed_ms = started.elapsed().as_millis() as u64, "matting model loaded");
        self.matting = Some((model, path.display().to_string()));
        Ok(Some(started.elapsed().as_millis() as u64))
    }

    fn ensure_upscaler(&mut self, factor: u32) -> Result<Option<u64>, EngineError> {
        let started = Instant::now();
        let mut loaded = false;
        if factor == 2 && self.x2.is_none() && !self.x2_missing {
            // The x2 model is optional: an x4 model plus a resample serves when it is missing.
            match self.resolve(&self.settings.upscale_x2.clone(), NetRole::Upscale) {
                Ok(path) => {
                    self.x2 = Some(self.load_upscaler(&path, 2)?);
                    loaded = true;
                }
                Err(e) => {
                    self.x2_missing = true;
                    tracing::info!(error = %e, "no x2 upscaler; the x4 model and a resample stand in")
                }
            }
        }
        if (factor == 4 || self.x2.is_none()) && self.x4.is_none() {
            let path = self.resolve(&self.settings.upscale_x4.clone(), NetRole::Upscale)?;
            self.x4 = Some(self.load_upscaler(&path, 4)?);
            loaded = true;
        }
        Ok(loaded.then(|| started.elapsed().as_millis() as u64))
    }

    fn load_upscaler(&self, path: &Path, want: u32) -> Result<(Upscaler, String), EngineError> {
        let started = Instant::now();
        let model =
            Upscaler::load(path, &self.device).map_err(|e| not_a_model(path, "upscaler", &e))?;
        if model.scale() != want {
            return Err(EngineError::ModelUnavailable(format!(
                "{} is an x{} upscaler, configured as the x{want} one",
                path.display(),
                model.scale()
            )));
        }
        tracing::info!(model = %path.display(), arch = model.arch(), scale = want, elapsed_ms = started.elapsed().as_millis() as u64, "upscaler loaded");
        Ok((model, path.display().to_string()))
    }

    fn resolve(&self, setting: &str, role: NetRole) -> Result<std::path::PathBuf, EngineError> {
        net_presets::resolve(setting, role, &self.settings.hub, self.settings.download)
            .map_err(|e| EngineError::ModelUnavailable(e.to_string()))
    }
}

fn check_cancel(cancel: &AtomicBool) -> Result<(), EngineError> {
    if cancel.load(Ordering::Relaxed) {
        Err(EngineError::Cancelled)
    } else {
        Ok(())
    }
}

/// A configured file that does not load is the operator's to fix: `model_unavailable` naming it.
fn not_a_model(path: &Path, what: &str, e: &anyhow::Error) -> EngineError {
    tracing::error!(model = %path.display(), error = %format!("{e:#}"), "{what} model did not load");
    EngineError::ModelUnavailable(format!(
        "{} is not a usable {what} model: {e:#}",
        path.display()
    ))
}
