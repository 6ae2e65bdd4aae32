"""Runs and sweeps on a Dask cluster (the optional extra `apesim[distributed]`).

`options` and `blocks` import no Dask: the options of a distributed run, the plan of fixed
patient blocks and what a worker computes for one block. `cluster` (connecting to or
starting a cluster) and `run` (the tables of a run, written as the blocks arrive) import
Dask, and only a distributed run or sweep loads them.
"""
