"""Evaluate from Python: ``evalharness.evaluate(...)`` and the warm ``evalharness.Evaluator``.

The command line and this API run the same engine (:mod:`evalharness.engine.evaluate`):
the keyword arguments become the Hydra overrides the CLI would take, the run folder is
the one the CLI writes (resumable, readable by ``table``, ``gate`` and ``report``), mistakes
raise :class:`~evalharness.errors.UserInputError` with the CLI's one-line messages before
anything is written, and a Ctrl-C stops the workers, keeps the finished episodes and raises
:class:`~evalharness.engine.interrupt.RunInterrupted`. The result is the typed
:class:`~evalharness.results.schema.Summary` (``summary.metrics()`` for a logger).

``policy`` is one of:

- a config name (``"zero"``, ``"checkpoint"`` with ``overrides=["policy.path=DIR"]``): built
  from config in every worker, as on the command line;
- a :class:`~evalharness.policies.base.Policy` object, or a plain callable
  ``observation -> raw output`` (wrapped by :class:`~evalharness.policies.callable.CallablePolicy`):
  kept in this process, never pickled (:mod:`evalharness.engine.in_memory`). It needs a
  ``label``, and should get a ``weights_digest`` (:func:`weights_digest` of a
  ``torch.nn.Module``) so that a resume never reuses episodes of other weights.

:class:`Evaluator` keeps the worker processes and their envs between calls: a training
loop's second evaluation of the same tasks builds no env (:attr:`Evaluator.env_builds`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evalharness.engine.in_memory import InMemoryPolicy
from evalharness.errors import UserInputError
from evalharness.policies.base import Policy
from evalharness.results.schema import Summary

__all__ = ["Evaluator", "evaluate", "weights_digest"]

_GROUPS = ("suite", "protocol", "decoder", "normalize", "convert", "perturb", "video")
_POLICY_CHOICE = "${hydra:runtime.choices.policy}"


def weights_digest(module: Any) -> str:
    """sha256 of a ``torch.nn.Module``'s state dict (names, dtypes, shapes and bytes, in name order).

    The same weights give the same digest on any device; any changed value changes it.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise UserInputError(f"weights_digest needs a torch.nn.Module, got {type(module).__name__}")
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16: hash its bits
            value = value.view(torch.int16)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


# ----- arguments -> overrides ------------------------------------------------------------------


def _value(name: str, value: Any) -> str:
    """A Python value as a Hydra override value (ints, names, lists of them)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, Path)):
        text = str(value)
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Sequence):
        return "[" + ",".join(_value(name, v) for v in value) + "]"
    raise UserInputError(f"{name}={value!r} is not valid; allowed: an integer, a name, or a list of them")


def _positive(name: str, value: Any, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserInputError(f"{name}={value!r} is not valid; allowed: an integer >= {low}")
    return value


def _overrides(
    *, suite: str | None, tasks: Any, episodes: int | None, init_states: Sequence[int] | None, max_steps: int | None,
    groups: dict[str, str | None], output_dir: str | Path | None, workers: int | str | None,
    camera_size: int | None, overrides: Sequence[str],
) -> list[str]:
    """The CLI's overrides for these keyword arguments (each value checked for its type)."""
    out: list[str] = []
    for group, choice in {"suite": suite, **groups}.items():
        if choice is not None:
            if not isinstance(choice, str) or not choice:
                raise UserInputError(f"{group}={choice!r} is not valid; allowed: the name of a {group} config")
            out.append(f"{group}={choice}")
    if tasks is not None:
        out.append(f"suite.tasks={'all' if tasks == 'all' else _value('tasks', list(tasks) if not isinstance(tasks, (str, int)) else [tasks])}")
    if episodes is not None:
        out.append(f"suite.episodes_per_task={_positive('episodes', episodes)}")
    if init_states is not None:
        if isinstance(init_states, (str, bytes)) or not isinstance(init_states, Sequence):
            raise UserInputError(f"init_states={init_states!r} is not valid; allowed: a list of init state indices")
        out.append(f"suite.init_states={_value('init_states', [_positive('init_states', i, True) for i in init_states])}")
    if max_steps is not None:
        out.append(f"suite.max_steps={_positive('max_steps', max_steps)}")
    if camera_size is not None:
        out.append(f"camera_size={_positive('camera_size', camera_size)}")
    if workers is not None:
        out.append(f"runner.workers={'auto' if workers == 'auto' else _positive('workers', workers, True)}")
    if output_dir is not None:
        out.append(f"output_dir={_value('output_dir', str(Path(output_dir)))}")
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise UserInputError(f"overrides={overrides!r} is not valid; allowed: a list of Hydra overrides like 'video.fps=5'")
    return out + list(overrides)


