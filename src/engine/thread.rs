//! The engine thread: one dedicated OS thread owns the device and the loaded `Generator`; the
//! async side sends it commands over a channel and awaits a oneshot reply. GPU work blocks, so it
//! is not dressed up as async.

use super::{EngineError, GenerateOutput, GenerateRequest, Generator, LoadReport};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Progress of a running generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub step: u32,
    pub total: u32,
}

struct Command {
    req: GenerateRequest,
    cancel: Arc<AtomicBool>,
    progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    reply: oneshot::Sender<Result<GenerateOutput, EngineError>>,
    span: tracing::Span,
}

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
    /// Start the engine thread, run `load` on it, and return once the model is loaded.
    pub async fn start<F>(load: F) -> Result<EngineHandle, EngineError>
    where
        F: FnOnce() -> Result<Box<dyn Generator>, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("merchgen-engine".to_owned())
            .spawn(move || {
                let mut generator = match load() {
                    Ok(g) => {
                        let _ = ready_tx.send(Ok(g.load_report().clone()));
                        g
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                run(generator.as_mut(), rx);
            })
            .map_err(|e| EngineError::Failed(format!("cannot start the engine thread: {e}")))?;
        let report = ready_rx.await.map_err(|_| EngineError::Stopped)??;
        Ok(EngineHandle {
            tx,
            report: Arc::new(report),
            generations: Arc::new(AtomicU64::new(0)),
            broken: Arc::new(AtomicBool::new(false)),
        })
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
        let sent = self.tx.send(Command {
            req,
            cancel,
            progress,
            reply,
            span: tracing::Span::current(),
        });
        let result = match sent {
            Ok(()) => rx.await.unwrap_or(Err(EngineError::Stopped)),
            Err(_) => Err(EngineError::Stopped),
        };
        if let Err(e) = &result {
            if e.device_broken() {
                tracing::error!(error = %e, "the device may be unusable after this error");
                self.broken.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

fn run(generator: &mut dyn Generator, rx: mpsc::Receiver<Command>) {
    while let Ok(cmd) = rx.recv() {
        let _span = cmd.span.enter();
        if cmd.cancel.load(Ordering::Relaxed) {
            let _ = cmd.reply.send(Err(EngineError::Cancelled));
            continue;
        }
        let progress = cmd.progress;
        let mut on_step = |step: u32, total: u32| {
            if let Some(p) = &progress {
                let _ = p.send(Progress { step, total });
            }
        };
        // A panic inside candle must not take the worker down: report it as a failed job.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            generator.generate(&cmd.req, &cmd.cancel, &mut on_step)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            tracing::error!(panic = %what, "generation panicked");
            Err(EngineError::Failed(format!("panic: {what}")))
        });
        let _ = cmd.reply.send(result);
    }
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
