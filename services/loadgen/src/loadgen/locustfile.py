"""Locust entry point (`python -m loadgen` passes it with -f); the logic is in locust_app."""

from loadgen.locust_app import CONFIG, ChatUser, StagedShape

__all__ = ["ChatUser"]

if CONFIG.shape == "staged":
    __all__ += ["StagedShape"]
else:
    # Locust uses any shape class it finds in this module's namespace.
    del StagedShape
