"""``make demo``: score the sample photographs that installed packages ship.

scikit-learn's ``load_sample_images`` and scikit-image's data photographs are on
disk after a plain ``pip install``: no download, so the demo runs offline on a
fresh machine. Each photograph is copied into ``OUT/photos`` and scored through
the same path as ``picaffect predict`` on a folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .scale import SAM

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


def plot_predictions(rows: list[dict], path: Path) -> Path:
    """The pictures' predictions on the valence-arousal plane, labelled by file name."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6.2))
    for r in rows:
        if r["error"]:
            continue
        ax.scatter(r["valence"], r["arousal"], s=30)
        ax.annotate(Path(r["path"]).stem.split("_", 1)[-1], (r["valence"], r["arousal"]), fontsize=8,
                    xytext=(4, 3), textcoords="offset points")
    ax.axhline(SAM.midpoint, color="grey", lw=0.5)
    ax.axvline(SAM.midpoint, color="grey", lw=0.5)
    for x, y, text in ((2.2, 8.6, "unpleasant, activated"), (7.8, 8.6, "pleasant, activated"),
                       (2.2, 1.4, "unpleasant, calm"), (7.8, 1.4, "pleasant, calm")):
        ax.text(x, y, text, ha="center", color="grey", fontsize=8)
    ax.set(xlim=(SAM.min, SAM.max), ylim=(SAM.min, SAM.max), xlabel="valence (1 unpleasant .. 9 pleasant)",
           ylabel="arousal (1 calm .. 9 excited)", title="picaffect: predicted feelings for the sample photographs")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
