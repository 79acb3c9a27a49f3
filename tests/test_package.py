"""The package namespace: ``import mlpcore`` is light, and every public name is there on use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import mlpcore


@pytest.mark.parametrize("name", mlpcore.__all__)
def test_every_public_name_resolves_and_is_listed_by_dir(name: str) -> None:
    assert getattr(mlpcore, name) is not None
    assert name in dir(mlpcore)


def test_a_lazy_name_is_the_object_of_its_module() -> None:
    from mlpcore.model import MLP
    from mlpcore.training import fit

    assert mlpcore.MLP is MLP
    assert mlpcore.fit is fit
    assert mlpcore.training.fit is fit  # a submodule is an attribute once asked for


def test_an_unknown_name_raises_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        _ = mlpcore.no_such_thing  # type: ignore[attr-defined]
    assert not hasattr(mlpcore, "_private_missing")
    assert not hasattr(mlpcore, "no_such.module")  # not a name: no import is tried


def test_importing_a_name_from_the_package_imports_its_module_then() -> None:
    code = ("import sys\n"
            "import mlpcore\n"
            "assert 'mlpcore.model' not in sys.modules and 'numpy' not in sys.modules\n"
            "from mlpcore import MLP\n"
            "assert 'mlpcore.model' in sys.modules and 'numpy' in sys.modules\n"
            "assert 'safetensors' not in sys.modules, 'checkpoints load safetensors on use'\n"
            "print(MLP.__module__)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mlpcore.model"


def test_listing_backends_from_the_command_imports_no_progress_bar() -> None:
    """tqdm is the ``train`` command's: neither ``import mlpcore`` nor ``mlpcore backends``
    imports it (nor does ``import mlpcore`` import NumPy)."""
    code = ("import sys\n"
            "import mlpcore\n"
            "assert not {'numpy', 'tqdm'} & set(sys.modules), 'import mlpcore'\n"
            "from mlpcore.cli import main\n"
            "assert main(['backends']) == 0\n"
            "assert 'tqdm' not in sys.modules, 'mlpcore backends'\n")
    env = {**os.environ, "MLPCORE_DISABLE_PLUGINS": "torch,tensorflow"}  # no framework start-up
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False, env=env)
    assert result.returncode == 0, result.stderr
