"""elastix (itk-elastix, PyPI) B-spline registration of one step's frames, as a peer for
HeatFront's non-rigid stage: each frame is first moved by HeatFront's rigid shift (from
frames.csv), then registered to the mean of those frames with a B-spline transform; the
registered frames are averaged. Prints the time and writes the average as an ImageJ TIFF.
usage: nonrigid_elastix.py RUN_DIR FRAMES_CSV STEP OUT.tif PIXEL_SIZE_NM"""
import csv, sys, time, os
import numpy as np
import tifffile
import itk
from scipy import ndimage

run, frames_csv, step, out, pixel_nm = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
rows = [r for r in csv.DictReader(open(frames_csv)) if r["step_index"] == str(step) and r["status"] == "ok"]
frames = [tifffile.imread(os.path.join(run, r["file"])).astype(np.float32) for r in rows]
t0 = time.perf_counter()
aligned = [ndimage.shift(f, (-float(r["shift_y_px"]), -float(r["shift_x_px"])), order=3)
           for f, r in zip(frames, rows)]
fixed = itk.GetImageFromArray(np.mean(aligned, axis=0).astype(np.float32))
params = itk.ParameterObject.New()
pm = params.GetDefaultParameterMap("bspline", 2)
pm["FinalGridSpacingInPhysicalUnits"] = ["32"]
params.AddParameterMap(pm)
registered = []
for a in aligned:
    result, _ = itk.elastix_registration_method(fixed, itk.GetImageFromArray(a), parameter_object=params,
                                                log_to_console=False)
    registered.append(itk.GetArrayFromImage(result))
average = np.mean(registered, axis=0).astype(np.float32)
elapsed = time.perf_counter() - t0
tifffile.imwrite(out, average, imagej=True, resolution=(1 / pixel_nm, 1 / pixel_nm), metadata={"unit": "nm"})
print(f"elastix: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} B-spline registered in {elapsed:.1f} s")
