"""The torch backend of mlpcore. Nothing is imported here, keeping plugin discovery cheap."""
