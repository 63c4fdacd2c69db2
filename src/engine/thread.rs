//! The engine thread: one dedicated OS thread owns the device and the loaded `Generator`; the
//! async side sends it commands over a channel and awaits a oneshot reply. GPU work blocks, so it
//! is not dressed up as async.

use super::finish::{FinishOutput, Finishers, LoadTimes};
use super::{EngineError, GenerateOutput, GenerateRequest, Generator, LoadReport};
use image::RgbaImage;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Progress of a running generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub step: u32,
    pub total: u32,
}

/// What the engine thread is asked to do.
enum Work {
    Generate {
        req: GenerateRequest,
        progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
        reply: oneshot::Sender<Result<GenerateOutput, EngineError>>,
    },
    /// Background removal by the matting model.
    Matte {
        images: Vec<RgbaImage>,
        reply: oneshot::Sender<Result<FinishOutput, EngineError>>,
    },
    /// Load the finishing models a job will need.
    Prepare {
        matting: bool,
        upscale: Option<u32>,
        reply: oneshot::Sender<Result<LoadTimes, EngineError>>,
    },
    /// Super-resolution by `factor`.
    Upscale {
        images: Vec<RgbaImage>,
        factor: u32,
        reply: oneshot::Sender<Result<FinishOutput, EngineError>>,
    },
}

struct Command {
    work: Work,
    cancel: Arc<AtomicBool>,
    span: tracing::Span,
}

/// What the thread owns: the generator (none on a finishing-only thread) and the finishing
/// models (none when the thread was started without their settings).
struct Owned {
    generator: Option<Box<dyn Generator>>,
    finishers: Option<Finishers>,
}

/// The loader of an engine thread: the generator and, when configured, the finishing models on
/// the same device.
pub type Loaded = (Box<dyn Generator>, Option<Finishers>);

/// Async handle to the engine thread. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    report: Arc<LoadReport>,
    generations: Arc<AtomicU64>,
    /// Set when a generation failed with an error that may leave the device unusable.
    broken: Arc<AtomicBool>,
}

impl EngineHandle {
    /// Start the engine thread, run `load` on it, and return once the model is loaded. The
    /// thread has no finishing models (see [`EngineHandle::start_with_finishers`]).
    pub async fn start<F>(load: F) -> Result<EngineHandle, EngineError>
    where
        F: FnOnce() -> Result<Box<dyn Generator>, EngineError> + Send + 'static,
    {
        Self::start_with_finishers(move || Ok((load()?, None))).await
    }

