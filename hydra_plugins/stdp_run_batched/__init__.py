"""stdp-run's batched Hydra launcher: ``stdp-run -m hydra/launcher=batched ...`` (see
:mod:`hydra_plugins.stdp_run_batched.batched_launcher`)."""
