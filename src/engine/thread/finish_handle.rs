//! `FinishHandle`: the async side of the finishing models (matting, upscaling) on an engine
//! thread: the generator's own thread, or one of their own on a worker without a generator.

use super::serve::serve;
use super::state::Owned;
use super::work::{send, spawn_engine_thread, Command, Work};
use crate::engine::finish::{FinishOutput, Finishers, LoadTimes};
use crate::engine::{BatchPolicy, EngineError};
use image::RgbaImage;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Async handle to the finishing models of an engine thread (or of a thread that has no
/// generator, on a mockup-only worker). Cheap to clone.
#[derive(Clone)]
pub(crate) struct FinishHandle {
    pub(super) tx: mpsc::Sender<Command>,
}

impl FinishHandle {
    /// Start a thread that owns only finishing models (a worker without a generator).
    pub(crate) fn start(
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
            serve(
                Owned {
                    generator: None,
                    finishers,
                    counters: Arc::default(),
                },
                rx,
                BatchPolicy::NONE,
            );
        })?;
        Ok(FinishHandle { tx })
    }

    /// Load the models a job needs now (before its generation): (matting, upscaler) load ms.
    pub(crate) async fn prepare(
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
    pub(crate) async fn matte(
        &self,
        images: Vec<RgbaImage>,
        cancel: Arc<AtomicBool>,
    ) -> Result<FinishOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        send(&self.tx, Work::Matte { images, reply }, cancel, rx).await
    }

    /// Super-resolve each image by `factor` (2 or 4).
    pub(crate) async fn upscale(
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
