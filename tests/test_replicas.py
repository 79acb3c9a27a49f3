"""Data-parallel fit over several devices of one process (``DataParallel(devices=...)``,
capability ``local_data_parallel``): the argument checks in this process, then TensorFlow runs in
fresh processes that first split the CPU into two logical devices (TensorFlow allows it only
before its first op): the conformance check, fit's policies, ``mlpcore train --devices`` and the
example of docs/distributed.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore.distributed import DataParallel

ROOT = Path(__file__).resolve().parent.parent
TWO_CPUS = ("import tensorflow as tf\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(\n"
            "    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n")


def _data(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 4, n)


def _two_cpus(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh Python whose TensorFlow has the logical devices /CPU:0 and /CPU:1."""
    return subprocess.run([sys.executable, "-c", TWO_CPUS + code], capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.parametrize("devices, error, message", [
    ("gpu:0,gpu:1", TypeError, "devices must be a sequence of device names"),
    (("gpu:0", 1), TypeError, "devices must be a sequence of device names"),
    (("gpu:0",), ValueError, "devices names one device, 'gpu:0': .* needs at least two")])
def test_data_parallel_refuses_bad_devices(devices: object, error: type[Exception],
                                           message: str) -> None:
    with pytest.raises(error, match=message):
        DataParallel(devices=devices)  # type: ignore[arg-type]


def test_data_parallel_keeps_the_devices_as_a_tuple() -> None:
    assert DataParallel(devices=["gpu:0", "gpu:1"]).devices == ("gpu:0", "gpu:1")
    assert DataParallel().devices == ()


def test_a_backend_without_the_capability_refuses_devices() -> None:
    model = mlpcore.MLP(mlpcore.MLPSpec((6, 4)), backend="numpy", seed=1)
    with pytest.raises(ValueError, match="backend 'numpy' cannot share a batch over several "
                                         r"devices .*'local_data_parallel'"):
        mlpcore.fit(model, _data(), epochs=1,
                    data_parallel=DataParallel(devices=("cpu:0", "cpu:1")))


def test_a_device_the_backend_lacks_is_a_device_error_listing_its_devices() -> None:
    pytest.importorskip("tensorflow")
    model = mlpcore.MLP(mlpcore.MLPSpec((6, 4)), backend="tensorflow", seed=1)
    with pytest.raises(mlpcore.DeviceError, match=r"device 'cpu:9' \(/CPU:9\) is not available "
                                                  r"to backend 'tensorflow' now; devices "
                                                  r"available .*: /CPU:0"):
        mlpcore.fit(model, _data(), epochs=1,
                    data_parallel=DataParallel(devices=("cpu:0", "cpu:9")))


def test_the_cli_refuses_devices_with_workers_or_one_device(
        capsys: pytest.CaptureFixture[str]) -> None:
    from mlpcore.cli import main

    assert main(["train", "--backend", "numpy", "--devices", "cpu:0,cpu:1",
                 "--workers", "2"]) == 1
    assert "--devices shares each batch over one process's devices, --workers over several " \
           "processes: give one of them" in capsys.readouterr().err
    assert main(["train", "--backend", "numpy", "--devices", "cpu:0,cpu:1"]) == 1
    assert "backend 'numpy' cannot share a batch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--devices", "gpu:0"])
    assert "expected two or more comma-separated device names" in capsys.readouterr().err


def test_the_conformance_check_runs_on_two_logical_cpus() -> None:
    """The suite's check runs, not skips, for TensorFlow given two CPU devices."""
    pytest.importorskip("tensorflow")
    run = _two_cpus("import sys, pytest\n"
                    "sys.exit(pytest.main(['--pyargs', 'mlpcore_conformance', '-q', '-rs', "
                    "'-p', 'no:cacheprovider', '--mlpcore-backend', 'tensorflow', "
                    "'-k', 'two_devices_of_one_process']))\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b1 passed\b", run.stdout) and "skipped" not in run.stdout, run.stdout


