"""Which asset files a LIBERO env really loads, read from what MuJoCo compiled.

A LIBERO scene is assembled in Python from XML files (scene, objects) and compiled by
MuJoCo, which then reads the meshes and textures the merged XML names. Two recorders see
all of it: an audit hook records every file Python opens below the assets root (the XML
files), and robosuite's ``MjSim.from_xml_string`` is wrapped to keep the exact XML string
MuJoCo compiled, whose mesh / texture / height-field / skin ``file`` attributes are read
back with ``mujoco.MjSpec``. The manifest script (``scripts/assets_manifest.py``) uses this
to list the files LIBERO's 130 tasks load; a test uses it to check that a built env's
sources resolve into the verified tree.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_recorders: list["LoadedFiles"] = []
_hook_installed = False


@dataclass
class LoadedFiles:
    """What was loaded while recording: files Python opened, XML strings MuJoCo compiled."""

    root: Path
    opened: set[Path] = field(default_factory=set)
    compiled_xml: list[str] = field(default_factory=list)

    def model_sources(self) -> set[Path]:
        """Every file the compiled models reference (meshes, textures, height fields, skins)."""
        sources: set[Path] = set()
        for xml in self.compiled_xml:
            sources |= referenced_files(xml)
        return sources

    def files_under_root(self) -> set[str]:
        """Opened and referenced files below ``root``, as sorted-able relative POSIX paths."""
        rels: set[str] = set()
        for path in self.opened | self.model_sources():
            with contextlib.suppress(ValueError):
                rels.add(_normal(path).relative_to(self.root).as_posix())
        return rels


def _normal(path: Path) -> Path:
    # Absolute and normalized, but symlinks kept: a symlinked copy of the tree is its own tree.
    return Path(os.path.normpath(os.path.abspath(path)))


def _audit(event: str, args: tuple) -> None:
    if event != "open" or not _recorders:
        return
    target = args[0]
    if isinstance(target, int):
        return
    path = _normal(Path(os.fsdecode(target)))
    for recorder in _recorders:
        if path.is_relative_to(recorder.root) and path.is_file():
            recorder.opened.add(path)


def referenced_files(xml: str) -> set[Path]:
    """The files an MJCF document names, resolved the way MuJoCo's compiler resolves them."""
    import mujoco

    spec = mujoco.MjSpec.from_string(xml)
    base = Path(spec.modelfiledir or ".")
    mesh_dir = base / (spec.meshdir or "")
    texture_dir = base / (spec.texturedir or "")
    names: list[tuple[Path, str]] = []
    names += [(mesh_dir, m.file) for m in spec.meshes]
    names += [(texture_dir, t.file) for t in spec.textures]
    names += [(texture_dir, f) for t in spec.textures for f in t.cubefiles]
    names += [(mesh_dir, h.file) for h in spec.hfields]
    names += [(mesh_dir, s.file) for s in spec.skins]
    return {(directory / name) if not Path(name).is_absolute() else Path(name) for directory, name in names if name}


@contextlib.contextmanager
def record_loaded_files(root: Path | str) -> Iterator[LoadedFiles]:
    """Record, for the duration, what is loaded from ``root`` and what MuJoCo compiles."""
    global _hook_installed
    from robosuite.utils.binding_utils import MjSim

    recorder = LoadedFiles(_normal(Path(root)))
    if not _hook_installed:
        sys.addaudithook(_audit)  # hooks cannot be removed; it is idle without recorders
        _hook_installed = True
    original = MjSim.__dict__["from_xml_string"]

    def from_xml_string(cls, xml):  # type: ignore[no-untyped-def]
        recorder.compiled_xml.append(xml)
        return original.__func__(cls, xml)

    MjSim.from_xml_string = classmethod(from_xml_string)
    _recorders.append(recorder)
    try:
        yield recorder
    finally:
        _recorders.remove(recorder)
        MjSim.from_xml_string = original
