"""Numerical parity of merchgen's matting networks with independent PyTorch implementations.

References (from PyPI, pinned in `matting-requirements.txt`, installed with --no-deps):
  * U²-Net and U²-NetP: `backgroundremover`'s `backgroundremover/u2net/u2net.py` (U2NET, U2NETP);
  * IS-Net (ISNetDIS, the structure and tensor names of BRIA's RMBG-1.4): `dis-inference`'s
    `dis_inference/models/isnet.py`, loaded by file path (its package __init__ needs cv2/gdown).

For each case the reference model gets seeded random weights (He-scaled convs, random BatchNorm
affine and running statistics with positive variances), is saved as `.pth` (bare, `module.`-prefixed
or under a `state_dict` key) or `.safetensors`, and merchgen's raw forward (`merchgen net matting`)
runs on the same file and the same normalised input. The first output of both (U²-Net's fused d0,
IS-Net's d1, after sigmoid) is compared by relative L2, float32 on the CPU. Tiny cases swap the
reference blocks for narrow ones (the reference's own RSU classes and forward); full cases use the
reference constructors unchanged. Prints a table, writes JSON, exits 1 when a goal is missed.
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

GOAL = 1e-5

# (name, reference, tiny?, input size, batch, weights format)
CASES = [
    ("u2net-tiny", "u2net", True, 64, 1, "pth"),
    ("u2net-tiny-odd", "u2net", True, 72, 2, "safetensors"),
    ("u2netp-tiny", "u2netp", True, 64, 1, "pth-module"),
    ("isnet-tiny", "isnet", True, 64, 1, "pth-state_dict"),
    ("isnet-tiny-odd", "isnet", True, 88, 1, "safetensors"),
    ("u2net-full", "u2net", False, 320, 1, "pth"),
    ("u2netp-full", "u2netp", False, 320, 1, "pth"),
    ("isnet-full", "isnet", False, 512, 1, "safetensors"),
]


def load_references():
    import backgroundremover.u2net.u2net as u2

    spec = importlib.util.find_spec("dis_inference")
    path = Path(spec.submodule_search_locations[0]) / "models" / "isnet.py"
    isnet_spec = importlib.util.spec_from_file_location("dis_isnet", path)
    isnet = importlib.util.module_from_spec(isnet_spec)
    isnet_spec.loader.exec_module(isnet)
    return u2, isnet


def pool():
    return nn.MaxPool2d(2, stride=2, ceil_mode=True)


def shrink(net, mod, widths, conv_in=None):
    """Swap the stages, sides and pools of a reference network for narrow ones of its own
    classes: `widths` maps stage name to (class name, in, mid, out)."""
    for name, (cls, c_in, mid, c_out) in widths.items():
        setattr(net, name, getattr(mod, cls)(c_in, mid, c_out))
    sources = ["stage1d", "stage2d", "stage3d", "stage4d", "stage5d", "stage6"]
    for k, src in enumerate(sources, 1):
        setattr(net, f"side{k}", nn.Conv2d(widths[src][3], 1, 3, padding=1))
    if conv_in is not None:
        net.conv_in = nn.Conv2d(3, conv_in, 3, stride=2, padding=1)
    return net


def tiny_widths(first_in, uniform):
    w = 8 if uniform else None
    enc = [("RSU7", first_in, 4, 8), ("RSU6", 8, 4, w or 12), ("RSU5", w or 12, 4, w or 12),
           ("RSU4", w or 12, 4, w or 16), ("RSU4F", w or 16, 4, w or 16),
           ("RSU4F", w or 16, 4, w or 16)]
    widths = {f"stage{i + 1}": e for i, e in enumerate(enc)}
    dec = {"stage5d": "RSU4F", "stage4d": "RSU4", "stage3d": "RSU5", "stage2d": "RSU6",
           "stage1d": "RSU7"}
    below = enc[5][3]
    for i in (5, 4, 3, 2, 1):
        skip = enc[i - 1][3]
        out = skip if i > 1 else 8
        if not uniform and i > 1:
            out = enc[i - 2][3]
        widths[f"stage{i}d"] = (dec[f"stage{i}d"], below + skip, 4, out)
        below = out
    return widths


def build(ref, tiny, u2, isnet):
    if ref == "isnet":
        net = isnet.ISNetDIS()
        if tiny:
            shrink(net, isnet, tiny_widths(8, False), conv_in=8)
    else:
        net = (u2.U2NET if ref == "u2net" else u2.U2NETP)(3, 1)
        if tiny:
            shrink(net, u2, tiny_widths(3, ref == "u2netp"))
    return net


def randomize(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, (1.0 / fan_in) ** 0.5, generator=g)
                m.bias.normal_(0.0, 0.05, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return net.eval()


def save(net, path, fmt):
    sd = net.state_dict()
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == "pth":
        torch.save(sd, path)
    elif fmt == "pth-module":
        torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    elif fmt == "pth-state_dict":
        torch.save({"epoch": 7, "state_dict": sd}, path)
    else:
        raise ValueError(fmt)


def run_case(case, args, refs, seed):
    name, ref, tiny, size, batch, fmt = case
    net = randomize(build(ref, tiny, *refs), seed)
    ext = "safetensors" if fmt == "safetensors" else "pth"
    weights = args.work / f"{name}.{ext}"
    save(net, weights, fmt)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    inp, out = args.work / f"{name}-input.safetensors", args.work / f"{name}-output.safetensors"
    save_file({"input": x.contiguous()}, str(inp))
    t0 = time.time()
    with torch.no_grad():
        want = net(x)[0][0] if ref == "isnet" else net(x)[0]
    t_ref = time.time() - t0
    t0 = time.time()
    # `-file` flags: plain `--weights` / `--output` are global flags of merchgen.
    cmd = [str(args.merchgen), "net", "matting", "--weights-file", str(weights), "--input-file",
           str(inp), "--output-file", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    t_mg = time.time() - t0
    row = {"case": name, "arch": ref, "tiny": tiny, "size": size, "batch": batch, "format": fmt,
           "params": sum(p.numel() for p in net.parameters()), "goal": GOAL,
           "reference_s": round(t_ref, 2), "merchgen_s": round(t_mg, 2)}
    if proc.returncode != 0:
        row.update(ok=False, error=proc.stderr.strip()[-500:])
        return row
    got = load_file(str(out))["output"]
    if got.shape != want.shape:
        row.update(ok=False, error=f"shape {tuple(got.shape)} != {tuple(want.shape)}")
        return row
    rel = ((got - want).norm() / want.norm()).item()
    # Before the sigmoid, the stricter view: the outputs sit around 0.5, which the ratio hides.
    lg, lw = (torch.logit(t.double(), eps=1e-12) for t in (got, want))
    row.update(rel_l2=rel, logit_rel_l2=((lg - lw).norm() / lw.norm()).item(), max_abs=(got - want).abs().max().item(),
               out_mean=want.mean().item(), out_std=want.std().item(),
               saturated=((want < 1e-3) | (want > 1 - 1e-3)).float().mean().item(), ok=rel <= GOAL)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--merchgen", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--tiny-only", action="store_true", help="skip the full-size cases")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    refs = load_references()
    rows = []
    for i, case in enumerate(CASES):
        if args.tiny_only and not case[2]:
            continue
        rows.append(run_case(case, args, refs, 1000 + i))
        r = rows[-1]
        if "rel_l2" in r:
            print(f"{r['case']:16} {r['format']:15} {r['size']:4}x{r['batch']} "
                  f"params={r['params']:>9} rel_l2={r['rel_l2']:.2e} logit={r['logit_rel_l2']:.2e} "
                  f"max_abs={r['max_abs']:.2e} "
                  f"std={r['out_std']:.3f} sat={r['saturated']:.2f} "
                  f"t_ref={r['reference_s']}s t_merchgen={r['merchgen_s']}s "
                  f"{'ok' if r['ok'] else 'MISSED'}", flush=True)
        else:
            print(f"{r['case']:16} FAILED: {r['error']}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"goal": GOAL, "cases": rows,
                                     "gaps": ["no PyPI package ships BRIA's briarmbg.py; RMBG-1.4 is "
                                              "covered through ISNetDIS, which has its structure "
                                              "and tensor names"]}, indent=2))
    return 0 if rows and all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
