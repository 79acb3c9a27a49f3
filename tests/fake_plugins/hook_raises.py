from mlpcore.hookspecs import hookimpl


@hookimpl
def mlpcore_backends():  # type: ignore[no-untyped-def]
    raise RuntimeError("the hook of this fake plugin exploded")
