#!/usr/bin/env python3
"""Record a shipped model's predictions of generated pictures, with the SHA-256 of the file that made them.

    python scripts/record_predictions.py default [--out tests/fixtures/default-predictions.json]

`make default-model` (default-calibration) runs it after writing the weights, so that tests/test_default_model.py
checks the shipped file against its own predictions (picaffect.workflows.shipped.record_predictions).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picaffect.core.names import SHIPPED
from picaffect.workflows.shipped import record_predictions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=sorted(SHIPPED))
    p.add_argument("--out", type=Path, default=None, help="default: tests/fixtures/MODEL-predictions.json")
    args = p.parse_args(argv)
    out = args.out or Path("tests") / "fixtures" / f"{args.model}-predictions.json"
    record = record_predictions(args.model, out)
    print(f"wrote {out}: {len(record['predictions'])} predictions of {record['file']} (sha256 {record['sha256'][:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
