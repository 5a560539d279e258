"""Atomap on the same aligned average HeatFront measured: find the columns, refine them by
centre of mass then 2-D Gaussians (Atomap's standard workflow), and compare the refined TM
positions with HeatFront's (nearest match within 1.5 px). Prints Atomap's time and the RMS
difference; with the simulator's ground_truth.json, also each tool's RMS distance from the
true TM lattice (one common translation removed: the average sits on the run reference).
usage: columns_atomap.py AVERAGE.tif HEATFRONT_TM.csv SEPARATION_PX [ground_truth.json]"""
import json
import sys, time
import numpy as np
import tifffile
import atomap.api as am
import hyperspy.api as hs

image = tifffile.imread(sys.argv[1]).astype(np.float64)
hf = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
separation = int(sys.argv[3])

t0 = time.perf_counter()
signal = hs.signals.Signal2D(image)
positions = am.get_atom_positions(signal, separation=separation)
sub = am.Sublattice(positions, image=image)
sub.find_nearest_neighbors()
sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
elapsed = time.perf_counter() - t0

refined = np.column_stack([sub.x_position, sub.y_position])
d2 = ((hf[:, None, :] - refined[None, :, :]) ** 2).sum(axis=2)
nearest = np.sqrt(d2.min(axis=1))
matched = nearest[nearest < 1.5]
print(f"atomap: {len(refined)} columns found and refined in {elapsed:.2f} s")
print(f"agreement: {len(matched)} of {len(hf)} HeatFront TM columns matched, "
      f"RMS difference {np.sqrt((matched ** 2).mean()):.4f} px, max {matched.max():.4f} px")
print(f"agreement percentiles: median {np.median(matched):.4f} px, 90 % {np.percentile(matched, 90):.4f} px, "
      f"{(matched > 0.2).sum()} columns differ by > 0.2 px")

if len(sys.argv) > 4:
    lattice = json.load(open(sys.argv[4]))["tm_lattice"]
    origin, along, across = (np.array(lattice[k]) for k in ("origin_px", "along_basis_px", "across_basis_px"))
    n = int(2 * max(image.shape) / min(np.hypot(*along), np.hypot(*across))) + 2
    ij = np.array([(i, k) for i in range(-n, n + 1) for k in range(-n, n + 1)], dtype=float)
    sites = origin + ij[:, :1] * along + ij[:, 1:] * across
    sites = sites[(sites[:, 0] > -20) & (sites[:, 1] > -20) & (sites[:, 0] < image.shape[1] + 20) & (sites[:, 1] < image.shape[0] + 20)]
    mask = nearest < 1.5
    pairs = {"heatfront": hf[mask], "atomap": refined[((hf[mask][:, None, :] - refined[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)]}
    shift = np.zeros(2)
    for _ in range(5):   # common translation from HeatFront's columns (median residual)
        p = pairs["heatfront"] - shift
        k = ((p[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        shift += np.median(p - sites[k], axis=0)
    for name, p in pairs.items():
        q = p - shift
        k = ((q[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        e = np.hypot(*(q - sites[k]).T)
        print(f"vs truth: {name} RMS {np.sqrt((e ** 2).mean()):.4f} px, median {np.median(e):.4f} px "
              f"over the same {len(e)} columns")
