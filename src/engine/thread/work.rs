//! The engine thread's protocol: the work it is asked to do (`Work`), a request with its cancel
//! flag and the caller's span (`Command`), sending one and awaiting its reply (`send`), starting
//! the thread, and running one piece of device work guarded against cancellation and panics.

use crate::engine::finish::{FinishOutput, LoadTimes};
use crate::engine::{EngineError, GenerateOutput, GenerateRequest};
use image::RgbaImage;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Progress of a running generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub step: u32,
    pub total: u32,
}

/// What the engine thread is asked to do.
pub(super) enum Work {
    Generate {
        req: Box<GenerateRequest>,
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

pub(super) struct Command {
    pub(super) work: Work,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) span: tracing::Span,
}

pub(super) async fn send<T>(
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

pub(super) fn spawn_engine_thread(body: impl FnOnce() + Send + 'static) -> Result<(), EngineError> {
    std::thread::Builder::new()
        .name("merchgen-engine".to_owned())
        .spawn(body)
        .map(|_| ())
        .map_err(|e| EngineError::Failed(format!("cannot start the engine thread: {e}")))
}

/// Run one piece of device work: skipped when already cancelled, and a panic inside candle is
/// reported as a failed job instead of taking the worker down.
pub(super) fn guarded<T>(
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
