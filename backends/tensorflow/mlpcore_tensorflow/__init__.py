"""The tensorflow backend of mlpcore. Nothing is imported here, keeping plugin discovery cheap."""
