"""Is an int8 ONNX variant of a model worth shipping? Its network speed beside the float one, and how far
its ratings move, measured in one run.

    D=runs/data/oasis+emotion6+bass-224px-group    # data/rated_sets.py's folder scheme
    picaffect build $D $(python -m picaffect.data.rated_sets sources ../shared/data) --size 224 --split group
    python -m research.int8_onnx --model default --data $D --out runs/int8

Static quantisation with onnxruntime's tools (QDQ, weights int8 per output channel,
activations uint8), its ranges calibrated on ``--calibration-rows`` pictures of the
training split; only the convolutions are quantised (the readout and the error head stay
float: they are a sliver of the time and all of the mapping to 1..9). The float model is
the model exported as the shipped ONNX file is (weights exact in float16 stored so, behind
a Cast that onnxruntime folds when it loads the file). Ratings are compared on every validation
row; speed is the network alone on batches of ``--batch`` at the machine's threads,
alternating the two sessions round by round so both see the same load. Print the machine's
load beside the figures: measure on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def pictures(data: Path, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, S, S) uint8 pictures of a built dataset's split and their (N, 2) ratings."""
    from picaffect.data.dataset import RatedImages

    ds = RatedImages(data, split, limit=limit)
    x = np.stack([np.asarray(ds.images[i]) for i in ds.rows["index"].to_numpy()]).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), ds.rows[["valence", "arousal"]].to_numpy(float)


def quantise(float_path: Path, out: Path, calibration: np.ndarray, scale: float) -> Path:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([calibration[i:i + 16].astype(np.float32) * np.float32(scale)
                                 for i in range(0, len(calibration), 16)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"pixels": batch}

    prepared = out.with_name("prepared.onnx")
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    calibrate_method=CalibrationMethod.MinMax)
    return out


def speed(backends: dict, x: np.ndarray, batch: int, rounds: int) -> dict[str, float]:
    """Images/s of each backend's network on ``x``, best of ``rounds``, alternating backends each round."""
    best = {k: 0.0 for k in backends}
    for _ in range(rounds):
        for name, b in backends.items():
            start = time.perf_counter()
            for i in range(0, len(x), batch):
                b.run(x[i:i + batch])
            best[name] = max(best[name], len(x) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="a folder for the float and int8 files")
    parser.add_argument("--calibration-rows", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from picaffect.inference.backends import OnnxBackend
    from picaffect.inference.shipping import export_model

    args.out.mkdir(parents=True, exist_ok=True)
    float_path = export_model(args.model, args.out / "float.onnx")
    start = time.perf_counter()
    train, _ = pictures(args.data, "train", args.calibration_rows)
    fp = OnnxBackend(float_path)
    int8_path = quantise(float_path, args.out / "int8.onnx", train, fp.spec.input_scale)
    quantise_s = time.perf_counter() - start
    q = OnnxBackend(int8_path)
    x, y = pictures(args.data, "validation", None)
    a = fp.spec.decode(np.concatenate([fp.run(x[i:i + 64]) for i in range(0, len(x), 64)]))
    b = q.spec.decode(np.concatenate([q.run(x[i:i + 64]) for i in range(0, len(x), 64)]))
    diff = np.abs(np.asarray(a) - np.asarray(b))
    r = {name: [float(np.corrcoef(p[:, j], y[:, j])[0, 1]) for j in range(2)] for name, p in (("float", a), ("int8", b))}
    load_before = os.getloadavg()
    rates = speed({"float": fp, "int8": q}, x[:256], args.batch, args.rounds)
    result = {"model": args.model, "validation_rows": int(len(x)), "calibration_rows": int(len(train)),
              "quantise_seconds": round(quantise_s, 1),
              "abs_diff": {"valence": {"max": float(diff[:, 0].max()), "mean": float(diff[:, 0].mean())},
                           "arousal": {"max": float(diff[:, 1].max()), "mean": float(diff[:, 1].mean())}},
              "validation_r": r, "images_per_s": rates, "speedup": rates["int8"] / rates["float"],
              "sizes_mb": {"float": float_path.stat().st_size / 1e6, "int8": int8_path.stat().st_size / 1e6},
              "load_before": load_before, "load_after": os.getloadavg(), "batch": args.batch}
    text = json.dumps(result, indent=2)
    (args.out / "int8.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
