"""Core of the MNS callback handler: pure parsing, signature check, decisions.

Only the light names are imported here so that ``import index`` stays cheap on
a cold start; the FnF SDK and ``cryptography`` load on first use.
"""

from .errors import TaskFailed

__all__ = ["TaskFailed"]
