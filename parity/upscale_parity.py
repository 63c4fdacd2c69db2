"""Numerical parity of merchgen's Real-ESRGAN upscalers with spandrel.

Writes random-weight RRDBNet and SRVGGNetCompact checkpoints in Real-ESRGAN's release formats
(basicsr key names; `.pth` under `params_ema` / `params`, a bare `module.`-prefixed state dict, and
`.safetensors`), both tiny (the sizes of `merchgen`'s own tiny models) and full-size (x4plus:
64 features, 23 blocks; general-x4v3: 64 features, 32 convolutions). spandrel loads each file and
runs the raw network in float32 on the CPU on a random input; `merchgen net upscale` runs the same
file on the same input. Also compares the tiny models `merchgen models tiny` writes (its own `.pth`
writer, the files the Rust tests use). Compares the outputs (relative L2), prints a table, writes `--json`, and
exits 1 when a goal is missed.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import spandrel
from spandrel import ModelLoader

GOAL = 1e-5  # relative L2 of the raw f32 output

# (name, arch, sizes, scale, format, input shape)
#   rrdb sizes: (num_feat, num_block, num_grow_ch); srvgg sizes: (num_feat, num_conv)
#   format: pth:<wrapper> (torch.save of {wrapper: state_dict}), pth-bare-module, safetensors
CASES = [
    ("tiny RealESRGAN_x4plus", "rrdb", (8, 1, 32), 4, "pth:params_ema", (2, 3, 24, 32)),
    ("tiny RealESRGAN_x2plus", "rrdb", (8, 1, 32), 2, "pth:params_ema", (1, 3, 24, 32)),
    ("tiny realesr-general-x4v3", "srvgg", (8, 4), 4, "pth:params", (2, 3, 20, 28)),
    ("tiny srvgg x2, bare module.", "srvgg", (8, 4), 2, "pth-bare-module", (1, 3, 16, 24)),
    ("RRDBNet x4 full-size", "rrdb", (64, 23, 32), 4, "safetensors", (1, 3, 32, 40)),
    ("RRDBNet x2 full-size", "rrdb", (64, 23, 32), 2, "pth:params_ema", (1, 3, 32, 32)),
    ("SRVGG x4 full-size (general-x4v3)", "srvgg", (64, 32), 4, "pth:params", (1, 3, 48, 40)),
]


def conv(sd, gen, name, cin, cout, gain=1.0):
    """Random 3x3 convolution in basicsr naming, kaiming-like scaled by `gain`."""
    std = gain * (2.0 / (cin * 9)) ** 0.5
    sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
    sd[f"{name}.bias"] = torch.randn(cout, generator=gen) * 0.01


def rrdb_state(sizes, scale, gen):
    nf, nb, gc = sizes
    in_ch = 3 * {4: 1, 2: 4, 1: 16}[scale]
    sd = {}
    conv(sd, gen, "conv_first", in_ch, nf)
    for b in range(nb):
        for r in (1, 2, 3):
            for c in range(5):
                # basicsr initialises the dense blocks at 0.1 of kaiming
                conv(sd, gen, f"body.{b}.rdb{r}.conv{c + 1}", nf + c * gc, nf if c == 4 else gc, 0.1)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(sd, gen, name, nf, nf)
    conv(sd, gen, "conv_last", nf, 3)
    return sd


def srvgg_state(sizes, scale, gen):
    nf, nc = sizes
    sd = {}
    n = nc + 2
    for i in range(n):
        last = i == n - 1
        conv(sd, gen, f"body.{2 * i}", 3 if i == 0 else nf, 3 * scale * scale if last else nf, 0.5 if last else 1.0)
        if not last:
            sd[f"body.{2 * i + 1}.weight"] = 0.25 + 0.05 * torch.randn(nf, generator=gen)
    return sd


def save(sd, fmt, path_stem):
    if fmt == "safetensors":
        path = path_stem.with_suffix(".safetensors")
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == "pth-bare-module":
        path = path_stem.with_suffix(".pth")
        torch.save({f"module.{k}": v for k, v in sd.items()}, str(path))
    else:
        wrapper = fmt.split(":", 1)[1]
        path = path_stem.with_suffix(".pth")
        torch.save({wrapper: sd}, str(path))
    return path


# merchgen's own tiny models (`merchgen models tiny`): (file under upscale/, input shape)
MERCHGEN_TINY = [
    ("RealESRGAN_x4plus.pth", (2, 3, 24, 32)),
    ("RealESRGAN_x2plus.pth", (1, 3, 24, 32)),
    ("realesr-general-x4v3.pth", (2, 3, 20, 28)),
]


def run_case(args, idx, case):
    name, arch, sizes, scale, fmt, shape = case
    gen = torch.Generator().manual_seed(1000 + idx)
    sd = rrdb_state(sizes, scale, gen) if arch == "rrdb" else srvgg_state(sizes, scale, gen)
    case_dir = args.work / f"case{idx}"
    case_dir.mkdir(parents=True, exist_ok=True)
    weights = save(sd, fmt, case_dir / "weights")
    x = torch.rand(*shape, generator=gen, dtype=torch.float32)
    return compare(args, case_dir, weights, x, {"case": name, "arch": arch, "scale": scale, "format": fmt})


def merchgen_tiny_cases(args):
    """Parity on the files `merchgen models tiny` writes (the ones the Rust tests use)."""
    out = args.work / "merchgen-tiny"
    proc = subprocess.run([str(args.merchgen), "models", "tiny", "--out", str(out), "--seed", "5"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return [{"case": "merchgen models tiny", "format": "-", "spandrel_s": 0.0, "merchgen_s": 0.0,
                 "ok": False, "error": proc.stderr.strip()[-500:]}]
    rows = []
    for i, (file, shape) in enumerate(MERCHGEN_TINY):
        gen = torch.Generator().manual_seed(2000 + i)
        x = torch.rand(*shape, generator=gen, dtype=torch.float32)
        case_dir = args.work / f"merchgen-tiny-case{i}"
        case_dir.mkdir(parents=True, exist_ok=True)
        meta = {"case": f"merchgen tiny {file}", "format": "pth (torch_pth)"}
        rows.append(compare(args, case_dir, out / "upscale" / file, x, meta))
    return rows


def compare(args, case_dir, weights, x, row):
    desc = ModelLoader(device="cpu").load_from_file(str(weights))
    model = desc.model.eval().float()
    t0 = time.time()
    with torch.no_grad():
        ref = model(x)
    ref_s = time.time() - t0

    inp, out = case_dir / "input.safetensors", case_dir / "output.safetensors"
    save_file({"input": x.contiguous()}, str(inp))
    t0 = time.time()
    proc = subprocess.run([str(args.merchgen), "net", "upscale", "--weights-file", str(weights),
                           "--input-file", str(inp), "--output-file", str(out)], capture_output=True, text=True)
    ours_s = time.time() - t0
    row.update(spandrel_arch=desc.architecture.id, spandrel_scale=desc.scale, input=list(x.shape),
               spandrel_s=round(ref_s, 3), merchgen_s=round(ours_s, 3))
    if proc.returncode != 0:
        row.update(ok=False, error=proc.stderr.strip()[-500:])
        return row
    ours = load_file(str(out))["output"]
    if ours.shape != ref.shape:
        row.update(ok=False, error=f"shape {list(ours.shape)} != spandrel {list(ref.shape)}")
        return row
    rel = float(torch.linalg.vector_norm(ours - ref) / torch.linalg.vector_norm(ref))
    max_abs = float((ours - ref).abs().max())
    row.update(rel_l2=rel, max_abs=max_abs, goal=GOAL, ok=rel <= GOAL)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchgen", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--only", help="run only cases whose name contains this")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    rows = []
    jobs = [lambda: merchgen_tiny_cases(args)] if not args.only or args.only in "merchgen tiny" else []
    jobs += [(lambda i=idx, c=case: [run_case(args, i, c)]) for idx, case in enumerate(CASES)
             if not args.only or args.only in case[0]]
    for row in (r for job in jobs for r in job()):
        rows.append(row)
        rel = f"{row['rel_l2']:.2e}" if "rel_l2" in row else "-"
        mx = f"{row['max_abs']:.2e}" if "max_abs" in row else "-"
        status = "ok" if row["ok"] else "MISSED " + row.get("error", f"goal {GOAL:.0e}")
        print(f"{row['case']:<36} {row['format']:<16} rel_l2 {rel:>9}  max_abs {mx:>9}  "
              f"spandrel {row['spandrel_s']:6.2f}s merchgen {row['merchgen_s']:6.2f}s  {status}", flush=True)

    result = {"goal_rel_l2": GOAL, "torch": torch.__version__, "spandrel": spandrel.__version__,
              "numpy": np.__version__, "cases": rows, "ok": all(r["ok"] for r in rows)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"{'all goals met' if result['ok'] else 'GOAL MISSED'}; results in {args.json}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
