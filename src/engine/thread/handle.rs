//! `EngineHandle`: the async side of an engine thread that holds a generator. Starting one
//! loads the model on the new thread; `generate` sends a request and awaits its reply.

use super::finish_handle::FinishHandle;
use super::serve::serve;
use super::state::{EngineCounters, EngineOptions, Loaded, Owned};
use super::work::{send, spawn_engine_thread, Command, Progress, Work};
use crate::engine::{EngineError, GenerateOutput, GenerateRequest, LoadReport};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Async handle to the engine thread. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    report: Arc<LoadReport>,
    generations: Arc<AtomicU64>,
    /// Set when a generation failed with an error that may leave the device unusable.
    broken: Arc<AtomicBool>,
    counters: Arc<EngineCounters>,
}

impl EngineHandle {
    /// Start the engine thread, run `load` on it (the generator and, when configured, the
    /// finishing models on the same device), and return once the model is loaded.
    pub async fn start<F>(load: F, options: EngineOptions) -> Result<EngineHandle, EngineError>
    where
        F: FnOnce() -> Result<Loaded, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let counters = Arc::new(EngineCounters::default());
        let thread_counters = counters.clone();
        spawn_engine_thread(move || {
            let Loaded {
                generator,
                finishers,
            } = match load() {
                Ok(loaded) => {
                    let _ = ready_tx.send(Ok(loaded.generator.load_report().clone()));
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
                counters: thread_counters,
            };
            serve(owned, rx, options.batch);
        })?;
        let report = ready_rx.await.map_err(|_| EngineError::Stopped)??;
        Ok(EngineHandle {
            tx,
            report: Arc::new(report),
            generations: Arc::new(AtomicU64::new(0)),
            broken: Arc::new(AtomicBool::new(false)),
            counters,
        })
    }

    /// A handle to this thread's finishing models.
    pub(crate) fn finisher(&self) -> FinishHandle {
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

    /// How many jobs were generated in a forward pass shared with other jobs.
    pub fn batched_jobs(&self) -> u64 {
        self.counters.batched_jobs()
    }

    /// What the engine thread counts, shared (for `/metrics`).
    pub(crate) fn counters(&self) -> Arc<EngineCounters> {
        self.counters.clone()
    }

    /// True once a generation failed with an error that may leave the device unusable (see
    /// [`EngineError::device_broken`]); a platform worker should then ask to be replaced.
    pub(crate) fn device_broken(&self) -> bool {
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
            req: Box::new(req),
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
