from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry(name="fakefuture", factory="fake_plugins.good_backend:FakeBackend",
                         contract_version=999)]
