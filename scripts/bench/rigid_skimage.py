"""scikit-image baseline for rigid registration of a frame stack (issue 5's peer).

Decode every TIFF frame of RUN_DIR, measure each frame's shift against the first frame
with phase_cross_correlation(upsample_factor=20), shift it back with scipy.ndimage.shift
(order 1) and average. Prints frames/s of the whole job.
"""
import sys, time, glob, os
import numpy as np
import tifffile
from skimage.registration import phase_cross_correlation
from scipy import ndimage

run = sys.argv[1]
files = sorted(glob.glob(os.path.join(run, "**", "*.tif*"), recursive=True))
t0 = time.perf_counter()
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
avg = acc / len(files)
dt = time.perf_counter() - t0
print(f"scikit-image: {len(files)} frames in {dt:.2f} s = {len(files) / dt:.1f} frames/s")
