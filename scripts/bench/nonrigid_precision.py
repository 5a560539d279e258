"""TM column precision of aligned averages against the simulator's truth lattice, the way
`heatfront validate` scores it: TM columns (found and refined by `heatfront-bench columns`)
indexed on the true basis, an ideal lattice refitted by least squares, sites more than 5x the
median residual away dropped once (misdetections at the front and the grain boundary), RMS
distance of the rest. Also the x (fast-scan) and y parts.
usage: nonrigid_precision.py GROUND_TRUTH.json PIXEL_SIZE_NM NAME=COLUMNS.csv ..."""
import json, sys
import numpy as np

truth = json.load(open(sys.argv[1]))["tm_lattice"]
pixel_pm = float(sys.argv[2]) * 1000
a, b, o = (np.array(truth[k]) for k in ("along_basis_px", "across_basis_px", "origin_px"))
basis = np.array([a, b]).T
for arg in sys.argv[3:]:
    name, path = arg.split("=", 1)
    xy = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    frac = np.linalg.solve(basis, (xy - o).T).T
    offset = np.angle(np.exp(2j * np.pi * frac).mean(0)) / (2 * np.pi)
    design = np.column_stack([np.ones(len(xy)), np.round(frac - offset)])
    keep = np.ones(len(xy), bool)
    for _ in range(2):
        cx = np.linalg.lstsq(design[keep], xy[keep, 0], rcond=None)[0]
        cy = np.linalg.lstsq(design[keep], xy[keep, 1], rcond=None)[0]
        r = xy - np.column_stack([design @ cx, design @ cy])
        d = np.hypot(r[:, 0], r[:, 1])
        keep = d < 5 * np.median(d)
    rr = r[keep]
    rms = np.sqrt((rr ** 2).sum(1).mean())
    print(f"{name:<10} {rms * pixel_pm:6.2f} pm RMS (x {np.sqrt((rr[:, 0] ** 2).mean()) * pixel_pm:.2f}, "
          f"y {np.sqrt((rr[:, 1] ** 2).mean()) * pixel_pm:.2f} pm) over {keep.sum()} of {len(xy)} TM columns, truth lattice")