def _compose(overrides: list[str], policy_choice: str | None) -> Any:
    """The run's config, composed exactly as the CLI would; the run name uses ``policy_choice``
    (an in-memory policy's label) where the CLI puts the policy group's name."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict

    from evalharness.config.conf import CONF_DIR, check_group_choices, check_overrides
    from evalharness.perturb.config import register_resolvers

    register_resolvers()
    check_group_choices(overrides)
    check_overrides(overrides)
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
    except HydraException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"the overrides {overrides} cannot be composed: {first}") from None
    choice = policy_choice or str(cfg.hydra.runtime.choices.policy)
    with open_dict(cfg):
        raw_name = OmegaConf.to_container(cfg, resolve=False)["run_name"]
        if isinstance(raw_name, str):
            cfg.run_name = raw_name.replace(_POLICY_CHOICE, choice)
        del cfg["hydra"]
    return cfg


def _in_memory(policy: Any, label: str | None, weights_digest: str | None) -> InMemoryPolicy | None:
    if isinstance(policy, str):
        if weights_digest is not None:
            raise UserInputError("weights_digest is for an in-memory policy; a policy config names its own weights")
        return None
    if not isinstance(policy, Policy):
        if not callable(policy):
            raise UserInputError(f"policy={type(policy).__name__} is not valid; allowed: a Policy, a callable "
                                 "observation -> raw output, or the name of a policy config")
        from evalharness.policies.callable import CallablePolicy

        policy = CallablePolicy(policy, name=label or "callable")
    if label is None:
        raise UserInputError("label=None is not valid for an in-memory policy; allowed: a name for these weights, "
                             "e.g. label=f'step{step}' (it names the run and is part of its identity)")
    return InMemoryPolicy(policy, label, weights_digest)


# ----- one run -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _silenced(quiet: bool) -> Iterator[None]:
    """``quiet``: no progress lines and no summary table (a training log stays readable);
    everything they say is in the returned Summary and the run folder."""
    if not quiet:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _run(cfg: Any, in_memory: InMemoryPolicy | None, warm: Any | None, step: int | None = None,
         quiet: bool = False) -> tuple[Summary, Any]:
    """Prepare (writes nothing), then execute in the run folder; returns (summary, the runner used)."""
    from evalharness.engine import policy_server
    from evalharness.engine.evaluate import _run_dir_lock, execute, prepare
    from evalharness.engine.warm_runner import WarmLocalRunner
    from evalharness.results.disk_full import stop_when_disk_full

    run = prepare(cfg, in_memory=in_memory)  # every value is checked before anything is written
    if step is not None:  # metadata, not identity: the same weights at another step name reuse nothing anyway
        run.metadata["training_step"] = step
    if warm is not None and warm.workers != run.workers:
        raise UserInputError(f"runner.workers={run.workers} differs from this Evaluator's workers={warm.workers}")
    if warm is not None and run.runner.target != "evalharness.engine.runner.LocalRunner":
        raise UserInputError(f"runner={run.runner.target.rsplit('.', 1)[-1]} is not available in an Evaluator; "
                             "allowed: runner=local (its workers are kept warm between calls)")
    if warm is not None and in_memory is None and policy_server.mode(run.config) != "none":
        raise UserInputError("policy_server=auto is not available in an Evaluator; pass the policy object "
                             "itself with workers > 0 (it is then served from this process)")
    runner = warm
    if runner is None and in_memory is not None:  # a policy config without an Evaluator: the CLI's own runner
        runner = WarmLocalRunner(None, run.workers, run.max_attempts)  # type: ignore[arg-type]
    run_dir = Path(run.config["output_dir"]).resolve()
    server = None

    def runner_for(worker_config: Any, stop: Any) -> Any:
        nonlocal server
        import dataclasses

        runner.max_attempts = run.max_attempts
        if in_memory is None:
            return runner.use(worker_config, stop)
        if run.workers == 0:
            return runner.use(worker_config, stop, inline_policy=in_memory.for_episodes(run.pipeline_cfg, run.raw_outputs))
        from evalharness.engine.in_memory import InProcessServer

        server = InProcessServer(in_memory.policy, run.config, run.pipeline_cfg)
        worker_config = dataclasses.replace(worker_config, policy=server.client_policy(in_memory.folder_label),
                                            pipeline=server.client_pipeline)
        return runner.use(worker_config, stop)

    with stop_when_disk_full(run_dir, "creating the run folder"):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ".lock").touch()
    try:
        with _run_dir_lock(run_dir), _silenced(quiet):
            summary = execute(run, run_dir, runner_for if runner is not None else None)
    finally:
        if server is not None:
            server.close()
        if warm is None and runner is not None:
            runner.close()
    return summary, runner


def evaluate(
    policy: Policy | Callable[[Any], Any] | str = "scripted",
    *,
    label: str | None = None,
    weights_digest: str | None = None,
    suite: str | None = None,
    tasks: Sequence[int | str] | str | None = None,
    episodes: int | None = None,
    init_states: Sequence[int] | None = None,
    max_steps: int | None = None,
    protocol: str | None = None,
    decoder: str | None = None,
    normalize: str | None = None,
    convert: str | None = None,
    perturb: str | None = None,
    video: str | None = None,
    output_dir: str | Path | None = None,
    workers: int | str | None = None,
    camera_size: int | None = None,
    overrides: Sequence[str] = (),
    step: int | None = None,
    quiet: bool = False,
) -> Summary:
    """Run (or resume) one evaluation, exactly as the CLI would, and return its typed summary.

    Every keyword is the CLI's choice of the same name (``suite=libero_10`` ...): ``tasks``
    (indices or names, or ``"all"``), ``episodes`` per task, ``init_states`` (a list, instead
    of ``episodes``), ``max_steps`` (``suite.max_steps``), ``workers`` (``runner.workers``);
    ``overrides`` are further Hydra overrides. An in-memory ``policy`` needs ``label``.
    ``step``: the training step of these weights, recorded in the summary's metadata
    (``training_step``); ``table`` and ``report`` given the parent folder order runs by it.
    ``quiet``: print neither progress nor the summary table.
    """
    in_memory = _in_memory(policy, label, weights_digest)
    if step is not None:
        _positive("step", step, allow_zero=True)
    args = _overrides(
        suite=suite, tasks=tasks, episodes=episodes, init_states=init_states, max_steps=max_steps,
        groups={"protocol": protocol, "decoder": decoder, "normalize": normalize, "convert": convert,
                "perturb": perturb, "video": video},
        output_dir=output_dir, workers=workers, camera_size=camera_size, overrides=overrides,
    )
    if isinstance(policy, str):
        args.insert(0, f"policy={policy}")
    cfg = _compose(args, in_memory.folder_label if in_memory else None)
    return _run(cfg, in_memory, None, step, quiet)[0]


class Evaluator:
    """Evaluate repeatedly with warm workers: ``with Evaluator(...) as ev: ev.run(model, label=...)``.

    The keyword arguments are :func:`evaluate`'s, shared by every call (a call may add or
    replace any but ``workers``). Each call writes its own run folder ``<parent>/<label>``
    (``-<digest prefix>`` with a weights digest; for a policy config, its name), under
    ``parent`` (default ``results/evaluator``). The worker processes and the envs they built
    stay up between calls and are stopped by :meth:`close` (or leaving the ``with`` block,
    also on an exception); ``env_capacity`` envs are kept per worker; ``quiet`` prints
    neither progress nor tables.
    """

    def __init__(self, parent: str | Path = "results/evaluator", *, workers: int | str = 0, env_capacity: int = 1,
                 quiet: bool = False, **options: Any) -> None:
        if "output_dir" in options:
            raise UserInputError("output_dir is not an Evaluator option; allowed: parent=<folder of the runs>")
        _positive("env_capacity", env_capacity)
        self.parent = Path(parent)
        self.workers = workers
        self.env_capacity = env_capacity
        self.quiet = quiet
        self.options = options
        self.runs: list[Path] = []
        self._runner: Any = None
        self._closed = False

    def run(self, policy: Policy | Callable[[Any], Any] | str, *, label: str | None = None,
            weights_digest: str | None = None, step: int | None = None, **options: Any) -> Summary:
        """Evaluate ``policy`` into ``<parent>/<label>``, reusing the warm workers and envs
        (``step``: the training step, recorded as the run's ``training_step``)."""
        if self._closed:
            raise UserInputError("this Evaluator is closed; create a new one")
        if step is not None:
            _positive("step", step, allow_zero=True)
        for key in ("workers", "output_dir"):
            if key in options:
                raise UserInputError(f"{key} is fixed for an Evaluator; set it when creating it")
        in_memory = _in_memory(policy, label, weights_digest)
        if self.workers == "auto":  # resolved once: the warm workers are this many for every call
            from evalharness.engine.runner import default_workers

            self.workers = default_workers()
        merged = {**self.options, **options}
        folder = in_memory.folder_label if in_memory else (label or str(policy))
        groups = {g: merged.pop(g, None) for g in _GROUPS if g != "suite"}
        args = _overrides(
            suite=merged.pop("suite", None), tasks=merged.pop("tasks", None), episodes=merged.pop("episodes", None),
            init_states=merged.pop("init_states", None), max_steps=merged.pop("max_steps", None), groups=groups,
            output_dir=self.parent / folder, workers=self.workers, camera_size=merged.pop("camera_size", None),
            overrides=list(merged.pop("overrides", ())),
        )
        if merged:
            raise UserInputError(f"{sorted(merged)[0]} is not an option of evaluate; allowed: "
                                 f"{', '.join(sorted([*_GROUPS, 'tasks', 'episodes', 'init_states', 'max_steps', 'camera_size', 'overrides']))}")
        if isinstance(policy, str):
            args.insert(0, f"policy={policy}")
        cfg = _compose(args, in_memory.folder_label if in_memory else None)
        if self._runner is None:
            from evalharness.engine.warm_runner import WarmLocalRunner

            self._runner = WarmLocalRunner(None, self.workers, env_capacity=self.env_capacity)  # type: ignore[arg-type]
        summary, _ = _run(cfg, in_memory, self._runner, step, self.quiet)
        self.runs.append(Path(cfg.output_dir).resolve())
        return summary

    @property
    def env_builds(self) -> int:
        """Envs built so far by this Evaluator's workers, over all its calls."""
        return 0 if self._runner is None else self._runner.env_builds

    @property
    def workers_imported_torch(self) -> bool:
        """Whether any worker process imported torch (an in-memory model never makes them)."""
        return False if self._runner is None else self._runner.workers_imported_torch

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes kept warm now."""
        return [] if self._runner is None else self._runner.worker_pids

    def close(self) -> None:
        """Stop the workers and close their envs (the caller's policies stay open)."""
        self._closed = True
        if self._runner is not None:
            self._runner.close()

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

