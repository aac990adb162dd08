"""``language``: the instruction replaced by a paraphrase read from a JSON file.

``path`` names a JSON object mapping a task name (as ``evalharness tasks`` lists it) to a
list of paraphrases; each episode draws one. The default file, ``paraphrases.json`` next
to this module, was written for this project and covers the LIBERO-Spatial and
LIBERO-Object tasks. The level does not change anything (every paraphrase keeps the
meaning); it is recorded for the table. Tasks the file does not cover are refused when
the run is planned, so no episode silently runs with the original instruction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from envs.errors import UserInputError
from envs.libero.perturb.base import Perturbation, PerturbationSettings

DEFAULT_PATH = Path(__file__).with_name("paraphrases.json")


def load_paraphrases(path: str | Path) -> dict[str, list[str]]:
    from envs.libero.env import INSTRUCTION_CHARSET

    where = f"perturb.language.path={str(path)!r}"
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{where} could not be read ({type(exc).__name__}: {exc}); allowed: a JSON file of task name -> list of paraphrases") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and v and all(isinstance(s, str) and s.strip() for s in v) for v in data.values()
    ):
        raise UserInputError(f"{where} is not valid; allowed: a JSON object of task name -> non-empty list of strings")
    for task, texts in data.items():
        for text in texts:
            bad = sorted(set(text) - INSTRUCTION_CHARSET)
            if bad:
                raise UserInputError(f"{where}: paraphrase {text!r} of {task} has characters {bad} the env does not allow")
    return data


class LanguageSettings(PerturbationSettings):
    path: str | None = None  # a JSON file of task name -> paraphrases; null = the shipped one

class Paraphrase(Perturbation):
    name = "language"

    Settings = LanguageSettings

    def __init__(self, level: int | None = None, path: str | None = None) -> None:
        super().__init__(level)
        self.path = str(path) if path else str(DEFAULT_PATH)
        self.paraphrases = load_paraphrases(self.path)

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        texts = self.paraphrases.get(task.name)
        if not texts:
            raise UserInputError(
                f"perturb.language.path={self.path!r} has no paraphrase for task {task.name!r} ({task.suite}); "
                "allowed: tasks the file lists"
            )
        i = int(rng.integers(len(texts)))
        return {"index": i, "instruction": texts[i], "original": task.instruction}

    def instruction(self, params: dict[str, Any]) -> str | None:
        return params["instruction"]
