"""The web tests' store of the bundled sample, workspace and client, shared here."""

from tests.web.conftest import client, store, workspace

__all__ = ["client", "store", "workspace"]
