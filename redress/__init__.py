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
this package: it runs from its checkout or its image (docs/architecture.md).
"""

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
