"""stdp-run: a declarative experiment runner for spike-timing dependent plasticity."""

__version__ = "0.1.0"
