"""The bottom layer: what every other part of picaffect shares, importing nothing above it.

``names`` (the choices users have), ``errors`` (the ``PicaffectError`` family),
``scale`` (the 1..9 SAM scale and rescaling), ``atomic`` (whole-file writes),
``jsonsafe`` (NaN-free JSON), ``metrics`` (RMSE, PCC, CCC, SAGR), ``runtime``
(device and allocator settings) and ``plots`` (every figure). Kept in one folder so
that a stage can lean on them without ever pulling in another stage; this file
imports nothing, so reaching one of them costs only that module.
"""