FIT = """
import numpy as np, mlpcore
from mlpcore.data import Rows
from mlpcore.distributed import DataParallel, World

backend = mlpcore.get_backend('tensorflow')
assert backend.devices() == ['/CPU:0', '/CPU:1'], backend.devices()
rng = np.random.default_rng(0)
x, y = rng.standard_normal((37, 6)), rng.integers(0, 4, 37)
spec = mlpcore.MLPSpec((6, 8, 8, 4), activation='relu', dropout=0.3)

def run(devices, **options):
    model = mlpcore.MLP(spec, backend='tensorflow', seed=3, dtype='float64')
    data = (Rows(x), y) if options.pop('streamed', False) else (x, y)
    history = mlpcore.fit(model, data, epochs=2, batch_size=8, seed=5, train_accuracy=False,
                          data_parallel=DataParallel(devices=devices) if devices else False,
                          **options)
    return history.loss, model.variables

for options in ({'optimizer': mlpcore.Adam(0.01)}, {'method': 'manual', 'steps_per_call': 2},
                {'method': 'optimizer'}, {'compiled': True}, {'streamed': True}):
    want_loss, want = run((), **dict(options))
    loss, got = run(('cpu:0', '/CPU:1'), **dict(options))
    assert np.allclose(loss, want_loss, rtol=1e-12, atol=0), (options, loss, want_loss)
    for name in want:
        assert np.allclose(got[name], want[name], rtol=1e-12, atol=1e-14), (options, name)

def refused(message, devices=('cpu:0', 'cpu:1'), **options):
    model = mlpcore.MLP(spec, backend='tensorflow', seed=3)
    try:
        mlpcore.fit(model, (x, y), epochs=1, data_parallel=DataParallel(devices=devices),
                    **options)
    except (ValueError, mlpcore.DeviceError) as error:
        assert message in str(error), str(error)
    else:
        raise AssertionError(f'not refused: {message}')

refused('batch_size 9 is not a multiple of the 2 devices of data_parallel', batch_size=9)
refused("dropout_mode 'native'", dropout_mode='native')
refused('name the same device more than once (/CPU:0, /CPU:0)', devices=('cpu', '/CPU:0'))
type(backend).world = lambda self, timeout: World(1, 2)
refused('devices= shares each batch over this process\\'s devices, but this process is rank 1 '
        'of 2 workers')
print('ok')
"""


def test_fit_on_two_logical_cpus_makes_the_updates_of_one_and_refuses_what_it_cannot() -> None:
    """float64, so that only the order of the sums differs: Adam, manual backprop with chunks,
    Keras's optimizer, XLA and streamed rows; a 37-row epoch in batches of 8 ends with a
    5-row batch shared 2/3, its masks sliced by row."""
    pytest.importorskip("tensorflow")
    run = _two_cpus(FIT)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr


def test_mlpcore_train_devices_on_two_logical_cpus(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    run = _two_cpus("from mlpcore.cli import main\n"
                    "raise SystemExit(main(['train', '--backend', 'tensorflow', '--devices', "
                    "'cpu:0,cpu:1', '--epochs', '1', '--sizes', '784,16,10', '--no-progress', "
                    f"'--save', {str(tmp_path / 'run.safetensors')!r}]))\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "batches shared over cpu:0,cpu:1" in run.stdout and "Test ACC:" in run.stdout
    assert (tmp_path / "run.safetensors").is_file()


def test_the_example_of_docs_distributed_runs_on_two_logical_cpus() -> None:
    """The page's block that splits the CPU (marked not run there) runs in a fresh process."""
    pytest.importorskip("tensorflow")
    page = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
    section = page.split("## Several devices in one process (TensorFlow)")[1].split("\n## ")[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None and "set_logical_device_configuration" in block[1]
    run = subprocess.run([sys.executable, "-c", block[1]], capture_output=True, text=True,
                         timeout=300, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stdout + run.stderr
    devices, difference = run.stdout.strip().splitlines()[-2:]
    assert devices == "['/CPU:0', '/CPU:1']"
    assert float(difference) < 1e-5
