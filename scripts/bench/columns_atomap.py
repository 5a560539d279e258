"""Atomap on the same aligned average HeatFront measured: find the columns, refine them by
centre of mass then 2-D Gaussians (Atomap's standard workflow), and compare the refined TM
positions with HeatFront's (nearest match within 1.5 px). Prints Atomap's time and the RMS
difference. usage: columns_atomap.py AVERAGE.tif HEATFRONT_TM.csv SEPARATION_PX"""
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
sub.refine_atom_positions_using_center_of_mass()
sub.refine_atom_positions_using_2d_gaussian()
elapsed = time.perf_counter() - t0

refined = np.column_stack([sub.x_position, sub.y_position])
d2 = ((hf[:, None, :] - refined[None, :, :]) ** 2).sum(axis=2)
nearest = np.sqrt(d2.min(axis=1))
matched = nearest[nearest < 1.5]
print(f"atomap: {len(refined)} columns found and refined in {elapsed:.2f} s")
print(f"agreement: {len(matched)} of {len(hf)} HeatFront TM columns matched, "
      f"RMS difference {np.sqrt((matched ** 2).mean()):.4f} px, max {matched.max():.4f} px")
