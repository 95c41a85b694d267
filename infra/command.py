"""How the project's one-shot commands run: the collector is told that what they imported lives until exit.

A render imports ``pulumi`` and ``pulumi_alicloud`` (hundreds of thousands of
objects) and then allocates freely. The cyclic collector would walk the whole
imported heap on each of its full collections, and once more while the
interpreter shuts down, though none of it can become garbage before exit.
``gc.freeze()`` moves it out of the collector's sight: once after the imports,
once after the command's work (so the shutdown walks nothing). Objects still
die by reference counting as before; only the walks are saved.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import NoReturn


def run_command(main: Callable[[], int]) -> NoReturn:
    """Exit with ``main()``'s status, the imported heap frozen before it runs and all of it after."""
    gc.freeze()
    status = main()
    gc.freeze()
    sys.exit(status)
