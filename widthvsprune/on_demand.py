"""Attributes of a package imported on first use (PEP 562), so that importing the package stays light."""

import importlib
import sys


def attributes(package, table):
    """``(__getattr__, __dir__)`` for ``package``: its attributes ``table`` names (``name -> module``) are imported
    from their module on first use and kept in the package.

    Example:

    ```python
    __getattr__, __dir__ = on_demand.attributes(__name__, {"compare": "widthvsprune.analysis.compare"})
    ```
    """

    def __getattr__(name):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
