"""How clearly the non-periodic content tells lattice aliases apart (docs/algorithms.md).

For a simulated run with ground truth (PNG frames), the band correlation with the
lattice's reflections notched out (as ReflectionNotch: power over the group > 8x its
frequency ring's median, dilated by one bin) is evaluated at the true relative shift and
at its lattice aliases within 2.2 lattice vectors, in sigma of the notched map:
  - each frame against the sum of the other frames of its hold at their true shifts;
  - each frame against the previous frame of its hold.
Prints the margin true - best alias for each; a negative margin means a wrong alias wins.
usage: python alias_margins.py RUN_DIR
"""
import csv, json, os, sys
import numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation

run = sys.argv[1]
truth = {int(r["frame_index"]): r for r in csv.DictReader(open(os.path.join(run, "ground_truth.csv")))}
lattice = json.load(open(os.path.join(run, "ground_truth.json")))["tm_lattice"]
along, across = np.array(lattice["along_basis_px"]), np.array(lattice["across_basis_px"])

def tukey(n, taper=0.1):
    m = int(n * taper); i = np.arange(n); d = np.minimum(i, n - 1 - i); w = np.ones(n)
    s = d < m; w[s] = 0.5 - 0.5 * np.cos(np.pi * (d[s] + 0.5) / m); return w

def spectrum(i):
    a = np.array(Image.open(os.path.join(run, truth[i]["file"]))).astype(float)
    a -= a.mean(); a *= tukey(a.shape[0])[:, None] * tukey(a.shape[1])[None, :]
    return np.fft.fft2(a)

frames = sorted(i for i in truth if truth[i]["status"] == "ok")
S = {i: spectrum(i) for i in frames}
h, w = S[frames[0]].shape
ky, kx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
f = np.hypot(kx, ky)
band = (1 - np.exp(-f**2 / (2 * 0.01**2)))**2 * (f < 0.25)
ring = np.rint(f * min(h, w)).astype(int)
shift = {i: np.array([float(truth[i]["shift_x_px"]), float(truth[i]["shift_y_px"])]) for i in frames}

def notch(group):
    p = np.mean([abs(S[i])**2 for i in group], axis=0)
    median = np.array([np.median(p[ring == k]) if (ring == k).any() else 0 for k in range(ring.max() + 1)])
    peaks = (p > 8 * median[ring]) & (ring >= 2)
    return ~binary_dilation(peaks, structure=np.ones((3, 3)))

reach = 2.2 * min(np.hypot(*along), np.hypot(*across))
aliases = [a * along + b * across for a in range(-4, 5) for b in range(-4, 5)
           if (a, b) != (0, 0) and np.hypot(*(a * along + b * across)) <= reach]

def margin(moving, reference, d, weight):
    c = np.real(np.fft.ifft2(moving * np.conj(reference) * band * weight))
    z = (c - c.mean()) / c.std()
    at = lambda p: z[int(round(p[1])) % h, int(round(p[0])) % w]
    return at(d) - max(at(d + v) for v in aliases)

holds = {}
for i in frames:
    holds.setdefault(truth[i]["step_index"], []).append(i)
average, pairs = [], []
for step, group in sorted(holds.items()):
    weight = notch(group)
    moved = {i: S[i] * np.exp(2j * np.pi * (kx * shift[i][0] + ky * shift[i][1])) for i in group}
    for k in group:
        others = sum(moved[i] for i in group if i != k)
        average.append(margin(S[k], others, shift[k], weight))
    for a, b in zip(group, group[1:]):
        pairs.append(margin(S[b], S[a], shift[b] - shift[a], weight))
for name, m in [("frame vs sum of the others", average), ("frame vs previous frame", pairs)]:
    m = np.array(m)
    print(f"{name}: {len(m)} cases, margin mean {m.mean():.1f} sigma, min {m.min():.1f}, "
          f"wrong alias wins in {int((m < 0).sum())}")
