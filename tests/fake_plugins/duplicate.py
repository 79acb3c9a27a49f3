from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry(name="fakegood", factory="fake_plugins.good_backend:FakeBackend")]