    /// Start the engine thread with the generator and the finishing models `load` returns.
    pub async fn start_with_finishers<F>(load: F) -> Result<EngineHandle, EngineError>
    where
        F: FnOnce() -> Result<Loaded, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = oneshot::channel();
        spawn_engine_thread(move || {
            let (generator, finishers) = match load() {
                Ok(loaded) => {
                    let _ = ready_tx.send(Ok(loaded.0.load_report().clone()));
                    loaded
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let owned = Owned {
                generator: Some(generator),
                finishers,
            };
            run(owned, rx);
        })?;
        let report = ready_rx.await.map_err(|_| EngineError::Stopped)??;
        Ok(EngineHandle {
            tx,
            report: Arc::new(report),
            generations: Arc::new(AtomicU64::new(0)),
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle to this thread's finishing models.
    pub fn finisher(&self) -> FinishHandle {
        FinishHandle {
            tx: self.tx.clone(),
        }
    }

    /// What loading cost, and which model and device.
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// How many generations this process has run (tests use it to prove replays skip the model).
    pub fn generations(&self) -> u64 {
        self.generations.load(Ordering::Relaxed)
    }

    /// True once a generation failed with an error that may leave the device unusable (see
    /// [`EngineError::device_broken`]); a platform worker should then ask to be replaced.
    pub fn device_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Generate on the engine thread. Set `cancel` to stop between denoising steps.
    pub async fn generate(
        &self,
        req: GenerateRequest,
        cancel: Arc<AtomicBool>,
        progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    ) -> Result<GenerateOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.generations.fetch_add(1, Ordering::Relaxed);
        let work = Work::Generate {
            req,
            progress,
            reply,
        };
        let result = send(&self.tx, work, cancel, rx).await;
        if let Err(e) = &result {
            if e.device_broken() {
                tracing::error!(error = %e, "the device may be unusable after this error");
                self.broken.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

/// Async handle to the finishing models of an engine thread (or of a thread that has no
/// generator, on a mockup-only worker). Cheap to clone.
#[derive(Clone)]
pub struct FinishHandle {
    tx: mpsc::Sender<Command>,
}

impl FinishHandle {
    /// Start a thread that owns only finishing models (a worker without a generator).
    pub fn start(
        load: impl FnOnce() -> Result<Finishers, EngineError> + Send + 'static,
    ) -> Result<Self, EngineError> {
        let (tx, rx) = mpsc::channel::<Command>();
        spawn_engine_thread(move || {
            let finishers = match load() {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(error = %e, "finishing models unavailable on this worker");
                    None
                }
            };
            run(
                Owned {
                    generator: None,
                    finishers,
                },
                rx,
            );
        })?;
        Ok(FinishHandle { tx })
    }

    /// Load the models a job needs now (before its generation): (matting, upscaler) load ms.
    pub async fn prepare(
        &self,
        matting: bool,
        upscale: Option<u32>,
        cancel: Arc<AtomicBool>,
    ) -> Result<LoadTimes, EngineError> {
        let (reply, rx) = oneshot::channel();
        let work = Work::Prepare {
            matting,
            upscale,
            reply,
        };
        send(&self.tx, work, cancel, rx).await
    }

    /// Cut the subject of each image out with the matting model.
    pub async fn matte(
        &self,
        images: Vec<RgbaImage>,
        cancel: Arc<AtomicBool>,
    ) -> Result<FinishOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        send(&self.tx, Work::Matte { images, reply }, cancel, rx).await
    }

    /// Super-resolve each image by `factor` (2 or 4).
    pub async fn upscale(
        &self,
        images: Vec<RgbaImage>,
        factor: u32,
        cancel: Arc<AtomicBool>,
    ) -> Result<FinishOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        let work = Work::Upscale {
            images,
            factor,
            reply,
        };
        send(&self.tx, work, cancel, rx).await
    }
}

async fn send<T>(
    tx: &mpsc::Sender<Command>,
    work: Work,
    cancel: Arc<AtomicBool>,
    rx: oneshot::Receiver<Result<T, EngineError>>,
) -> Result<T, EngineError> {
    let cmd = Command {
        work,
        cancel,
        span: tracing::Span::current(),
    };
    match tx.send(cmd) {
        Ok(()) => rx.await.unwrap_or(Err(EngineError::Stopped)),
        Err(_) => Err(EngineError::Stopped),
    }
}

fn spawn_engine_thread(body: impl FnOnce() + Send + 'static) -> Result<(), EngineError> {
    std::thread::Builder::new()
        .name("merchgen-engine".to_owned())
        .spawn(body)
        .map(|_| ())
        .map_err(|e| EngineError::Failed(format!("cannot start the engine thread: {e}")))
}

fn run(mut owned: Owned, rx: mpsc::Receiver<Command>) {
    while let Ok(cmd) = rx.recv() {
        let _span = cmd.span.enter();
        let cancel = &cmd.cancel;
        match cmd.work {
            Work::Generate {
                req,
                progress,
                reply,
            } => {
                let result = guarded(
                    "generation",
                    || {
                        let generator = owned.generator.as_mut().ok_or_else(|| {
                            EngineError::ModelUnavailable(
                                "this worker has no model loaded; it serves mockup-only jobs"
                                    .to_owned(),
                            )
                        })?;
                        let mut on_step = |step: u32, total: u32| {
                            if let Some(p) = &progress {
                                let _ = p.send(Progress { step, total });
                            }
                        };
                        generator.generate(&req, cancel, &mut on_step)
                    },
                    cancel,
                );
                if let Some(free) = owned.generator.as_ref().and_then(|g| g.free_memory()) {
                    crate::intake::runtime::metrics::global().device_memory_free(free);
                }
                let _ = reply.send(result);
            }
            Work::Prepare {
                matting,
                upscale,
                reply,
            } => {
                let result = guarded(
                    "prepare",
                    || finishers(&mut owned)?.prepare(matting, upscale),
                    cancel,
                );
                let _ = reply.send(result);
            }
            Work::Matte { images, reply } => {
                let result = guarded(
                    "matting",
                    || finishers(&mut owned)?.matte(images, cancel),
                    cancel,
                );
                let _ = reply.send(result);
            }
            Work::Upscale {
                images,
                factor,
                reply,
            } => {
                let result = guarded(
                    "upscale",
                    || finishers(&mut owned)?.upscale(images, factor, cancel),
                    cancel,
                );
                let _ = reply.send(result);
            }
        }
    }
}

fn finishers(owned: &mut Owned) -> Result<&mut Finishers, EngineError> {
    owned.finishers.as_mut().ok_or_else(|| {
        EngineError::ModelUnavailable(
            "this worker was started without background-removal and upscaling models".to_owned(),
        )
    })
}

/// Run one piece of device work: skipped when already cancelled, and a panic inside candle is
/// reported as a failed job instead of taking the worker down.
fn guarded<T>(
    stage: &str,
    work: impl FnOnce() -> Result<T, EngineError>,
    cancel: &AtomicBool,
) -> Result<T, EngineError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(EngineError::Cancelled);
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        tracing::error!(panic = %what, stage, "engine work panicked");
        Err(EngineError::Failed(format!("panic: {what}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StepCallback;
    use crate::job::outcome::ModelInfo;

    /// Fails every generation with the given error text.
    struct Failing(LoadReport, &'static str);

    impl Generator for Failing {
        fn load_report(&self) -> &LoadReport {
            &self.0
        }
        fn generate(
            &mut self,
            _: &GenerateRequest,
            _: &AtomicBool,
            _: StepCallback<'_>,
        ) -> Result<GenerateOutput, EngineError> {
            Err(EngineError::Failed(self.1.to_owned()))
        }
    }

    fn report() -> LoadReport {
        let info = ModelInfo {
            preset: "fake".into(),
            weights: "none".into(),
            device: "cpu".into(),
        };
        LoadReport {
            info,
            load_ms: 0,
            bytes: 0,
            source: "test".into(),
            defaults: Default::default(),
            footprint: None,
            free_after_load: None,
        }
    }

    fn request() -> GenerateRequest {
        GenerateRequest {
            prompt: "x".into(),
            width: 16,
            height: 16,
            steps: 1,
            guidance: 0.0,
            seed: 1,
            num_images: 1,
            max_sequence_length: 8,
            init: None,
            noise: None,
            dump_latents: None,
            max_batch: None,
        }
    }

    async fn handle_failing_with(text: &'static str) -> EngineHandle {
        let engine =
            EngineHandle::start(
                move || Ok(Box::new(Failing(report(), text)) as Box<dyn Generator>),
            )
            .await
            .unwrap();
        let result = engine
            .generate(request(), Arc::new(AtomicBool::new(false)), None)
            .await;
        assert!(result.is_err());
        engine
    }

    #[tokio::test]
    async fn device_broken_set_by_cuda_error_only() {
        assert!(
            handle_failing_with("DriverError(CUDA_ERROR_ILLEGAL_ADDRESS)")
                .await
                .device_broken()
        );
        assert!(!handle_failing_with("shape mismatch").await.device_broken());
    }
}
