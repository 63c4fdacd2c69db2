//! The engine thread's loop: take a command, gather a batch when it is a generation
//! (`batching`), run it on the device, answer. Every piece of device work is guarded: skipped
//! when already cancelled, and a panic inside candle becomes a failed job, not a dead worker.

use super::batching::{gather, generate, Generation, Taken};
use super::state::Owned;
use super::work::{guarded, Command, Work};
use crate::engine::finish::Finishers;
use crate::engine::{BatchPolicy, EngineError};
use std::collections::VecDeque;
use std::sync::mpsc;

/// Serve commands until every handle is gone: generations (gathered into batches by `policy`)
/// and finishing work, one at a time, in the order they came.
pub(super) fn serve(mut owned: Owned, rx: mpsc::Receiver<Command>, policy: BatchPolicy) {
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

fn finishers(owned: &mut Owned) -> Result<&mut Finishers, EngineError> {
    owned.finishers.as_mut().ok_or_else(|| {
        EngineError::ModelUnavailable(
            "this worker was started without background-removal and upscaling models".to_owned(),
        )
    })
}
