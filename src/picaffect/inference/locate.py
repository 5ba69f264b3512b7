"""Where a model named by the user lives: a shipped model's name, a training run folder,
or a checkpoint file, and the ONNX twin a shipped model may have."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..core.errors import CheckpointError
from ..core.names import SHIPPED, SHIPPED_ONNX


def shipped_path(name: str) -> Path:
    """The file of a model shipped inside the package (``default``)."""
    if name not in SHIPPED:
        raise CheckpointError(f"no shipped model named {name!r}; shipped: {', '.join(SHIPPED)}")
    path = Path(str(resources.files("picaffect") / "weights" / SHIPPED[name]))
    if not path.is_file():
        raise CheckpointError(f"the shipped model file {path} is missing: reinstall picaffect")
    return path


def shipped_onnx_path(name: str) -> Path | None:
    """The ONNX file of a shipped model, or None when there is none (``picaffect export default ...`` makes one)."""
    if name not in SHIPPED_ONNX:
        return None
    path = Path(str(resources.files("picaffect") / "weights" / SHIPPED_ONNX[name]))
    return path if path.is_file() else None


def resolve_model(ref: str | Path) -> Path:
    """A shipped model's name, a training run folder (its ``best.pt``) or a checkpoint file -> the file."""
    path = Path(ref)
    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise CheckpointError(f"{path} holds no best.pt: is it a picaffect training run?")
        return path / "best.pt"
    if path.is_file():
        return path
    if str(ref) in SHIPPED:
        return shipped_path(str(ref))
    raise CheckpointError(f"{ref} is neither a training run folder, a checkpoint file, nor a shipped model "
                          f"({', '.join(SHIPPED)})")
