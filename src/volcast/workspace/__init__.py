"""The application layer: what volcast does for a user, apart from how it is asked (CLI, web,
report, demo). Every entry point calls this package and nothing below it for a whole flow.

- ``sources.py``: where a flow's candles come from (files or the store), as one long frame.
"""
