"""The file names inside a built dataset folder, shared by the builder and every reader.

Kept apart from ``build.py`` so that reading a dataset (``dataset.py``, training,
evaluation) does not import the builder, its source readers and pandas' Excel stack.
"""
from __future__ import annotations

MANIFEST = "manifest.parquet"   # one row per input row, kept or not; schema metadata holds the build id
CACHE = "images.npy"            # the kept pictures, (n, size, size, 3) uint8
REPORT = "report.json"
PLOTS = "plots"

# Where a build writes its id: ``DataFrame.attrs`` of the manifest (pandas keeps attrs in the
# parquet schema metadata, and through ``copy()``, so a rewritten manifest keeps it), and a
# comment in the .npy header of the cache (so a hard link or copy of the cache keeps it).
BUILD_ID_ATTR = "picaffect_build_id"

# Everything a build writes: a folder holding anything else is not replaced by a rebuild.
CONTENTS = (MANIFEST, CACHE, REPORT, PLOTS)
