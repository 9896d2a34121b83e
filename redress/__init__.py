"""Redress for the programs around it: open and work complaint cases, and the tools to run them.

    from redress import RedressClient

    redress = await RedressClient.connect()
    await redress.submit({...})

- `redress.client`: `RedressClient` and the errors a caller handles
  (`AlreadyExists`, `NotFound`, `Refused`, `InvalidComplaint`, ...);
- `redress.contract`, `redress.customers`, `redress.crises`, `redress.desks`: the
  JSON contract of each workflow type (models, names, ids), as any language sees it
  (`redress schema` writes it as JSON Schema);
- `redress.codec`: payload encryption; `redress.codec_server`: the same over HTTP
  for the Temporal UI and plain-JSON clients;
- `redress.cli` (the `redress` command), `redress.report`, `redress.terminal`.

The engine that runs the cases (workflows/, activities/, worker.py) is not part of
this package: it runs from its checkout or its image (README, "Packaging").

The client's names are imported when first asked for, not with the package: a
workflow that uses the contract (`from redress.contract import ...`) must not pull
the client, its Temporal client and its cryptography into its sandbox, where a
second copy of cryptography's extension module aborts the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redress.client import (
        AlreadyExists,
        Erased,
        InsecureConnection,
        InvalidComplaint,
        InvalidInput,
        InvalidMessage,
        NotFound,
        RedressClient,
        RedressError,
        Refused,
    )

__all__ = [
    "AlreadyExists",
    "Erased",
    "InsecureConnection",
    "InvalidComplaint",
    "InvalidInput",
    "InvalidMessage",
    "NotFound",
    "RedressClient",
    "RedressError",
    "Refused",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from redress import client

        return getattr(client, name)
    raise AttributeError(f"module 'redress' has no attribute {name!r}")
