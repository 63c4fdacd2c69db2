//! The engine thread: one dedicated OS thread owns the device and the loaded `Generator`; the
//! async side sends it commands over a channel and awaits a oneshot reply. GPU work blocks, so it
//! is not dressed up as async.

use super::finish::{FinishOutput, Finishers, LoadTimes};
use super::{
    BatchMember, BatchPolicy, EngineError, GenerateOutput, GenerateRequest, Generator, LoadReport,
};
use image::RgbaImage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
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
    /// Jobs that shared a forward pass with others (the handle reads it).
    batched: Arc<AtomicU64>,
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
    batched: Arc<AtomicU64>,
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

    /// Start the engine thread with the generator and the finishing models `load` returns;
    /// every job alone.
    pub async fn start_with_finishers<F>(load: F) -> Result<EngineHandle, EngineError>
    where
        F: FnOnce() -> Result<Loaded, EngineError> + Send + 'static,
    {
        Self::start_batching(load, BatchPolicy::NONE).await
    }

    /// Start the engine thread as [`EngineHandle::start_with_finishers`] does, gathering queued
    /// compatible jobs into shared forward passes by `policy`.
    pub async fn start_batching<F>(
        load: F,
        policy: BatchPolicy,
    ) -> Result<EngineHandle, EngineError>
    where
        F: FnOnce() -> Result<Loaded, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let batched = Arc::new(AtomicU64::new(0));
        let counter = batched.clone();
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
                batched: counter,
            };
            run(owned, rx, policy);
        })?;
        let report = ready_rx.await.map_err(|_| EngineError::Stopped)??;
        Ok(EngineHandle {
            tx,
            report: Arc::new(report),
            generations: Arc::new(AtomicU64::new(0)),
            broken: Arc::new(AtomicBool::new(false)),
            batched,
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

    /// How many jobs were generated in a forward pass shared with other jobs.
    pub fn batched_jobs(&self) -> u64 {
        self.batched.load(Ordering::Relaxed)
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
                    batched: Arc::default(),
                },
                rx,
                BatchPolicy::NONE,
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

fn run(mut owned: Owned, rx: mpsc::Receiver<Command>, policy: BatchPolicy) {
    // Commands taken off the channel while a batch was gathered, not part of it: served first,
    // in the order they came.
    let mut backlog: VecDeque<Command> = VecDeque::new();
    loop {
        let cmd = match backlog.pop_front() {
            Some(cmd) => cmd,
            None => match rx.recv() {
                Ok(cmd) => cmd,
                Err(_) => break,
            },
        };
        let cmd = match Generation::take(cmd) {
            Taken::Generation(first) => {
                let capacity = owned
                    .generator
                    .as_ref()
                    .map_or(1, |g| g.batch_images())
                    .min(policy.max_images as usize);
                let batch = gather(first, &rx, &mut backlog, capacity, policy.wait);
                generate(&mut owned, batch);
                continue;
            }
            Taken::Other(cmd) => cmd,
        };
        let Command { work, cancel, span } = cmd;
        let _span = span.enter();
        let cancel = &cancel;
        match work {
            Work::Generate { .. } => unreachable!("taken as a generation above"),
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

/// One queued generation, taken apart from its command so it can join a batch.
struct Generation {
    req: GenerateRequest,
    progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    reply: oneshot::Sender<Result<GenerateOutput, EngineError>>,
    cancel: Arc<AtomicBool>,
    span: tracing::Span,
}

/// A command sorted by what it asks for.
enum Taken {
    Generation(Generation),
    Other(Command),
}

impl Generation {
    /// The generation a command asks for, or the command back when it asks for other work.
    fn take(cmd: Command) -> Taken {
        match cmd.work {
            Work::Generate {
                req,
                progress,
                reply,
            } => Taken::Generation(Generation {
                req: *req,
                progress,
                reply,
                cancel: cmd.cancel,
                span: cmd.span,
            }),
            work => Taken::Other(Command { work, ..cmd }),
        }
    }
}

/// `first` and the queued generations that can share its forward passes: compatible (same
/// [`super::BatchKey`]), not cancelled, and within `capacity` images and every member's own
/// memory-admitted batch. Looks at the backlog, then at the channel, waiting up to `wait` for
/// more while the batch is not full; stops waiting as soon as anything else arrives (someone is
/// waiting for it). Whatever does not join goes to the backlog, in order.
fn gather(
    first: Generation,
    rx: &mpsc::Receiver<Command>,
    backlog: &mut VecDeque<Command>,
    capacity: usize,
    wait: Duration,
) -> Vec<Generation> {
    let Some(key) = first.req.batch_key() else {
        return vec![first];
    };
    if first.cancel.load(Ordering::Relaxed) {
        return vec![first];
    }
    let admitted = |g: &GenerateRequest| g.max_batch.map_or(usize::MAX, |m| m.max(1) as usize);
    let mut limit = capacity.min(admitted(&first.req));
    let mut images = first.req.num_images as usize;
    let mut batch = vec![first];
    let joins = |cmd: &Command, images: usize, limit: usize| match &cmd.work {
        Work::Generate { req, .. } => {
            let total = images + req.num_images as usize;
            req.batch_key() == Some(key)
                && !cmd.cancel.load(Ordering::Relaxed)
                && total <= limit.min(admitted(req))
        }
        _ => false,
    };
    let mut i = 0;
    while i < backlog.len() && images < limit {
        if joins(&backlog[i], images, limit) {
            let cmd = backlog.remove(i).expect("index checked");
            add(cmd, &mut batch, &mut images, &mut limit);
        } else {
            i += 1;
        }
    }
    let deadline = Instant::now() + wait;
    while images < limit {
        let next = match rx.try_recv() {
            Ok(cmd) => cmd,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !backlog.is_empty() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                }
            }
        };
        if joins(&next, images, limit) {
            add(next, &mut batch, &mut images, &mut limit);
        } else {
            backlog.push_back(next);
        }
    }
    batch
}

fn add(cmd: Command, batch: &mut Vec<Generation>, images: &mut usize, limit: &mut usize) {
    let Taken::Generation(g) = Generation::take(cmd) else {
        unreachable!("only generations join a batch")
    };
    *images += g.req.num_images as usize;
    if let Some(m) = g.req.max_batch {
        *limit = (*limit).min(m.max(1) as usize);
    }
    batch.push(g);
}

/// Run a gathered batch (often of one) and answer each member.
fn generate(owned: &mut Owned, batch: Vec<Generation>) {
    let results: Vec<Result<GenerateOutput, EngineError>> = match owned.generator.as_mut() {
        None => batch
            .iter()
            .map(|_| {
                Err(EngineError::ModelUnavailable(
                    "this worker has no model loaded; it serves mockup-only jobs".to_owned(),
                ))
            })
            .collect(),
        Some(generator) if batch.len() == 1 => {
            let g = &batch[0];
            let result = guarded(
                "generation",
                || {
                    let mut on_step = step_reporter(&g.progress);
                    generator.generate(&g.req, &g.cancel, &mut on_step)
                },
                &g.cancel,
            );
            vec![result]
        }
        Some(generator) => {
            let images: u32 = batch.iter().map(|g| g.req.num_images).sum();
            tracing::info!(
                jobs = batch.len(),
                images,
                "generating queued jobs in one batch"
            );
            owned
                .batched
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            crate::intake::runtime::metrics::global().batched(batch.len() as u64);
            let mut reporters: Vec<_> = batch.iter().map(|g| step_reporter(&g.progress)).collect();
            let mut members: Vec<BatchMember<'_>> = batch
                .iter()
                .zip(reporters.iter_mut())
                .map(|(g, on_step)| BatchMember {
                    req: &g.req,
                    cancel: &g.cancel,
                    on_step,
                })
                .collect();
            let never = AtomicBool::new(false);
            match guarded(
                "generation",
                || Ok(generator.generate_batch(&mut members)),
                &never,
            ) {
                Ok(results) => results,
                Err(e) => {
                    let text = e.to_string();
                    batch
                        .iter()
                        .map(|_| Err(EngineError::Failed(text.clone())))
                        .collect()
                }
            }
        }
    };
    if let Some(free) = owned.generator.as_ref().and_then(|g| g.free_memory()) {
        crate::intake::runtime::metrics::global().device_memory_free(free);
    }
    for (g, result) in batch.into_iter().zip(results) {
        let _span = g.span.enter();
        let _ = g.reply.send(result);
    }
}

/// The step callback of one generation: forwards (step, total) to the job's progress channel.
fn step_reporter(
    progress: &Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
) -> impl FnMut(u32, u32) + '_ {
    move |step, total| {
        if let Some(p) = progress {
            let _ = p.send(Progress { step, total });
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
            load_bytes: None,
            peak_host_memory_bytes: None,
        };
        LoadReport {
            info,
            load_ms: 0,
            bytes: 0,
            source: "test".into(),
            defaults: Default::default(),
            footprint: None,
            free_after_load: None,
            warm_up_ms: None,
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
            true_cfg: None,
            loras: Vec::new(),
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

    /// Records the prompts of every pass; fails members whose prompt is `fail`.
    struct Recorder {
        report: LoadReport,
        passes: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    }

    impl Recorder {
        fn output(req: &GenerateRequest) -> Result<GenerateOutput, EngineError> {
            if req.prompt == "fail" {
                return Err(EngineError::Failed(
                    "this member cannot be generated".into(),
                ));
            }
            let images = (0..req.num_images)
                .map(|i| crate::engine::GeneratedImage {
                    image: RgbaImage::new(req.width, req.height),
                    seed: req.seed + u64::from(i),
                })
                .collect();
            Ok(GenerateOutput {
                images,
                timings: Default::default(),
            })
        }
    }

    impl Generator for Recorder {
        fn load_report(&self) -> &LoadReport {
            &self.report
        }
        fn generate(
            &mut self,
            req: &GenerateRequest,
            _: &AtomicBool,
            _: StepCallback<'_>,
        ) -> Result<GenerateOutput, EngineError> {
            self.passes.lock().unwrap().push(vec![req.prompt.clone()]);
            Self::output(req)
        }
        fn batch_images(&self) -> usize {
            4
        }
        fn generate_batch(
            &mut self,
            members: &mut [BatchMember<'_>],
        ) -> Vec<Result<GenerateOutput, EngineError>> {
            let prompts = members.iter().map(|m| m.req.prompt.clone()).collect();
            self.passes.lock().unwrap().push(prompts);
            members.iter().map(|m| Self::output(m.req)).collect()
        }
    }

    async fn recorder(
        policy: BatchPolicy,
    ) -> (EngineHandle, Arc<std::sync::Mutex<Vec<Vec<String>>>>) {
        let passes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let generator = Recorder {
            report: report(),
            passes: passes.clone(),
        };
        let engine = EngineHandle::start_batching(
            move || Ok((Box::new(generator) as Box<dyn Generator>, None)),
            policy,
        )
        .await
        .unwrap();
        (engine, passes)
    }

    fn job(prompt: &str, side: u32, images: u32) -> GenerateRequest {
        GenerateRequest {
            prompt: prompt.into(),
            width: side,
            height: side,
            num_images: images,
            ..request()
        }
    }

    const WAIT: BatchPolicy = BatchPolicy {
        max_images: 4,
        wait: Duration::from_millis(500),
    };

    async fn run_all(
        engine: &EngineHandle,
        jobs: Vec<(GenerateRequest, bool)>,
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        // The test runtime runs one task at a time, in spawn order: the commands queue in order.
        let calls: Vec<_> = jobs
            .into_iter()
            .map(|(req, cancelled)| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    engine
                        .generate(req, Arc::new(AtomicBool::new(cancelled)), None)
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap());
        }
        results
    }

    #[tokio::test]
    async fn queued_compatible_jobs_share_a_pass_and_the_others_wait_their_turn() {
        let (engine, passes) = recorder(WAIT).await;
        let results = run_all(
            &engine,
            vec![
                (job("a", 16, 1), false),
                (job("b", 16, 2), false),
                (job("c", 16, 1), false),
                (job("other size", 32, 1), false),
            ],
        )
        .await;
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        assert_eq!(results[1].as_ref().unwrap().images.len(), 2);
        assert_eq!(
            *passes.lock().unwrap(),
            vec![vec!["a", "b", "c"], vec!["other size"]]
        );
        assert_eq!(engine.batched_jobs(), 3);
    }

    #[tokio::test]
    async fn a_batch_holds_no_more_images_than_allowed_and_no_cancelled_job() {
        let (engine, passes) = recorder(WAIT).await;
        let mut admitted = job("admitted for 2", 16, 1);
        admitted.max_batch = Some(2);
        let results = run_all(
            &engine,
            vec![
                (job("a", 16, 2), false),
                (job("cancelled", 16, 1), true),
                (job("b", 16, 2), false),
                (job("c", 16, 2), false),
                (admitted, false),
            ],
        )
        .await;
        assert!(matches!(results[1], Err(EngineError::Cancelled)));
        // Which jobs meet in a pass depends on when they reach the engine; the limits never do.
        let passes = passes.lock().unwrap().clone();
        let images = |p: &Vec<String>| -> usize {
            p.iter()
                .map(|j| if j == "admitted for 2" { 1 } else { 2 })
                .sum()
        };
        assert!(passes.iter().all(|p| images(p) <= 4), "{passes:?}");
        assert!(passes.iter().all(|p| !p.contains(&"cancelled".to_owned())));
        assert!(
            passes
                .iter()
                .filter(|p| p.contains(&"admitted for 2".to_owned()))
                .all(|p| images(p) <= 2),
            "{passes:?}"
        );
        assert!(results.iter().enumerate().all(|(i, r)| i == 1 || r.is_ok()));
    }

    #[tokio::test]
    async fn a_member_that_fails_in_a_batch_fails_alone() {
        let (engine, passes) = recorder(WAIT).await;
        let results = run_all(
            &engine,
            vec![
                (job("a", 16, 1), false),
                (job("fail", 16, 1), false),
                (job("b", 16, 1), false),
            ],
        )
        .await;
        assert_eq!(passes.lock().unwrap().len(), 1, "one shared pass");
        assert!(results[0].is_ok() && results[2].is_ok());
        assert!(matches!(results[1], Err(EngineError::Failed(_))));
    }

    #[tokio::test]
    async fn without_a_batch_policy_every_job_runs_alone() {
        let (engine, passes) = recorder(BatchPolicy::NONE).await;
        let results = run_all(
            &engine,
            vec![(job("a", 16, 1), false), (job("b", 16, 1), false)],
        )
        .await;
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(*passes.lock().unwrap(), vec![vec!["a"], vec!["b"]]);
        assert_eq!(engine.batched_jobs(), 0);
    }
}
