"""Loads a HeatFront run's outputs in Python: the tables with pandas, an aligned frame
stack with RosettaSciIO (HyperSpy's file reader).

usage: python load_outputs.py OUT_DIR
needs: pip install pandas rosettasciio h5py
"""
import sys
from pathlib import Path

import pandas as pd
from rsciio.hspy import file_reader

out = Path(sys.argv[1])

# Tables: an empty cell (a value not measured) becomes NaN.
steps = pd.read_csv(out / "steps.csv")
print(steps[["temperature_C", "front_velocity_nm_per_s", "front_velocity_sem_nm_per_s"]])

columns = pd.read_csv(out / "columns" / "step_0.csv")
tm = columns[columns.sublattice == "tm"]
print(f"{len(tm)} TM columns, the first at x = {tm.x_nm.iloc[0]:.3f} nm, y = {tm.y_nm.iloc[0]:.3f} nm")

# A hold's aligned frames: (frames, y, x), float32, NaN where a frame has no pixel.
stack = file_reader(str(out / "stacks" / "step_0.hspy"))[0]
time_axis, y_axis, x_axis = stack["axes"]
print(stack["data"].shape, f"{x_axis['scale']} {x_axis['units']} per pixel")
heatfront = stack["metadata"]["HeatFront"]
print("frame times (s):", heatfront["time_s"])
print("frame temperatures (°C):", heatfront["temperature_C"])
