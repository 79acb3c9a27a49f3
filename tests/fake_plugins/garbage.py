from mlpcore.hookspecs import hookimpl


@hookimpl
def mlpcore_backends():  # type: ignore[no-untyped-def]
    return ["not a BackendEntry", 42]
