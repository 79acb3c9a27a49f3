raise ImportError("fake plugin needs surely_missing_dependency")
