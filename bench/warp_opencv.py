#!/usr/bin/env python3
"""Time OpenCV's warpPerspective on the same quad and sizes as `merchgen bench mockups`.

Installs nothing: run it in an environment that has the packages of bench/requirements.txt, e.g.
    python3 -m venv /tmp/cv && /tmp/cv/bin/pip install -r bench/requirements.txt
    /tmp/cv/bin/python bench/warp_opencv.py --size 2000 --iterations 20 --threads 2

The quad is `WARP_QUAD` in src/mockup/bench.rs (fractions of the frame, top-left, top-right,
bottom-right, bottom-left); the source is a size x size RGBA test pattern like `test_design`
there, warped with INTER_LINEAR onto a size x size frame. Prints best and median milliseconds.
"""
import argparse
import statistics
import time

import cv2
import numpy as np

WARP_QUAD = [[0.05, 0.075], [0.95, 0.03], [0.975, 0.95], [0.02, 0.91]]


def test_design(size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.uint32)
    check = ((x // 64 + y // 64) % 2).astype(np.uint32)
    alpha = np.where((x // 256 + y // 256) % 3 == 0, 160, 255)
    rgba = np.stack([x * 255 // size, y * 255 // size, 60 + 120 * check, alpha], axis=-1)
    return rgba.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="cv2.setNumThreads; 0 = OpenCV's default")
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    n = args.size
    src = test_design(n)
    corners = np.float32([[0, 0], [n, 0], [n, n], [0, n]])
    quad = np.float32([[x * n, y * n] for x, y in WARP_QUAD])
    matrix = cv2.getPerspectiveTransform(corners, quad)
    dst = np.zeros((n, n, 4), np.uint8)
    samples = []
    for _ in range(max(args.iterations, 3)):
        start = time.perf_counter()
        cv2.warpPerspective(src, matrix, (n, n), dst=dst, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        samples.append((time.perf_counter() - start) * 1e3)
    print(f"opencv {cv2.__version__} warpPerspective INTER_LINEAR {n}x{n} RGBA, "
          f"{cv2.getNumThreads()} threads: best {min(samples):.2f} ms, "
          f"median {statistics.median(samples):.2f} ms")


if __name__ == "__main__":
    main()
