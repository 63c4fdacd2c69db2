//! The jobs this worker has taken and not yet settled: their ids feed the heartbeat and
//! `job_in_progress`, and their cancel flags let job-stop reach a running job. Shared by the
//! take loop, the heartbeat and the job-stop poll; holds no I/O.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// One taken job's flags.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub id: String,
    /// Handed to the worker: set to stop between denoising steps.
    pub cancel: Arc<AtomicBool>,
    /// Set when the platform asked (job-stop) to stop the job: no result is posted then.
    pub stopped: Arc<AtomicBool>,
    /// Denoising steps finished so far (as reported by the engine).
    pub steps_done: Arc<AtomicU32>,
    /// `steps_done` when job-stop named the job.
    pub steps_at_stop: Arc<AtomicU32>,
}

impl Tracked {
    /// True once job-stop named this job.
    pub(crate) fn was_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Steps finished: now, and when job-stop named the job.
    pub(crate) fn steps(&self) -> (u32, u32) {
        (
            self.steps_done.load(Ordering::Relaxed),
            self.steps_at_stop.load(Ordering::Relaxed),
        )
    }
}

/// Taken, unsettled jobs in the order they were taken. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    jobs: Arc<Mutex<Vec<Tracked>>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Tracked>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Track a job (a repeated id keeps its first entry) and return its flags.
    pub(crate) fn add(&self, id: &str) -> Tracked {
        let mut jobs = self.lock();
        if let Some(t) = jobs.iter().find(|t| t.id == id) {
            return t.clone();
        }
        let t = Tracked {
            id: id.to_owned(),
            cancel: Arc::default(),
            stopped: Arc::default(),
            steps_done: Arc::default(),
            steps_at_stop: Arc::default(),
        };
        jobs.push(t.clone());
        t
    }

    /// Forget a settled job.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().retain(|t| t.id != id);
    }

    /// Ids in flight, in the order taken.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().iter().map(|t| t.id.clone()).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Stop a job asked for by job-stop; false when it is not in flight here.
    pub(crate) fn stop(&self, id: &str) -> bool {
        let jobs = self.lock();
        let Some(t) = jobs.iter().find(|t| t.id == id) else {
            return false;
        };
        if !t.stopped.swap(true, Ordering::Relaxed) {
            let done = t.steps_done.load(Ordering::Relaxed);
            t.steps_at_stop.store(done, Ordering::Relaxed);
        }
        t.cancel.store(true, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_sets_flags_of_tracked_job_only() {
        let f = InFlight::default();
        let a = f.add("a");
        f.add("b");
        assert_eq!(f.ids(), ["a", "b"]);
        assert!(f.stop("a") && !f.stop("zzz"));
        assert!(a.was_stopped() && a.cancel.load(Ordering::Relaxed));
        f.remove("a");
        assert_eq!(f.ids(), ["b"]);
    }
}
