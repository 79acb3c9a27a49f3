"""Every example in README.md and docs/*.md runs, so a page cannot drift from the code.

A page's ``python`` and ``console`` blocks run in page order, in one temporary folder per page
(a file one block saves, a later block can read), and Python blocks share one namespace.

* ``python``: executed; it must not raise.
* ``console``: each ``$ command`` (``\\``-continued lines included) runs in bash, the package's
  own scripts first on ``PATH``. Its status must be 0, or non-zero when the output shown contains
  ``error:``. The lines shown under a command are its expected output, compared with what it
  printed after folding runs of spaces and replacing every number by ``N`` (timings and versions
  vary); ``...`` stands for any text, across lines too. No lines shown: the output is not checked.

A block that must not run here (it installs or publishes software, runs a whole nox session or
benchmark, or needs a plugin the test environment lacks) is preceded by a line
``<!-- not run: REASON -->``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^(?:<!-- not run: (?P<why>[^>]+?) -->\n)?```(?P<lang>\w*)[^\n]*\n"
                   r"(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
RUN = ("python", "console")


def blocks(page: Path) -> list[tuple[str, str, str | None, int]]:
    """``(language, body, reason not run or None, line)`` of every fenced block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(m["lang"], m["body"], m["why"], text.count("\n", 0, m.start()) + 1)
            for m in BLOCK.finditer(text)]


def commands(body: str) -> list[tuple[str, list[str]]]:
    """The ``$ command`` lines of a console block, each with the output lines shown under it."""
    found: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    while lines:
        line = lines.pop(0)
        if not line.startswith("$ "):
            if found:
                found[-1][1].append(line)
            continue
        command = line[2:]
        while command.endswith("\\") and lines:
            command = command[:-1] + " " + lines.pop(0).strip()
        found.append((command, []))
    return found


def normalised(text: str) -> str:
    lines = (re.sub(r"\d+", "N", " ".join(line.split())) for line in text.strip().splitlines())
    return "\n".join(line for line in lines if line)


def matches(shown: list[str], printed: str) -> bool:
    """Whether ``printed`` is the output ``shown`` (see the module docstring): a line ``...``
    stands for any number of lines, ``...`` within a line for any text."""
    pattern = "".join(r"(?:[^\n]*\n)*?" if line == "..." else
                      ".*?".join(map(re.escape, line.split("..."))) + r"\n"
                      for line in normalised("\n".join(shown)).splitlines())
    return re.fullmatch(pattern, normalised(printed) + "\n", re.DOTALL) is not None


def run_console(body: str, where: str, folder: Path) -> None:
    env = {**os.environ, "COLUMNS": "80",  # argparse wraps help to the terminal's width
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command, shown in commands(body):
        done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        printed = done.stdout + done.stderr
        failing = any("error:" in line for line in shown)
        assert (done.returncode != 0) == failing, (
            f"{where}: `{command}` exited {done.returncode}:\n{printed[-3000:]}")
        assert not shown or matches(shown, printed), (
            f"{where}: `{command}` printed\n{printed}\nbut the page shows\n" + "\n".join(shown))


def test_every_block_runs_or_says_why_not() -> None:
    for page in PAGES:
        for lang, _, why, line in blocks(page):
            if why is not None:
                assert lang in RUN, f"{page.name}:{line}: a 'not run' note on a {lang!r} block"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem}"}
    for lang, body, why, line in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if lang not in RUN or why is not None:
            continue
        if lang == "python":
            exec(compile(body, where, "exec"), namespace)
        else:
            assert commands(body), f"{where}: a console block without a '$ ' command"
            run_console(body, where, tmp_path)


def test_the_runner_catches_drift(tmp_path: Path) -> None:
    """The checks fail on a page that no longer matches what the command prints."""
    assert matches(["Test ACC: 0.698", "..."], "Test ACC: 0.701\nSaved checkpoint: x\n")
    assert matches(["a", "...", "b", "..."], "a\nb\n") and matches(["a ... c"], "a b\nb c")
    assert not matches(["a", "...", "b"], "a\nb\nc\n")
    assert not matches(["Test ACC: 0.698"], "Test accuracy: 0.701\n")
    assert commands("$ a \\\n  --b\nout 1\n$ c\n") == [("a  --b", ["out 1"]), ("c", [])]
    with pytest.raises(AssertionError, match="exited"):
        run_console("$ mlpcore frobnicate\n", "page.md:1", tmp_path)
    with pytest.raises(AssertionError, match="but the page shows"):
        run_console("$ mlpcore --help\nusage: mlpcore [-h] NO-SUCH-WORD\n", "page.md:1", tmp_path)
