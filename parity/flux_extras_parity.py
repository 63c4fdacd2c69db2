"""Numerical parity of merchgen's FLUX.1-dev path, true CFG and LoRAs with diffusers.

On the tiny random-weight FLUX of `tiny_flux.py` (with a second, dev-style transformer that has a
guidance embedding), float32 on the CPU, from the same initial latents:
- FLUX.1-dev: `FluxPipeline` with guidance embeds and dev's dynamic shifted schedule;
- true CFG: a negative prompt with `true_cfg_scale` 2.5 (two passes per step);
- FLUX.1 Kontext: `FluxKontextPipeline` editing a 96x128 photo (its tokens appended with their
  own position ids), on the dev-style transformer;
- LoRAs: a random LoRA in each naming (diffusers/PEFT, kohya with alpha, XLabs) loaded with
  diffusers' `load_lora_weights` (its own converters read kohya and XLabs) at two scales, and two
  LoRAs at once; on dense weights (merged) and on Q8_0 blocks (side path, against diffusers on
  the dequantized weights).
Compares final latents (relative L2). Prints a table; exits 1 when a goal is missed. Run by
`make parity` after flux_parity.py.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import base64
import io

import diffusers
from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxPipeline

sys.path.insert(0, str(Path(__file__).parent))
import tiny_flux  # noqa: E402
from flux_parity import dequantized_pipeline, manifest, photo, rel_l2  # noqa: E402

F32_GOAL = 1e-5
Q8_GOAL = 2e-2
RANK = 4
W, H, STEPS = 128, 128, 4
PROMPT = "a corgi astronaut, bold outlines"
NEGATIVE = "blurry, watermark, text"


def dev_pipeline(pipe, bfl: Path):
    """The tiny pipeline with a dev-style transformer (guidance embeds) and dev's scheduler; its
    transformer saved in BFL names as safetensors and GGUF Q8_0. Returns (pipe, q8 tensors)."""
    cfg = dict(pipe.transformer.config)
    cfg["guidance_embeds"] = True
    transformer = tiny_flux.randomize(tiny_flux.FluxTransformer2DModel.from_config(cfg)).to(torch.float32)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    dev = FluxPipeline(**dict(pipe.components, transformer=transformer, scheduler=scheduler))
    tensors = tiny_flux.transformer_to_bfl(transformer)
    save_file(tensors, bfl / "flux1-tiny-dev.safetensors")
    return dev


def manifests(bfl: Path):
    out = {}
    for key, transformer, schedule, guidance in [
        ("dev", "flux1-tiny-dev.safetensors", "dev", 3.5),
        ("kontext", "flux1-tiny-dev.safetensors", "dev", 3.5),
        ("schnell", "flux1-tiny.safetensors", "schnell", 0.0),
        ("schnell-q8", "flux1-tiny-q8_0.gguf", "schnell", 0.0),
    ]:
        path = bfl / f"merchgen-model.extras-{key}.json"
        m = manifest(transformer, schedule=schedule, guidance=guidance, kontext=key == "kontext")
        path.write_text(json.dumps(m, indent=1))
        out[key] = path
    return out


def pair(gen, i, o):
    down = torch.randn((RANK, i), generator=gen) / i ** 0.5
    up = torch.randn((o, RANK), generator=gen) * 0.5
    return down, up


def write_loras(folder: Path, hidden: int, mlp: int, gen):
    """One random LoRA per naming, for the tiny transformer (2 double, 2 single blocks)."""
    folder.mkdir(parents=True, exist_ok=True)
    h = hidden
    peft = {}
    for b in range(2):
        for m in ["to_q", "to_k", "to_v", "add_q_proj", "add_v_proj", "to_out.0", "to_add_out"]:
            d, u = pair(gen, h, h)
            peft[f"transformer.transformer_blocks.{b}.attn.{m}.lora_A.weight"] = d
            peft[f"transformer.transformer_blocks.{b}.attn.{m}.lora_B.weight"] = u
        for m, io in [("ff.net.0.proj", (h, mlp)), ("ff_context.net.2", (mlp, h))]:
            d, u = pair(gen, *io)
            peft[f"transformer.transformer_blocks.{b}.{m}.lora_A.weight"] = d
            peft[f"transformer.transformer_blocks.{b}.{m}.lora_B.weight"] = u
        for m, io in [("attn.to_q", (h, h)), ("attn.to_k", (h, h)), ("attn.to_v", (h, h)),
                      ("proj_mlp", (h, mlp)), ("proj_out", (h + mlp, h))]:
            d, u = pair(gen, *io)
            peft[f"transformer.single_transformer_blocks.{b}.{m}.lora_A.weight"] = d
            peft[f"transformer.single_transformer_blocks.{b}.{m}.lora_B.weight"] = u
    kohya = {}
    for b in range(2):
        for m, io in [(f"double_blocks_{b}_img_attn_qkv", (h, 3 * h)), (f"double_blocks_{b}_txt_attn_proj", (h, h)),
                      (f"double_blocks_{b}_img_mlp_0", (h, mlp)), (f"double_blocks_{b}_txt_mlp_2", (mlp, h)),
                      (f"single_blocks_{b}_linear2", (h + mlp, h))]:
            # (No single-block `linear1`: diffusers' kohya converter hard-codes FLUX.1's widths for
            # it, 3072 and 12288, so it cannot read one for the tiny model.)
            d, u = pair(gen, *io)
            kohya[f"lora_unet_{m}.lora_down.weight"] = d
            kohya[f"lora_unet_{m}.lora_up.weight"] = u
            kohya[f"lora_unet_{m}.alpha"] = torch.tensor(RANK / 2.0)
    xlabs = {}
    for b in range(2):
        for m, io in [("qkv_lora1", (h, 3 * h)), ("proj_lora1", (h, h)), ("qkv_lora2", (h, 3 * h)),
                      ("proj_lora2", (h, h))]:
            d, u = pair(gen, *io)
            xlabs[f"double_blocks.{b}.processor.{m}.down.weight"] = d
            xlabs[f"double_blocks.{b}.processor.{m}.up.weight"] = u
    paths = {}
    for name, sd in [("peft", peft), ("kohya", kohya), ("xlabs", xlabs)]:
        paths[name] = folder / f"lora-{name}.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, paths[name])
    return paths


def reference(pipe, noise, loras=(), guidance=0.0, negative=None, true_cfg=1.0):
    """diffusers' final latents (1, 16, h/8, w/8) with `loras` [(path, scale)] loaded."""
    names = []
    for i, (path, _) in enumerate(loras):
        pipe.load_lora_weights(str(path), adapter_name=f"l{i}")
        names.append(f"l{i}")
    if names:
        pipe.set_adapters(names, adapter_weights=[s for _, s in loras])
    try:
        with torch.no_grad():
            packed = pipe(prompt=PROMPT, negative_prompt=negative, true_cfg_scale=true_cfg, width=W, height=H,
                          num_inference_steps=STEPS, guidance_scale=guidance, max_sequence_length=32,
                          latents=pipe._pack_latents(noise, 1, 16, H // 8, W // 8), output_type="latent").images
    finally:
        if names:
            pipe.unload_lora_weights()
    return pipe._unpack_latents(packed, H, W, pipe.vae_scale_factor)


def reference_kontext(dev, noise, image):
    """FluxKontextPipeline's final latents editing `image` (kept at its size: no auto-resize, and
    `max_area` the target's so the output stays W x H)."""
    kontext = FluxKontextPipeline(**dev.components)
    with torch.no_grad():
        packed = kontext(image=image, prompt=PROMPT, width=W, height=H, num_inference_steps=STEPS,
                         guidance_scale=3.5, max_sequence_length=32, max_area=W * H, _auto_resize=False,
                         latents=kontext._pack_latents(noise, 1, 16, H // 8, W // 8), output_type="latent").images
    return kontext._unpack_latents(packed, H, W, kontext.vae_scale_factor)


def run_merchgen(binary, work, manifest, weights, name, noise_file, extra):
    job = {"id": name, "prompt": PROMPT, "width": W, "height": H, "num_inference_steps": STEPS, "seed": 0,
           "max_sequence_length": 32, **extra}
    run_dir = work / "runs-extras" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps(job))
    latents = run_dir / "latents.safetensors"
    cmd = [str(binary), "--model", str(manifest), "--device", "cpu", "--weights", weights, "--min-side", "64",
           "invoke", str(run_dir / "job.json"), "--out", str(run_dir / "out"),
           "--initial-noise", str(noise_file), "--dump-latents", str(latents)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", MERCHGEN_LOG_FORMAT="text", RUST_LOG="warn",
               MERCHGEN_LORA_CACHE=str(work / "lora-cache"))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"merchgen failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return load_file(latents)["latents"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchgen", required=True)
    ap.add_argument("--work", default="target/parity")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    pipe, paths = tiny_flux.build(work)
    bfl = paths["bfl"]
    q8_pipe = dequantized_pipeline(pipe, paths["q8_dequantized_bfl"])
    dev = dev_pipeline(pipe, bfl)
    m = manifests(bfl)
    gen = torch.Generator().manual_seed(4321)
    hidden = tiny_flux.HIDDEN
    loras = write_loras(work / "loras", hidden, 4 * hidden, gen)
    noise = torch.randn((1, 16, H // 8, W // 8), generator=gen)
    noise_file = work / "noise-extras.safetensors"
    save_file({"noise": noise.contiguous()}, noise_file)

    def lora_job(pairs):
        return {"loras": [{"source": {"path": str(loras[k])}, "scale": s} for k, s in pairs]}

    cases = [  # (name, reference pipe, manifest, --weights, goal, reference kwargs, job fields)
        ("dev-guidance-3.5", dev, m["dev"], "bf16", F32_GOAL, dict(guidance=3.5), {"guidance_scale": 3.5}),
        ("dev-true-cfg-2.5", dev, m["dev"], "bf16", F32_GOAL,
         dict(guidance=3.5, negative=NEGATIVE, true_cfg=2.5),
         {"guidance_scale": 3.5, "negative_prompt": NEGATIVE, "true_cfg_scale": 2.5}),
    ]
    for fmt in ["peft", "kohya", "xlabs"]:
        for scale in [1.0, 0.5]:
            cases.append((f"lora-{fmt}-{scale}", pipe, m["schnell"], "bf16", F32_GOAL,
                          dict(loras=[(loras[fmt], scale)]), lora_job([(fmt, scale)])))
    two = [("peft", 0.7), ("kohya", 0.6)]
    cases.append(("lora-peft-and-kohya", pipe, m["schnell"], "bf16", F32_GOAL,
                  dict(loras=[(loras[k], s) for k, s in two]), lora_job(two)))
    cases.append(("lora-peft-q8-side-path", q8_pipe, m["schnell-q8"], "quantized", Q8_GOAL,
                  dict(loras=[(loras["peft"], 1.0)]), lora_job([("peft", 1.0)])))
    cases.append(("lora-kohya-dev", dev, m["dev"], "bf16", F32_GOAL,
                  dict(guidance=3.5, loras=[(loras["kohya"], 0.8)]),
                  {"guidance_scale": 3.5, **lora_job([("kohya", 0.8)])}))

    edit_photo = photo(96, 128)
    buf = io.BytesIO()
    edit_photo.save(buf, "PNG")
    cases.append(("kontext-edit-96x128", dev, m["kontext"], "bf16", F32_GOAL, dict(edit=edit_photo),
                  {"guidance_scale": 3.5, "mode": "edit", "image": {"base64": base64.b64encode(buf.getvalue()).decode()}}))

    rows, failed = [], False
    for name, ref_pipe, manifest, weights, goal, ref_kwargs, job in cases:
        if "edit" in ref_kwargs:
            ref = reference_kontext(ref_pipe, noise, ref_kwargs["edit"])
        else:
            ref = reference(ref_pipe, noise, **ref_kwargs)
        ours = run_merchgen(args.merchgen, work, manifest, weights, name, noise_file, job)
        row = {"case": name, "weights": weights, "rel_l2": rel_l2(ours, ref), "goal": goal}
        row["ok"] = row["rel_l2"] <= goal
        failed |= not row["ok"]
        rows.append(row)
        print(f"{name:<24} --weights {weights:<9} rel_l2 {row['rel_l2']:.2e} (goal {goal:.0e})  "
              f"{'ok' if row['ok'] else 'MISSED'}", flush=True)
    # A LoRA must change the output (else the comparisons above prove nothing).
    base = reference(pipe, noise)
    for fmt in ["peft", "kohya", "xlabs"]:
        moved = rel_l2(reference(pipe, noise, loras=[(loras[fmt], 1.0)]), base)
        print(f"a {fmt} LoRA at scale 1 moves diffusers' latents by {moved:.2e} (relative L2)")
        if moved < 1e-3:
            print(f"MISSED: the {fmt} LoRA hardly changes the output; the parity cases would prove nothing")
            failed = True
    moved = rel_l2(reference_kontext(dev, noise, edit_photo), reference(dev, noise, guidance=3.5))
    print(f"the reference photo moves Kontext's latents by {moved:.2e} against no photo (relative L2)")
    if moved < 1e-3:
        print("MISSED: the Kontext reference hardly changes the output; its parity case would prove nothing")
        failed = True
    print("\n| case | merchgen --weights | latents rel. L2 | goal | ok |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['weights']} | {r['rel_l2']:.2e} | {r['goal']:.0e} | {'yes' if r['ok'] else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"diffusers": diffusers.__version__, "rows": rows}, indent=1))
    print(f"extras parity: {'FAILED' if failed else 'passed'} ({len(rows)} comparisons, {time.time() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
