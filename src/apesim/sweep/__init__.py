"""Scenario sweeps (probabilistic sensitivity analysis): a sweep file varies a base
protocol's parameters over distributions or a grid; every draw is an ordinary simulation
with its own seed and exact protocol. `spec` (the file), `plan` (the draws), `store` (the
sweep's folder in the workspace), `run` (running the missing draws), `report` (outcomes
across draws and their sensitivity to each parameter)."""
