"""scikit-image baseline for rigid registration of a frame stack (issue 5's peer).

usage: rigid_skimage.py RUN_DIR [REPEAT]

Decode every TIFF frame of RUN_DIR, measure each frame's shift against the first frame
with phase_cross_correlation(upsample_factor=20), shift it back with scipy.ndimage.shift
(order 1) and average. Prints frames/s of the whole job: the median of REPEAT passes (default 3)
after a first pass, and the first pass alone.
"""
import sys, time, glob, os
import numpy as np
import tifffile
from skimage.registration import phase_cross_correlation
from scipy import ndimage

run = sys.argv[1]
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
files = sorted(glob.glob(os.path.join(run, "**", "*.tif*"), recursive=True))


def job():
    ref = None
    acc = None
    for f in files:
        img = tifffile.imread(f).astype(np.float32)
        if ref is None:
            ref = img
            acc = img.copy()
            continue
        shift, _, _ = phase_cross_correlation(ref, img, upsample_factor=20)
        acc += ndimage.shift(img, shift, order=1)
    return acc / len(files)


def timed():
    t0 = time.perf_counter()
    job()
    return time.perf_counter() - t0


# As heatfront-bench rigid: the first pass in the process, then the median of `repeat` more.
first = timed()
dt = sorted(timed() for _ in range(repeat))[repeat // 2]
print(f"scikit-image: {len(files)} frames in {dt:.2f} s = {len(files) / dt:.1f} frames/s "
      f"(median of {repeat} runs; the first run in the process: {first:.3f} s = {len(files) / first:.1f} frames/s)")
