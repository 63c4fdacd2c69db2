//! What an engine thread owns (the generator, the finishing models) and counts, what its loader
//! returns, and how it batches.

use crate::engine::finish::Finishers;
use crate::engine::{BatchPolicy, Generator};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the thread owns: the generator (none on a finishing-only thread) and the finishing
/// models (none when the thread was started without their settings).
pub(super) struct Owned {
    pub(super) generator: Option<Box<dyn Generator>>,
    pub(super) finishers: Option<Finishers>,
    /// What the thread counts (the handle reads it).
    pub(super) counters: Arc<EngineCounters>,
}

/// Figures the engine thread keeps for whoever reports them (`/metrics` reads them through the
/// handle; the engine calls nothing above it).
#[derive(Debug)]
pub(crate) struct EngineCounters {
    /// Jobs generated in a forward pass shared with other jobs.
    pub(super) batched_jobs: AtomicU64,
    /// Device bytes free after the last generation (`u64::MAX`: not known yet).
    pub(super) memory_free: AtomicU64,
}

impl Default for EngineCounters {
    fn default() -> Self {
        EngineCounters {
            batched_jobs: AtomicU64::new(0),
            memory_free: AtomicU64::new(u64::MAX),
        }
    }
}

impl EngineCounters {
    /// Jobs generated in a forward pass shared with other jobs.
    pub(crate) fn batched_jobs(&self) -> u64 {
        self.batched_jobs.load(Ordering::Relaxed)
    }

    /// Device bytes free after the last generation, when the device can tell.
    pub(crate) fn memory_free(&self) -> Option<u64> {
        Some(self.memory_free.load(Ordering::Relaxed)).filter(|b| *b != u64::MAX)
    }
}

/// What the loader of an engine thread returns: the generator and, when configured, the
/// finishing models on the same device.
pub struct Loaded {
    pub generator: Box<dyn Generator>,
    pub(crate) finishers: Option<Finishers>,
}

impl Loaded {
    /// A generator alone (no finishing models on this thread).
    pub fn generator(generator: impl Generator + 'static) -> Self {
        Loaded {
            generator: Box::new(generator),
            finishers: None,
        }
    }
}

/// How an engine thread runs; the default batches nothing (every job alone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// How queued compatible jobs are gathered into shared forward passes.
    pub batch: BatchPolicy,
}
