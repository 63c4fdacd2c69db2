//! Batching on the engine thread: a queued generation is taken apart from its command, joined
//! by the queued generations that can share its forward passes (same `BatchKey`, within the
//! images allowed), run as one batch, and each member answered with its own result.

use super::state::Owned;
use super::work::{guarded, Command, Progress, Work};
use crate::engine::{BatchMember, EngineError, GenerateOutput, GenerateRequest};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One queued generation, taken apart from its command so it can join a batch.
pub(super) struct Generation {
    req: GenerateRequest,
    progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    reply: oneshot::Sender<Result<GenerateOutput, EngineError>>,
    cancel: Arc<AtomicBool>,
    span: tracing::Span,
}

/// A command sorted by what it asks for.
pub(super) enum Taken {
    Generation(Generation),
    Other(Command),
}

impl Generation {
    /// The generation a command asks for, or the command back when it asks for other work.
    pub(super) fn take(cmd: Command) -> Taken {
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
pub(super) fn gather(
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
pub(super) fn generate(owned: &mut Owned, batch: Vec<Generation>) {
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
                .counters
                .batched_jobs
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
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
        owned.counters.memory_free.store(free, Ordering::Relaxed);
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
