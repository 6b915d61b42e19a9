"""``python -m volcast.cli``: the same as the ``volcast`` command."""

from volcast.cli import main

main()
