"""Simulation results: the Arrow schemas of the tables, their metadata and statistics."""
