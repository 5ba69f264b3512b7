"""``make demo``: score the sample photographs that installed packages ship.

scikit-learn's ``load_sample_images`` and scikit-image's data photographs are on
disk after a plain ``pip install``: no download, so the demo runs offline on a
fresh machine. Each photograph is copied into ``OUT/photos`` and scored through
the same path as ``picaffect predict`` on a folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..core.errors import UsageError
from ..inference import Predictor
from .outputs import output_meta, render, write_predictions

# scikit-image's bundled photographs (the rest of its data folder is test patterns and microscopy).
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png",
                  "hubble_deep_field.jpg", "moon.png")


def sample_photographs(folder: Path) -> list[Path]:
    """Copy the photographs that scikit-learn and scikit-image ship into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, Path]] = []
    try:
        import sklearn.datasets
        images = Path(sklearn.datasets.__file__).parent / "images"
        sources += [(f"sklearn_{p.name}", p) for p in sorted(images.glob("*.jpg"))]
    except ImportError:
        pass
    try:
        import skimage
        data = Path(skimage.__file__).parent / "data"
        sources += [(f"skimage_{name}", data / name) for name in SKIMAGE_PHOTOS if (data / name).is_file()]
    except ImportError:
        pass
    copies = []
    for name, path in sources:
        target = folder / name
        if not target.exists():
            shutil.copyfile(path, target)
        copies.append(target)
    return copies


def run_demo(out: Path, model: str = "default") -> Path:
    """Score the sample photographs into ``out`` (table, CSV, circumplex); returns the plot's path."""
    photos = sample_photographs(out / "photos")
    if not photos:
        raise UsageError("no sample photographs found: install the demo extras (pip install 'picaffect[demo]')")
    from ..core.plots import labelled_circumplex  # here: matplotlib comes with the demo extra, checked just above

    predictor = Predictor.from_pretrained(model)
    run = predictor.predict_files(photos)
    meta = output_meta(model, level=predictor.interval_level)
    print(render(run.rows, "table", meta), end="")
    write_predictions(run.rows, out / "predictions.csv", meta)
    plot = labelled_circumplex(run.rows, out / "circumplex.png",
                               title="picaffect: predicted feelings for the sample photographs")
    print(f"wrote {out / 'predictions.csv'} and {plot}")
    return plot
