//! LoRAs per job on merchgen's FLUX transformer. `formats` reads a file in any supported naming
//! into pieces of BFL-named layers; this module checks them against the loaded model, stacks the
//! pieces of every LoRA of the job per layer (`up` `(out, R)` with each LoRA's `scale · alpha/r`
//! folded in, `down` `(R, in)`) and hands them to the layer (`transformer::linear`: merged into a
//! copy of dense weights, or a side path next to quantized ones). The set applied is remembered:
//! a job with the same set pays nothing, and one with another set (or none) first returns every
//! layer to its untouched base weight, so the next job sees exactly the loaded model. The stacked
//! factors of the last two sets stay on the device, so alternating between two costs only the
//! hand-over (and, on dense weights, the merge).

pub(crate) mod formats;

use crate::engine::flux::transformer::FluxTransformer;
use crate::engine::request::{set_key, SetKey};
use crate::engine::{EngineError, LoraInput};
use candle_core::{Device, Tensor};
use formats::{ModelShape, ParsedLora};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// What applying a job's LoRAs cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoraTimings {
    /// Reading and parsing the files (0 when they were parsed for an earlier job).
    pub load_ms: u64,
    /// Building the deltas and merging them (or the side paths) on the device.
    pub(crate) apply_ms: u64,
}

/// Parsed LoRAs kept for switching back and forth.
const PARSED_KEPT: usize = 4;
/// LoRA sets whose stacked factors stay on the device (switching between two of them then costs
/// only handing the factors to the layers; on quantized weights, about nothing).
const STACKED_KEPT: usize = 2;

/// A set's stacked `(down, up)` per layer, on the device.
type Stacked = Arc<BTreeMap<String, (Tensor, Tensor)>>;

/// The LoRA set applied to the transformer, and recently parsed files.
#[derive(Default)]
pub(crate) struct LoraState {
    applied: SetKey,
    parsed: VecDeque<(String, Arc<ParsedLora>)>,
    stacked: VecDeque<(SetKey, Stacked)>,
}

fn invalid(index: usize, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: format!("loras[{index}]"),
        message: message.into(),
    }
}

impl LoraState {
    /// Make `loras` (those with a non-zero scale) the transformer's LoRA set. On any error the
    /// transformer is left with no LoRA at all.
    pub(crate) fn ensure(
        &mut self,
        model: &mut FluxTransformer,
        loras: &[LoraInput],
        device: &Device,
    ) -> Result<LoraTimings, EngineError> {
        let wanted: Vec<&LoraInput> = loras.iter().filter(|l| l.scale != 0.0).collect();
        let key = set_key(loras);
        if key == self.applied {
            return Ok(LoraTimings::default());
        }
        clear(model);
        self.applied.clear();
        if wanted.is_empty() {
            return Ok(LoraTimings::default());
        }
        let started = Instant::now();
        let kept = self
            .stacked
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| s.clone());
        // Applying counts from here: stacking (for a set not kept) and handing out the factors.
        let (layers, load_ms, apply_started) = match kept {
            Some(layers) => (layers, 0, Instant::now()),
            None => {
                let mut parsed = Vec::with_capacity(wanted.len());
                for l in &wanted {
                    let p = self.parsed(model, l)?;
                    if p.text_encoder_keys > 0 && !l.skip_text_encoder {
                        return Err(invalid(
                            l.index,
                            format!(
                                "holds {} text-encoder (CLIP/T5) LoRA weights, which merchgen \
                                 does not apply; set \"text_encoder\": \"skip\" on this LoRA to \
                                 use its transformer weights alone",
                                p.text_encoder_keys
                            ),
                        ));
                    }
                    parsed.push((p, l.scale, l.index));
                }
                let load_ms = started.elapsed().as_millis() as u64;
                let apply_started = Instant::now();
                let layers: Stacked = Arc::new(stack(model, &parsed, device)?);
                if self.stacked.len() == STACKED_KEPT {
                    self.stacked.pop_front();
                }
                self.stacked.push_back((key.clone(), layers.clone()));
                (layers, load_ms, apply_started)
            }
        };
        let count = layers.len();
        let act = model.act_dtype();
        let mut linears: HashMap<String, &mut crate::engine::flux::transformer::Linear> =
            model.linears_mut().into_iter().collect();
        // Merged copies of dense weights need room; without it the deltas run as side paths.
        let need: u64 = layers.keys().map(|m| linears[m].merge_bytes()).sum();
        let merge = need == 0 || room_for(need, device);
        if need > 0 && !merge {
            tracing::warn!(
                merge_bytes = need,
                "no room on the device for merged LoRA weights: running the LoRAs as side paths"
            );
        }
        for (module, (down, up)) in layers.iter() {
            let linear = linears.get_mut(module).expect("checked by stack");
            if let Err(e) = linear.adapt(down, up, act, merge) {
                drop(linears);
                clear(model);
                return Err(EngineError::from_candle(e));
            }
        }
        drop(linears);
        self.applied = key;
        let apply_ms = apply_started.elapsed().as_millis() as u64;
        tracing::info!(
            loras = wanted.len(),
            layers = count,
            load_ms,
            apply_ms,
            "LoRAs applied"
        );
        Ok(LoraTimings { load_ms, apply_ms })
    }

    /// The parsed file, from the kept ones or read now.
    fn parsed(
        &mut self,
        model: &mut FluxTransformer,
        l: &LoraInput,
    ) -> Result<Arc<ParsedLora>, EngineError> {
        if let Some((_, p)) = self.parsed.iter().find(|(sha, _)| *sha == l.sha256) {
            return Ok(p.clone());
        }
        let tensors = candle_core::safetensors::load(&l.path, &Device::Cpu).map_err(|e| {
            invalid(
                l.index,
                format!("is not a readable safetensors file ({e}); a LoRA must be one"),
            )
        })?;
        let modules: Vec<String> = model.linears_mut().into_iter().map(|(n, _)| n).collect();
        let (double, single) = model.depth();
        let shape = ModelShape {
            modules: &modules,
            double,
            single,
            hidden: model.hidden_size(),
        };
        let p =
            Arc::new(formats::parse(tensors, &shape).map_err(|e| invalid(l.index, e.to_string()))?);
        tracing::info!(index = l.index, sha256 = %l.sha256, format = formats::format_name(p.format),
            layers = p.pieces.len(), text_encoder_keys = p.text_encoder_keys, "LoRA read");
        if self.parsed.len() == PARSED_KEPT {
            self.parsed.pop_front();
        }
        self.parsed.push_back((l.sha256.clone(), p.clone()));
        Ok(p)
    }
}

