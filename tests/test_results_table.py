"""scripts/results_table.py: table 8.1 under the thesis's recipe and the reading of its ranking, from the record."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "scripts" / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(model: str, val: float, half_width: float, train: float, stopped: str = "patience",
        name: str | None = None, mean_rmse: float = 1.6, epochs: int = 40, best_epoch: int = 20,
        train_seconds: float | None = 600.0) -> dict:
    """A results.json row with the fields the thesis-recipe table reads."""
    def block(value: float) -> dict:
        return {"rmse": value, "pcc": 0.3, "ci95": {"rmse": [value - half_width, value + half_width],
                                                     "pcc": [0.2, 0.4]}}
    return {"name": name or f"{model}-thesis-bf16", "model": model, "epochs_run": epochs, "stopped": stopped,
            "best_epoch": best_epoch, "patience": 20, "train_seconds": train_seconds,
            "validation": {"pooled": block(val), "valence": block(val), "arousal": block(val)},
            "splits": {"train": {"overall": {"rmse": train}}}, "baselines": {"rmse_mean": {"pooled": mean_rmse}}}


def test_table_has_one_row_per_thesis_model_and_skips_other_recipes(table):
    results = {"runs": [run("emosepar", 1.25, 0.05, 1.2), run("vgg16", 1.4, 0.05, 1.3, train_seconds=None),
                        run("emosepar", 1.10, 0.05, 1.0, name="emosepar-modern-bf16")]}
    text = table.thesis_recipe_table(results)
    rows = text.splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| emosepar", "| vgg16"]
    assert "1.25 [1.20, 1.30]" in rows[0] and "1.65 / 1.66" in rows[0]  # ours, then the thesis's table 8.1
    assert rows[0].split(" | ")[3] == "10"  # 600 s of training, in minutes
    assert rows[1].split(" | ")[3] == "–"  # a record without the figure shows none, not zero
    assert "1.10" not in text  # the modern run is not a thesis-recipe row
    assert "no ranking yet" in table.thesis_recipe_reading(results)


def test_reading_names_the_orders_and_whether_the_intervals_separate_the_best(table):
    apart = {"runs": [run("emosepar", 1.20, 0.02, 1.30), run("vgg16", 1.50, 0.02, 1.10),
                      run("inception_v3", 1.40, 0.02, 1.25), run("xception", 1.30, 0.02, 1.28)]}
    text = table.thesis_recipe_reading(apart)
    assert "the order is emosepar, xception, inception_v3, vgg16" in text
    assert "ranks emosepar, xception, vgg16, inception_v3" in text  # table 8.1's validation RMSEs
    assert "overlaps no other model's" in text
    assert "here they are vgg16's (1.10) and emosepar's (1.30)" in text  # lowest and highest training RMSE
    assert "its highest vgg16's (1.75)" in text  # the thesis's, from its table 8.1
    assert "Not converged" not in text
    assert "is vgg16's here (+0.40) and inception_v3's in the thesis (+0.08)" in text  # 1.50 - 1.10; 1.80 - 1.72
    assert "predicting the training mean" not in text

    close = {"runs": [run("emosepar", 1.20, 0.2, 1.3), run("vgg16", 1.5, 0.02, 1.1),
                      run("inception_v3", 1.30, 0.05, 1.2, stopped="budget", mean_rmse=1.3),
                      run("xception", 1.25, 0.05, 1.2, mean_rmse=1.3)]}
    text = table.thesis_recipe_reading(close)
    assert "overlaps those of inception_v3, xception: within the bootstrap intervals these models" in text
    assert "Not converged yet (stopped on a wall-clock budget): inception_v3; its place may change." in text
    # the intervals of inception_v3 (to 1.35) and xception (to 1.30) hold the mean's 1.30; the others end below 1.6
    assert "(validation interval holding its RMSE, 1.30): inception_v3, xception." in text
    assert "Worse than predicting the training mean" not in text

    worse = {"runs": [run("emosepar", 1.20, 0.02, 1.3, mean_rmse=1.33), run("vgg16", 1.80, 0.08, 1.7, mean_rmse=1.33),
                      run("inception_v3", 1.33, 0.06, 1.2, mean_rmse=1.33),
                      run("xception", 1.26, 0.05, 1.1, mean_rmse=1.33)]}
    text = table.thesis_recipe_reading(worse)
    # vgg16's interval [1.72, 1.88] lies above 1.33: worse than the mean, not merely level with it
    assert "(validation interval wholly above its RMSE, 1.33): vgg16." in text
    assert "(validation interval holding its RMSE, 1.33): inception_v3." in text  # [1.27, 1.39]
    assert "xception" not in text.split("training mean")[-1]  # [1.21, 1.31] ends below 1.33


def test_reading_says_which_runs_hit_the_epoch_limit_still_improving(table):
    rows = [run("emosepar", 1.20, 0.02, 1.3), run("inception_v3", 1.40, 0.02, 1.25),
            run("xception", 1.30, 0.02, 1.28, stopped="epochs", epochs=200, best_epoch=150)]
    limit = {"runs": rows + [run("vgg16", 1.42, 0.02, 1.4, stopped="epochs", epochs=200, best_epoch=197)]}
    text = table.thesis_recipe_reading(limit)
    # vgg16's best epoch is within patience (20) of the limit; xception's (50 epochs before it) is not
    assert "while its test loss still improved: vgg16 (best epoch 197 of 200); more epochs might lower its RMSE." \
        in text
    assert "xception (best" not in text
    assert "Not converged" not in text  # the epoch limit is a stop the issue accepts, unlike a budget

    plateau = {"runs": rows + [run("vgg16", 1.42, 0.02, 1.4, stopped="epochs", epochs=200, best_epoch=180)]}
    assert "epoch limit" not in table.thesis_recipe_reading(plateau)

    both = {"runs": rows[:2] + [run("xception", 1.30, 0.02, 1.28, stopped="epochs", epochs=200, best_epoch=190),
                                run("vgg16", 1.42, 0.02, 1.4, stopped="epochs", epochs=200, best_epoch=197)]}
    assert ("while their test losses still improved: vgg16 (best epoch 197 of 200), xception (best epoch 190 of 200); "
            "more epochs might lower their RMSE.") in table.thesis_recipe_reading(both)


def test_reading_says_when_the_thesiss_order_holds(table):
    # validation RMSE in table 8.1's order: emosepar, xception, vgg16, inception_v3
    held = {"runs": [run("emosepar", 1.20, 0.02, 1.3), run("xception", 1.25, 0.02, 1.1),
                     run("vgg16", 1.30, 0.02, 1.4), run("inception_v3", 1.35, 0.02, 1.4)]}
    assert "on our data the order is the same." in table.thesis_recipe_reading(held)
    swapped = {"runs": held["runs"][:2] + [run("vgg16", 1.35, 0.02, 1.4), run("inception_v3", 1.30, 0.02, 1.4)]}
    assert "the order is emosepar, xception, inception_v3, vgg16." in table.thesis_recipe_reading(swapped)
