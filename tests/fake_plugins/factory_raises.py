"""Two backends that are listed fine but fail when loaded."""

from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry(name="fakebroken", factory="fake_plugins.factory_raises:make_backend"),
            BackendEntry(name="fakemisnamed", factory="fake_plugins.good_backend:FakeBackend")]


def make_backend():  # type: ignore[no-untyped-def]
    raise RuntimeError("the factory of this fake backend exploded")
