"""The SDK's vendored ``chardet``, run when something first uses it instead of at import.

aliyun-python-sdk-core vendors requests, whose ``compat`` module imports its
vendored chardet at import time (``aliyunsdkcore/vendored/requests/compat.py``).
requests uses chardet only to guess the text encoding of a response that
declares none (``Response.apparent_encoding``, ``.text``, ``.json()``); the SDK
reads ``Response.content`` (``aliyunsdkcore/http/http_response.py``), so a
report never needs it. Yet the archive carries no bytecode, and compiling and
running chardet's modules (their frequency tables) is about a third of the
SDK's import on a cold start.

``defer_vendored_chardet`` puts a stand-in module in ``sys.modules`` before the
SDK is imported: it has chardet's spec, path and name, so the import system
finds it and imports nothing; the first attribute it lacks (``detect``,
``__version__``, ...) runs chardet's real ``__init__`` in it, so from then on it
is the real module. ``importlib.util.LazyLoader`` would not do: the import
system reads ``__spec__`` of a module it finds in ``sys.modules``, and any
attribute read makes a LazyLoader module run at once (so it did on python3.9
to 3.12: chardet still ran while requests was imported).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import threading
import types
from typing import Any

VENDORED_CHARDET = "aliyunsdkcore.vendored.requests.packages.chardet"


class _DeferredModule(types.ModuleType):
    """A module whose code runs on the first lookup of a name it does not have."""

    def __getattr__(self, name: str) -> Any:
        # Only for names not found the ordinary way: __spec__, __path__, __name__ never come here.
        state = self.__dict__.get("_deferred_state")
        if state is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        with state["lock"]:
            if not state["ran"] and not state["running"]:
                spec = self.__spec__
                loader = spec.loader if spec is not None else None
                if loader is None:  # only a module that has a loader is ever deferred
                    raise AttributeError(f"module {self.__name__!r} cannot be run: it has no loader")
                state["running"] = True
                try:
                    loader.exec_module(self)
                finally:
                    state["running"] = False
                state["ran"] = True
        if name in self.__dict__:
            return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def defer_vendored_chardet(search_path: list[str] | None = None) -> bool:
    """Stand chardet in for the SDK's requests until it is used; False if there was nothing to defer
    (already imported, or this SDK vendors no chardet)."""
    if VENDORED_CHARDET in sys.modules:
        return False
    core = importlib.machinery.PathFinder.find_spec("aliyunsdkcore", search_path)
    if core is None or not core.submodule_search_locations:
        return False
    packages = [os.path.join(location, "vendored", "requests", "packages")
                for location in core.submodule_search_locations]
    spec = importlib.machinery.PathFinder.find_spec(VENDORED_CHARDET, packages)
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return False
    module = _DeferredModule(VENDORED_CHARDET)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = VENDORED_CHARDET
    module.__dict__["_deferred_state"] = {"lock": threading.RLock(), "ran": False, "running": False}
    sys.modules[VENDORED_CHARDET] = module
    return True


def is_deferred(module: types.ModuleType) -> bool:
    """True while ``module`` is a stand-in whose code has not run yet."""
    state = getattr(module, "__dict__", {}).get("_deferred_state")
    return bool(state) and not state["ran"]

