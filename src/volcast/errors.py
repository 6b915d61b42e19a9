"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into a one-line message and exit status 2, so every layer raises it with a
message that names the bad value (and the valid choices when they are few), never a traceback.
"""


def one_line(text: str, most: int = 240) -> str:
    """``text`` on one line of at most ``most`` characters: what a message quotes of what a
    server or a library said."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 3] + "..."


class VolcastError(Exception):
    """Bad input or an unusable resource; the message is shown to the user as is."""


class FetchFailed(Exception):
    """A download gave up after its retries; the message says how far it got (exit status 1)."""


class NotFound(VolcastError):
    """Something asked for does not exist (HTTP 404; exit 2 on the command line)."""
