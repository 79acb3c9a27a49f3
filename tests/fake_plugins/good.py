"""A working plugin: the backend object lives in another module, imported only on first use."""

from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry(name="fakegood", factory="fake_plugins.good_backend:FakeBackend",
                         framework="numpy", framework_distributions=("numpy",),
                         install_hint="pip install mlpcore-fakegood")]
