"""Install LIBERO's assets and write its config, so LIBERO never prompts.

Idempotent: rerunning with the same archive checks its checksum and stops there.
Without --assets, an existing install is kept, then $EVALHARNESS_LIBERO_ASSETS is tried.
The harness keeps its files in $EVALHARNESS_HOME (default ~/.local/share/evalharness).
"""

from __future__ import annotations

import argparse

from envs.libero.assets import install_assets
from envs.libero.home import ensure_libero_config, harness_home


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assets", metavar="PATH", help="libero-assets.tar.gz (with its .sha256 beside it, if any) or an assets/ folder")
    parser.add_argument("--force", action="store_true", help="reinstall even if the same assets are installed")


def run(args: argparse.Namespace) -> int:
    config = ensure_libero_config()
    info = install_assets(args.assets, force=args.force)
    print(f"harness home   {harness_home()}")
    print(f"LIBERO config  {config}")
    print(f"assets         {info.path} ({info.files} files, tree sha256 {info.tree_sha256[:16]}...)")
    if info.archive_sha256:
        print(f"from archive   {info.source} (sha256 {info.archive_sha256[:16]}...)")
    print("ready: try 'evalharness doctor'")
    return 0
