"""A module that forgot to implement the hook."""


def mlpcore_backends():  # type: ignore[no-untyped-def]  # no @hookimpl marker
    return []
