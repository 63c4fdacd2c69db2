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

    /// Generate on the engine thread. Set `cancel` to stop between denoising steps.
    pub async fn generate(
        &self,
        req: GenerateRequest,
        cancel: Arc<AtomicBool>,
        progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    ) -> Result<GenerateOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.generations.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Command {
                req,
                cancel,
                progress,
                reply,
                span: tracing::Span::current(),
            })
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
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
