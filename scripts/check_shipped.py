#!/usr/bin/env python3
"""Rebuild a shipped model as its make target does, in a temporary folder, and compare it with the shipped file.

    python scripts/check_shipped.py default|accurate [--device cpu] [--work DIR]     (make check-shipped MODEL=...)

Prints a table and writes results/shipped/check-<model>.json; exit status 1 when the rebuilt model's validation
predictions differ by more than 0.01 anywhere, or its metadata differs beyond dates and paths (the logic:
picaffect.workflows.shipped). A real rebuild: run it as a compute run, from the repository root.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picaffect.core.errors import PicaffectError
from picaffect.core.names import SHIPPED
from picaffect.workflows.shipped import CHECKS_FOLDER, check_shipped, check_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=sorted(SHIPPED))
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--work", type=Path, default=None,
                   help="rebuild in this folder and keep it (default: a temporary folder, removed after)")
    p.add_argument("--out", type=Path, default=None, help=f"the record (default {CHECKS_FOLDER}/check-MODEL.json)")
    args = p.parse_args(argv)
    try:
        result, out = check_shipped(args.model, out=args.out, work=args.work, device=args.device)
    except PicaffectError as e:
        print(f"check_shipped: error: {e}", file=sys.stderr)
        return 2
    print(check_table(result))
    print(f"wrote {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
