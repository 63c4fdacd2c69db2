#!/usr/bin/env python3
"""diffusers' FluxTransformer2DModel with random weights at FLUX.1-schnell's configuration: the
reference figure for merchgen's `bench --random-weights` (bench/gpu.sh prints them side by side).

Eager PyTorch, the default attention backend (diffusers' "native": torch SDPA), bf16 on a GPU.
Each step is one transformer forward plus the Euler update, timed with CUDA events after warm-up
steps, as merchgen times its steps. Schnell: 19 double and 38 single blocks, hidden 3072, 24
heads, in 64, joint 4096, pooled 768, 256 text tokens; 1024x1024 gives 4096 image tokens.

    python3 bench/diffusers_flux.py                       # full size on cuda, 1024x1024, 4 steps
    python3 bench/diffusers_flux.py --tiny --device cpu   # harness check (a tiny config)
    python3 bench/diffusers_flux.py --json                # one JSON line on stdout
"""

import argparse
import json
import statistics
import sys
import time

import torch

FULL = dict(
    patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
    num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
    guidance_embeds=False, axes_dims_rope=(16, 56, 56),
)
# The tiny config of merchgen's `--scale tiny`: hidden 256, 4 heads, one block of each kind.
TINY = dict(FULL, num_layers=1, num_single_layers=1, attention_head_dim=64, num_attention_heads=4,
            joint_attention_dim=64, pooled_projection_dim=64, axes_dims_rope=(8, 28, 28))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny config (harness check on a CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["bf16", "f32"], default=None,
                   help="default bf16 on a GPU, f32 on the CPU (as merchgen's dense mode)")
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=1024)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--text-tokens", type=int, default=None, help="default 256 (32 with --tiny)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--iterations", type=int, default=3, help="timed runs of --steps steps")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p.parse_args()


def build(cfg, device, dtype):
    from diffusers import FluxTransformer2DModel

    # Built straight on the device in the target dtype: PyTorch's default init, no CPU copy.
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = FluxTransformer2DModel(**cfg)
    finally:
        torch.set_default_dtype(previous)
    return model.eval().requires_grad_(False)


def inputs(cfg, args, device, dtype, text_tokens):
    h, w = args.height // 16, args.width // 16  # 8x VAE, then 2x2 patches
    g = torch.Generator(device="cpu").manual_seed(42)
    rand = lambda *shape: torch.randn(*shape, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    img_ids = torch.zeros(h, w, 3)
    img_ids[..., 1] = torch.arange(h)[:, None]
    img_ids[..., 2] = torch.arange(w)[None, :]
    return dict(
        hidden_states=rand(1, h * w, cfg["in_channels"]),
        encoder_hidden_states=rand(1, text_tokens, cfg["joint_attention_dim"]),
        pooled_projections=rand(1, cfg["pooled_projection_dim"]),
        img_ids=img_ids.reshape(h * w, 3).to(device=device, dtype=dtype),
        txt_ids=torch.zeros(text_tokens, 3, device=device, dtype=dtype),
    )


class Timer:
    """CUDA events on a GPU, wall clock (after a sync) elsewhere."""

    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"

    def start(self):
        if self.cuda:
            self.ev = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            self.ev[0].record()
        else:
            self.t = time.perf_counter()

    def stop_ms(self):
        if self.cuda:
            self.ev[1].record()
            self.ev[1].synchronize()
            return self.ev[0].elapsed_time(self.ev[1])
        return (time.perf_counter() - self.t) * 1e3


@torch.inference_mode()
def run_steps(model, x, steps, timer):
    """One generation's denoising loop (schnell's linear sigmas); returns ms per step."""
    latents = x["hidden_states"].float()
    sigmas = torch.linspace(1.0, 0.0, steps + 1).tolist()
    out = []
    for t, t_prev in zip(sigmas[:-1], sigmas[1:]):
        timer.start()
        ts = torch.full((1,), t, device=latents.device, dtype=x["hidden_states"].dtype)
        pred = model(
            hidden_states=latents.to(x["hidden_states"].dtype), timestep=ts,
            encoder_hidden_states=x["encoder_hidden_states"], pooled_projections=x["pooled_projections"],
            img_ids=x["img_ids"], txt_ids=x["txt_ids"], guidance=None, return_dict=False,
        )[0]
        latents = latents + (t_prev - t) * pred.float()
        out.append(timer.stop_ms())
    return out


def flops_per_step(cfg, tokens):
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    blocks = cfg["num_layers"] + cfg["num_single_layers"]
    return blocks * (24 * tokens * d * d + 4 * tokens * tokens * d)


def main():
    args = parse_args()
    cfg = TINY if args.tiny else FULL
    device = torch.device(args.device)
    dtype_name = args.dtype or ("bf16" if device.type == "cuda" else "f32")
    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    text_tokens = args.text_tokens or (32 if args.tiny else 256)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = build(cfg, device, dtype)
    build_ms = (time.perf_counter() - t0) * 1e3
    x = inputs(cfg, args, device, dtype, text_tokens)
    timer = Timer(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"diffusers FLUX ({'tiny' if args.tiny else 'full'}) on {device}, {dtype_name}, "
          f"{params / 1e9:.3f} B params, built in {build_ms:.0f} ms", file=sys.stderr)
    warm = run_steps(model, x, max(args.warmup, 1), timer)
    steps = [ms for _ in range(args.iterations) for ms in run_steps(model, x, args.steps, timer)]
    tokens = text_tokens + (args.width // 16) * (args.height // 16)
    median = statistics.median(steps)
    flops = flops_per_step(cfg, tokens)
    result = dict(
        bench="diffusers_flux", diffusers=__import__("diffusers").__version__, torch=torch.__version__,
        device=str(device), gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        scale="tiny" if args.tiny else "full", dtype=dtype_name, width=args.width, height=args.height,
        steps=args.steps, iterations=args.iterations, text_tokens=text_tokens, params=params,
        attention_backend="native (torch SDPA)", build_ms=build_ms, warmup_step_ms=warm,
        step_ms=steps, step_ms_median=median, step_ms_mean=statistics.fmean(steps),
        model_tflop_per_step=flops / 1e12, achieved_tflops=flops / 1e12 / (median / 1e3),
        peak_memory_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"step median {median:.1f} ms, mean {result['step_ms_mean']:.1f} ms, "
              f"{result['achieved_tflops']:.1f} TFLOP/s; all {[round(s, 1) for s in steps]}")


if __name__ == "__main__":
    main()
