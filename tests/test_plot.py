"""History.plot: a real PNG through matplotlib's Agg renderer, and the refusals (no matplotlib,
a missing folder, an unknown suffix, nothing to plot)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore import EpochRecord, History

matplotlib = pytest.importorskip("matplotlib", reason="the plot extra is not installed")


def history(n: int = 6, valid: bool = True) -> History:
    return History([EpochRecord(epoch=e, loss=2.0 / e, train_accuracy=1 - 0.5 / e,
                                valid_accuracy=1 - 0.6 / e if valid else None,
                                valid_loss=2.2 / e if valid else None, seconds=0.1)
                    for e in range(1, n + 1)])


def pixels(path: Path) -> np.ndarray:
    from matplotlib import image

    return np.asarray(image.imread(path))  # decodes the PNG (Pillow-free: matplotlib's reader)


def test_plot_writes_a_png_that_decodes_and_shows_curves(tmp_path: Path) -> None:
    path = history().plot(tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = pixels(path)
    assert image.shape[:2] == (400, 600)  # figsize 6x4 inches at 100 dpi
    assert image.std() > 0.05  # not blank
    rgb = image[..., :3].reshape(-1, 3)
    colours = {tuple(c) for c in np.round(rgb, 1)}
    assert len(colours) > 10  # lines in several colours, not one fill
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]  # no temporary left


def test_plot_draws_only_what_was_measured(tmp_path: Path) -> None:
    # the validation curve is green; without validation no pixel is
    def green(path: Path) -> int:
        rgb = pixels(path)[..., :3]
        return int(np.sum((rgb[..., 1] > 0.4) & (rgb[..., 0] < 0.2) & (rgb[..., 2] < 0.2)))

    assert green(history().plot(tmp_path / "a.png")) > 100
    assert green(history(valid=False).plot(tmp_path / "b.png")) == 0


def test_plot_replaces_a_file_and_writes_svg(tmp_path: Path) -> None:
    path = tmp_path / "c.svg"
    path.write_text("old")
    history(1).plot(path)
    assert b"<svg" in path.read_bytes()[:1000]


def test_a_fit_history_plots(tmp_path: Path) -> None:
    trained = mlpcore.MLP(mlpcore.MLPSpec((2, 4, 2)), seed=1).fit(
        (np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32),
         np.arange(32) % 2), epochs=3)
    assert pixels(trained.plot(tmp_path / "run.png")).std() > 0.05


@pytest.mark.parametrize(("path", "match"), [
    ("missing/curves.png", "plot path 'missing/curves.png': folder 'missing' does not exist"),
    (".", "plot path '.' is a folder"),
    ("curves.xyz", r"plot path 'curves.xyz': matplotlib cannot write '.xyz' files; use one of "
                   r"\..*png"),
])
def test_bad_plot_paths_are_refused_naming_them(path: str, match: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=match):
        history().plot(path)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_history_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no epochs"):
        History().plot(tmp_path / "x.png")


def test_without_matplotlib_the_error_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(mlpcore.MissingDependencyError,
                       match=r"needs matplotlib.*pip install 'mlpcore\[plot\]'") as caught:
        history().plot(tmp_path / "x.png")
    assert isinstance(caught.value, ImportError)
    assert list(tmp_path.iterdir()) == []
