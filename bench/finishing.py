"""`merchgen bench finishing` on full-size random weights, and the upscaler against spandrel.

Writes full-size random-weight finishing models once (IS-Net and U²-Net through the parity
references' own constructors, RRDBNet x4plus through the parity script's basicsr-named state
dict), then in one run on this machine:
  * `merchgen bench finishing --json` for each (matting, upscaler) pair at the given design size:
    cut-out, x4 upscale (tiled), t-shirt print file at 300 DPI, with peak memory;
  * the same RRDBNet x4 file in spandrel (PyTorch, f32) and in merchgen (`net upscale`, raw
    network, untiled) on the same random input, best of N, so the ratio compares like with like.
Prints a table and writes --json. Figures go to docs/benchmarks.md.

  .venv-parity/bin/python bench/finishing.py --merchgen target/release/merchgen --work target/bench-finishing
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "parity" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_models(work):
    work.mkdir(parents=True, exist_ok=True)
    up = load_script("upscale_parity")
    mat = load_script("matting_parity")
    files = {}
    g = torch.Generator().manual_seed(7)
    x4 = work / "RealESRGAN_x4plus.pth"
    if not x4.exists():
        torch.save({"params_ema": up.rrdb_state((64, 23, 32), 4, g)}, x4)
    files["realesrgan-x4plus"] = x4
    u2, isnet = mat.load_references()
    for ref, fname in (("isnet", "isnet-general-use.pth"), ("u2net", "u2net.pth")):
        path = work / fname
        if not path.exists():
            net = mat.randomize(mat.build(ref, False, u2, isnet), 11)
            torch.save(net.state_dict(), path)
        files[ref] = path
    return files


def bench_merchgen(args, matting, upscaler, size, tile):
    env = dict(os.environ, MERCHGEN_DEVICE=args.device, MERCHGEN_MATTING_MODEL=str(matting),
               MERCHGEN_UPSCALE_MODEL=str(upscaler), MERCHGEN_UPSCALE_TILE=str(tile))
    out = subprocess.run([args.merchgen, "bench", "finishing", "--size", str(size),
                          "--iterations", str(args.iterations), "--json"],
                         env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spandrel_vs_merchgen(args, x4, size):
    from spandrel import ModelLoader
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size)
    inp = Path(args.work) / f"input-{size}.safetensors"
    save_file({"input": x.contiguous()}, str(inp))
    model = ModelLoader().load_from_file(str(x4)).model.eval()
    best_ref = float("inf")
    with torch.no_grad():
        for _ in range(args.iterations):
            t = time.perf_counter()
            model(x)
            best_ref = min(best_ref, time.perf_counter() - t)
    outp = Path(args.work) / f"output-{size}.safetensors"
    best_ours = float("inf")
    for _ in range(args.iterations):
        t = time.perf_counter()
        subprocess.run([args.merchgen, "--device", args.device, "net", "upscale", "--weights-file", str(x4),
                        "--input-file", str(inp), "--output-file", str(outp)], check=True, cwd=ROOT)
        best_ours = min(best_ours, time.perf_counter() - t)
    return {"size": size, "spandrel_s": best_ref, "merchgen_s_incl_load": best_ours,
            "ratio": best_ours / best_ref, "torch_threads": torch.get_num_threads()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--merchgen", required=True)
    p.add_argument("--work", default="target/bench-finishing")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=256, help="design side for the full-size models")
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--compare-size", type=int, default=96)
    p.add_argument("--json")
    args = p.parse_args()
    files = write_models(Path(args.work))
    rows = []
    for mat in ("u2net", "isnet"):
        r = bench_merchgen(args, files[mat], files["realesrgan-x4plus"], args.size, args.tile)
        rows.append(r)
        print(f"{mat} + x4plus at {args.size}px: cut-out {r['cutout']['best_ms']:.0f} ms, "
              f"upscale {r['upscale']['best_ms']:.0f} ms, print file {r['print_file']['best_ms']:.0f} ms, "
              f"peak {r['memory']['peak_memory_bytes'] / 2**30:.2f} GiB", flush=True)
    cmp = spandrel_vs_merchgen(args, files["realesrgan-x4plus"], args.compare_size)
    print(f"RRDBNet x4 raw forward at {cmp['size']}px: spandrel {cmp['spandrel_s']:.2f} s, "
          f"merchgen {cmp['merchgen_s_incl_load']:.2f} s incl. process start and load "
          f"(ratio {cmp['ratio']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"finishing": rows, "spandrel": cmp}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
