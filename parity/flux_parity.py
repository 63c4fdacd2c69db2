"""Numerical parity of merchgen with diffusers' FluxPipeline and FluxImg2ImgPipeline.

Builds a tiny random-weight FLUX with diffusers (`tiny_flux.py`), saves it as a diffusers folder
and in BFL naming (safetensors, GGUF F32, GGUF Q8_0, `ae.safetensors`), runs diffusers in float32 on
the CPU from given initial latents (and given VAE posterior noise for image-to-image), runs
`merchgen invoke --initial-noise ... --dump-latents ...` on the same weights and noise for every
weight source, and compares the final latents (relative L2) and decoded images (PSNR). Prints a
table; exits 1 when a goal is missed. Run by `make parity` (scripts/parity.sh).
"""

import argparse
import base64
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import diffusers
import transformers
from diffusers import FluxImg2ImgPipeline

sys.path.insert(0, str(Path(__file__).parent))
import tiny_flux  # noqa: E402

F32_GOAL = 1e-5  # candle's own FLUX code reaches ~1e-6; a wrong GELU costs 3e-5
Q8_GOAL = 2e-2  # Q8_0 matmuls also quantize activations to 8 bits
F32_PSNR_GOAL = 40.0

CASES = [  # (name, width, height, prompt, max_sequence_length, strength or None)
    ("t2i-128x128", 128, 128, "a corgi astronaut, bold outlines", 32, None),
    ("t2i-160x96", 160, 96, "a watercolor fox under the moon " * 12, 16, None),
    ("i2i-128x128", 128, 128, "a cute robot sticker", 32, 0.6),
    ("i2i-160x96", 160, 96, "retro rocket and planet, flat vector " * 12, 16, 0.75),
    # FLUX.1-schnell's T5 length, filled: relative distances up to 255 (T5's far buckets).
    ("t2i-t5-256", 128, 128, "a bold sticker of a fox, retro colors " * 40, 256, None),
]

# (label, model folder or manifest, --weights, reference: "f32" or "q8")
SOURCES = [
    ("diffusers folder", "diffusers", "bf16", "f32"),
    ("BFL safetensors", "bfl/merchgen-model.json", "bf16", "f32"),
    ("GGUF F32 dense", "bfl/merchgen-model.gguf-f32.json", "bf16", "f32"),
    ("GGUF F32 quantized", "bfl/merchgen-model.gguf-f32.json", "quantized", "f32"),
    ("GGUF Q8_0 dense", "bfl/merchgen-model.gguf-q8_0.json", "bf16", "q8"),
    ("GGUF Q8_0 quantized", "bfl/merchgen-model.gguf-q8_0.json", "quantized", "q8"),
    # T5 from a GGUF in llama.cpp names too: merchgen's own quantized T5 encoder.
    ("GGUF F32 + T5 GGUF", "bfl/merchgen-model.gguf-f32-t5.json", "quantized", "f32"),
]