/// Room on the device for `bytes` more, with a margin for activations (2 GiB, or a quarter of
/// what is free on the CPU); a device that cannot tell is trusted.
fn room_for(bytes: u64, device: &Device) -> bool {
    match crate::engine::flux::weights::free_device_memory(device) {
        Some(free) => bytes + (2u64 << 30).min(free / 4) <= free,
        None => true,
    }
}

/// Every layer back to its base weight.
fn clear(model: &mut FluxTransformer) {
    for (_, linear) in model.linears_mut() {
        linear.clear();
    }
}

/// The stacked `(down, up)` of every layer the LoRAs touch, on `device`, after checking each
/// piece against the layer's sizes.
fn stack(
    model: &mut FluxTransformer,
    loras: &[(Arc<ParsedLora>, f64, usize)],
    device: &Device,
) -> Result<BTreeMap<String, (Tensor, Tensor)>, EngineError> {
    let sizes: HashMap<String, (usize, usize)> = model
        .linears_mut()
        .into_iter()
        .map(|(n, l)| (n, (l.in_dim(), l.out_dim())))
        .collect();
    let mut downs: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
    let mut ups: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
    let c = EngineError::from_candle;
    for (lora, job_scale, index) in loras {
        for (module, pieces) in &lora.pieces {
            let Some(&(in_dim, out_dim)) = sizes.get(module) else {
                return Err(invalid(
                    *index,
                    format!("`{module}` names no layer of this FLUX transformer"),
                ));
            };
            for p in pieces {
                let (rank, p_in) = p.down.dims2().map_err(c)?;
                let (rows, _) = p.up.dims2().map_err(c)?;
                if p_in != in_dim || p.row + rows > out_dim {
                    return Err(invalid(
                        *index,
                        format!(
                            "`{module}`: its LoRA matrices ({rank}x{p_in} down, {rows}x{rank} up \
                             at row {}) do not fit the layer ({in_dim} in, {out_dim} out): a \
                             LoRA for another model size or family",
                            p.row
                        ),
                    ));
                }
                let up = (&p.up * (p.scale * job_scale))
                    .and_then(|u| u.pad_with_zeros(0, p.row, out_dim - p.row - rows))
                    .map_err(c)?;
                downs
                    .entry(module.clone())
                    .or_default()
                    .push(p.down.clone());
                ups.entry(module.clone()).or_default().push(up);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (module, d) in downs {
        let u = &ups[&module];
        let down = Tensor::cat(&d, 0)
            .and_then(|t| t.to_device(device))
            .map_err(c)?;
        let up = Tensor::cat(u, 1)
            .and_then(|t| t.to_device(device))
            .map_err(c)?;
        out.insert(module, (down, up));
    }
    Ok(out)
}
