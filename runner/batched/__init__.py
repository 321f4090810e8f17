"""The batched launcher's side of stdp-run: many sweep jobs run as one replicated simulation.

- :mod:`runner.batched.grouping`: which jobs may share a simulation (a pure rule).
- :mod:`runner.batched.group_task`: the jobs' tasks side by side, as one loop ``Task``.
- :mod:`runner.batched.watch`: per-replica metrics and the per-replica non-finite guard.
- :mod:`runner.batched.group_run`: build, stack, run and record one group
  (:mod:`runner.batched.callbacks`: the loop callbacks of a group).
- :mod:`runner.batched.jobs`: Hydra's job bookkeeping (folders, ``.hydra/``, callbacks).
- :mod:`runner.batched.launch`: the launcher's work (grouping, memory cap, results).

The Hydra plugin itself is ``hydra_plugins.stdp_run_batched`` (``hydra/launcher=batched``).
"""
