from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry(name="fakemissing", factory="surely_not_installed_pkg.backend:Backend",
                         framework="surely_not_installed_pkg",
                         install_hint="pip install mlpcore-surely-not-installed")]
