"""The simulation engine: a vectorised, chunked, deterministic Markov microsimulation."""

from apesim.engine.simulate import SimulationParameters, simulate, simulate_chunk

__all__ = ["SimulationParameters", "simulate", "simulate_chunk"]
