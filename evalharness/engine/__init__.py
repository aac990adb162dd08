"""The run engine: config -> plan -> runner -> result store -> summary.

``evaluate`` validates a run and executes it; the runners (``runner`` for local worker
processes, ``ray_runner`` for Ray actors, chosen by ``runner._target_``, each validated by
its own settings model in ``runner_settings``) hand episodes to ``worker`` code and their
records back to the parent, the only writer. ``run_settings`` validates the run's own
top-level keys (``camera_size``, ``fast_physics``, ``retry_errors``, ``policy_server``).
``crash_accounting`` retries a dead worker's episode, ``interrupt`` turns Ctrl-C into a stop
request, ``progress`` draws the bar, ``worker_budget`` sizes ``runner.workers=auto``,
``policy_server`` starts one ``serve`` process for ``policy_server=auto``.
"""