def photo(w, h):
    """A photo-like test image at exactly the target size (no resizing on either side)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 120)], -1).astype(np.uint8)
    img[h // 4:h // 2, w // 3:w // 2] = [250, 240, 30]
    return Image.fromarray(img, "RGB")


ENCODER_FILES = {  # relative to the `bfl` folder: the diffusers folder's encoders and VAE in BFL form
    "vae": "ae.safetensors",
    "clip": "../diffusers/text_encoder/model.safetensors", "clip_config": "../diffusers/text_encoder/config.json",
    "clip_tokenizer": "../tokenizers/clip-transformers.json",
    "t5": "../diffusers/text_encoder_2/model.safetensors.index.json",
    "t5_config": "../diffusers/text_encoder_2/config.json",
    "t5_tokenizer": "../diffusers/tokenizer_2/tokenizer.json",
}


def manifest(transformer, files=None, schedule="schnell", guidance=0.0, kontext=False):
    """A `merchgen-model.json` for the tiny model with `transformer` and the encoder `files`."""
    flux = {"axes_dim": list(tiny_flux.AXES), "theta": 10000, "schedule": schedule}
    if kontext:
        flux["kontext"] = True
    return {
        "version": 1, "name": f"parity {transformer}",
        "files": {"transformer": transformer, **(files or ENCODER_FILES)}, "flux": flux,
        "vae": {"scale_factor": 0.3611, "shift_factor": 0.1159},
        "defaults": {"width": 128, "height": 128, "steps": 4, "guidance": guidance, "max_sequence_length": 256},
    }


def write_manifests(bfl: Path):
    t5_gguf = dict(ENCODER_FILES, t5="t5-tiny-f32.gguf")
    for name, transformer, enc_files in [("merchgen-model.json", "flux1-tiny.safetensors", ENCODER_FILES),
                                         ("merchgen-model.gguf-f32.json", "flux1-tiny-f32.gguf", ENCODER_FILES),
                                         ("merchgen-model.gguf-q8_0.json", "flux1-tiny-q8_0.gguf", ENCODER_FILES),
                                         ("merchgen-model.gguf-f32-t5.json", "flux1-tiny-f32.gguf", t5_gguf)]:
        (bfl / name).write_text(json.dumps(manifest(transformer, enc_files), indent=1))


def reference(pipe, case, noise, vae_noise, init):
    """diffusers' final latents (n,16,h/8,w/8) and uint8 image for one case."""
    name, w, h, prompt, max_len, strength = case
    common = dict(prompt=prompt, width=w, height=h, num_inference_steps=4, guidance_scale=0.0,
                  max_sequence_length=max_len, output_type="latent")
    with torch.no_grad():
        if strength is None:
            packed_noise = pipe._pack_latents(noise, 1, 16, h // 8, w // 8)
            packed = pipe(latents=packed_noise, **common).images
        else:
            i2i = FluxImg2ImgPipeline(**pipe.components)
            packed = with_noise(lambda: i2i(image=init, strength=strength, **common).images, noise, vae_noise)
        latents = pipe._unpack_latents(packed, h, w, pipe.vae_scale_factor)
        z = latents / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
        pixels = pipe.vae.decode(z, return_dict=False)[0]
        image = pipe.image_processor.postprocess(pixels, output_type="np")[0]
    return latents, np.round(image * 255).astype(np.uint8)


def with_noise(run, noise, vae_noise):
    """Run img2img with diffusers drawing exactly `noise` (denoising) and `vae_noise` (posterior)."""
    import diffusers.models.autoencoders.vae as vae_mod
    import diffusers.pipelines.flux.pipeline_flux_img2img as i2i_mod

    saved = (i2i_mod.randn_tensor, vae_mod.randn_tensor)

    def given(value):
        def draw(shape, **_):
            assert tuple(shape) == tuple(value.shape), (shape, value.shape)
            return value
        return draw

    i2i_mod.randn_tensor = given(noise)  # (1, 16, h/8, w/8), mixed in before packing
    vae_mod.randn_tensor = given(vae_noise)  # DiagonalGaussianDistribution.sample
    try:
        return run()
    finally:
        i2i_mod.randn_tensor, vae_mod.randn_tensor = saved


def run_merchgen(binary, work, model, weights, case, noise_file, init_png):
    name, w, h, prompt, max_len, strength = case
    job = {"id": name, "prompt": prompt, "width": w, "height": h, "num_inference_steps": 4,
           "guidance_scale": 0.0, "seed": 0, "num_images": 1, "max_sequence_length": max_len}
    if strength is not None:
        job["image"] = {"base64": base64.b64encode(init_png).decode()}
        job["strength"] = strength
    run_dir = work / "runs" / f"{model.replace('/', '_')}-{weights}-{name}"
    # A fresh folder: merchgen answers a job whose result.json says succeeded as a replay, without
    # generating (or dumping latents) again.
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps(job))
    latents_file = run_dir / "latents.safetensors"
    cmd = [str(binary), "--model", str(work / model), "--device", "cpu", "--weights", weights, "--min-side", "64",
           "invoke", str(run_dir / "job.json"), "--out", str(run_dir / "out"),
           "--initial-noise", str(noise_file), "--dump-latents", str(latents_file)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", MERCHGEN_LOG_FORMAT="text", RUST_LOG="warn")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"merchgen failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    if json.loads(done.stdout).get("replayed"):
        raise RuntimeError(f"merchgen replayed {name} instead of generating it")
    image = np.asarray(Image.open(run_dir / "out" / name / "images" / "0.png").convert("RGB"))
    return load_file(latents_file)["latents"], image


def rel_l2(a, b):
    return float(torch.linalg.vector_norm(a.double() - b.double()) / torch.linalg.vector_norm(b.double()))


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchgen", required=True, help="merchgen binary")
    ap.add_argument("--work", default="target/parity", help="scratch folder")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    pipe, paths = tiny_flux.build(work)
    write_manifests(paths["bfl"])
    q8_pipe = dequantized_pipeline(pipe, paths["q8_dequantized_bfl"])
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}; "
          f"tiny model built and converted in {time.time() - started:.1f} s", flush=True)

    check_rust_layout(args.merchgen, work / "rust-diffusers")

    rows, failed = [], False
    gen = torch.Generator().manual_seed(1234)
    for case in CASES:
        name, w, h, _, _, strength = case
        noise = torch.randn((1, 16, h // 8, w // 8), generator=gen)
        vae_noise = torch.randn((1, 16, h // 8, w // 8), generator=gen)
        noise_file = work / f"noise-{name}.safetensors"
        save_file({"noise": noise.contiguous(), "vae_noise": vae_noise.contiguous()}, noise_file)
        init = photo(w, h)
        buf = io.BytesIO()
        init.save(buf, "PNG")
        refs = {"f32": reference(pipe, case, noise, vae_noise, init),
                "q8": reference(q8_pipe, case, noise, vae_noise, init)}
        for label, model, weights, ref in SOURCES:
            lat, img = run_merchgen(args.merchgen, work, model, weights, case, noise_file, buf.getvalue())
            ref_lat, ref_img = refs[ref]
            quantized_q8 = ref == "q8" and weights == "quantized"
            goal = Q8_GOAL if quantized_q8 else F32_GOAL
            row = {"case": name, "source": label, "weights": weights, "reference": ref,
                   "rel_l2": rel_l2(lat, ref_lat), "psnr_db": psnr(img, ref_img), "goal": goal}
            row["ok"] = row["rel_l2"] <= goal and (quantized_q8 or row["psnr_db"] >= F32_PSNR_GOAL)
            failed |= not row["ok"]
            rows.append(row)
            print(f"{name:<12} {label:<20} rel_l2 {row['rel_l2']:.2e} (goal {goal:.0e})  "
                  f"psnr {row['psnr_db']:6.1f} dB  {'ok' if row['ok'] else 'MISSED'}", flush=True)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "diffusers": diffusers.__version__,
                                               "transformers": transformers.__version__, "rows": rows}, indent=1))
    print(f"parity: {'FAILED' if failed else 'passed'} ({len(rows)} comparisons, {time.time() - started:.0f} s)")
    return 1 if failed else 0


def check_rust_layout(binary, folder):
    """The other direction: the diffusers folder merchgen writes (`models tiny --layout
    diffusers`, names from merchgen's own mapping) loads in diffusers and transformers with no
    missing, unexpected or mismatched tensors."""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([str(binary), "models", "tiny", "--out", str(folder), "--layout", "diffusers"],
                   check=True, capture_output=True)
    for cls, sub in [(tiny_flux.FluxTransformer2DModel, "transformer"), (tiny_flux.AutoencoderKL, "vae"),
                     (tiny_flux.CLIPTextModel, "text_encoder"), (tiny_flux.T5EncoderModel, "text_encoder_2")]:
        _, info = cls.from_pretrained(folder / sub, output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        assert not bad, f"merchgen's diffusers layout: {sub} does not load cleanly: {bad}"
    print(f"merchgen's own diffusers layout ({folder.name}) loads in diffusers/transformers: ok", flush=True)


def dequantized_pipeline(pipe, dequantized_bfl):
    """The same pipeline with the transformer's weights as merchgen reads them from the Q8_0 GGUF."""
    q8 = FluxImg2ImgPipeline(**pipe.components)  # shares every other component
    transformer = tiny_flux.FluxTransformer2DModel.from_config(pipe.transformer.config)
    state = tiny_flux.flux_converter(tiny_flux.HIDDEN)(dict(dequantized_bfl))
    transformer.load_state_dict(state, strict=True)
    components = dict(pipe.components, transformer=transformer.to(torch.float32))
    return diffusers.FluxPipeline(**components)


def print_table(rows):
    print("\n| case | weight source | merchgen --weights | vs diffusers on | latents rel. L2 | goal | image PSNR | ok |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = "exact" if math.isinf(r["psnr_db"]) else f"{r['psnr_db']:.1f} dB"
        ref = "f32 weights" if r["reference"] == "f32" else "dequantized Q8_0"
        print(f"| {r['case']} | {r['source']} | {r['weights']} | {ref} | {r['rel_l2']:.2e} | "
              f"{r['goal']:.0e} | {p} | {'yes' if r['ok'] else 'NO'} |")


if __name__ == "__main__":
    sys.exit(main())
