"""The reference tracer for `merchgen bench print`'s vector stage: vtracer's own Python binding
(PyPI `vtracer`, the Rust implementation merchgen's tracer comes from) on the same image, with
vtracer's settings closest to merchgen's (stacked colour layers, splines, corners at 60 degrees,
segments of 4 px, 10 iterations, splice at 45 degrees, speckles under 4x4 px merged, lossless
colour since the input already holds only its inks). Prints one JSON line with the timings.

    python bench/vtracer_ref.py INPUT.png [--runs 3] [--warmup 1] [--svg OUT.svg]
"""

import argparse
import json
import time

import vtracer


def trace(data: bytes) -> str:
    return vtracer.convert_raw_image_to_svg(
        data,
        img_format="png",
        colormode="color",
        hierarchical="stacked",
        mode="spline",
        filter_speckle=4,
        color_precision=8,
        layer_difference=16,
        corner_threshold=60,
        length_threshold=4.0,
        max_iterations=10,
        splice_threshold=45,
        path_precision=2,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--svg")
    args = parser.parse_args()
    with open(args.input, "rb") as f:
        data = f.read()
    for _ in range(args.warmup):
        svg = trace(data)
    runs = []
    for _ in range(args.runs):
        t = time.perf_counter()
        svg = trace(data)
        runs.append((time.perf_counter() - t) * 1e3)
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg)
    ordered = sorted(runs)
    print(json.dumps({"vtracer": vtracer.__version__ if hasattr(vtracer, "__version__") else "",
                      "best_ms": ordered[0], "median_ms": ordered[len(ordered) // 2],
                      "runs_ms": runs, "paths": svg.count("<path")}))


if __name__ == "__main__":
    main()
