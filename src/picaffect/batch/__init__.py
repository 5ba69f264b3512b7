"""Batch scoring beyond one process: ``picaffect predict --engine ray`` (``ray_job.py``).

Joins the inference core (a model per actor) and the outputs (Parquet shards);
Ray is an optional extra (``pip install 'picaffect[ray]'``) imported only here.
"""
