"""Every message a workflow receives is read here, in one place, so no message can fail a workflow task.

Anyone with write access to the namespace can send any JSON to any signal,
update or workflow input. A handler that trips over what arrives (a validation
error, a TypeError on a date without a zone, an OverflowError on a huge number)
fails the workflow task; the message is in history, so every retry fails again
and the case is jammed for good. So handlers take the raw JSON and this module
turns it into the contract's model, or into a refusal that names the fields
(never their values: they may be personal data).

- `@takes(Model)` on an update handler and on its validator. A refusal in the
  validator goes back to the caller and leaves no trace in history; once the
  update is accepted, an unexpected error in the handler is still answered as a
  refusal rather than failing the task.
- `@receives(Model)` on a signal handler. A signal cannot answer, so a refusal
  (or an unexpected error) is handed to the workflow's
  `_signal_refused(name, reason)`, which notes it without the message's content.
- `read(Model, raw)` for a workflow's input.

`Undecodable` is what the codec hands over for a payload it will not open
(plaintext where ciphertext is required, ciphertext bound to another workflow,
or one that fails authentication): it is refused here like any bad message.
"""

from __future__ import annotations

import decimal
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from redress.contract import REFUSED, Undecodable, describe

M = TypeVar("M", bound=BaseModel)


# Errors that bad data can provoke in our own code; anything else (the SDK's non-determinism and
# sandbox errors among them) must still fail the task, where an operator sees it.
DATA_ERRORS = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    ArithmeticError,
    AssertionError,
    RecursionError,
    ValidationError,
    decimal.InvalidOperation,
)


def refusal(reason: str) -> ApplicationError:
    """The one shape of a refusal: the caller's `Refused(reason)`, never retried."""
    return ApplicationError(reason, type=REFUSED, non_retryable=True)


def problems(model: type[M], raw: Any, root: str = "message") -> tuple[M | None, list[str]]:
    """The message as `model`, or None and why not. Never raises for any input."""
    if isinstance(raw, Undecodable):
        return None, [f"{root}: {raw.reason}"]
    if raw is None:
        return None, [f"{root}: the message is empty: send a {model.__name__} object"]
    try:
        return model.model_validate(raw), []
    except ValidationError as invalid:
        return None, describe(invalid, root)
    except DATA_ERRORS as error:  # a pathological document (nesting, sizes): refused, never a crash
        return None, [f"{root}: could not be read ({type(error).__name__})"]


def read(model: type[M], raw: Any, root: str = "message") -> M:
    """The message as `model`, or a refusal naming every bad field."""
    value, found = problems(model, raw, root)
    if value is None:
        raise refusal("; ".join(found))
    return value


def _unexpected(handler: str, error: BaseException) -> ApplicationError:
    workflow.logger.error(
        "message handler failed on its input; refused", extra={"handler": handler, "error": type(error).__name__}
    )
    return refusal(f"{handler} could not be applied ({type(error).__name__}); nothing was changed by it")


def _as_raw(function: Callable, wrapper: Callable) -> Callable:
    """Give the wrapper the handler's name and a single `raw: Any` argument, so the SDK decodes plain JSON.

    The return type is kept (resolved now, where the handler's module can see its names).
    """
    hints = typing.get_type_hints(function)
    wrapper.__name__ = function.__name__
    wrapper.__qualname__ = function.__qualname__
    wrapper.__doc__ = function.__doc__
    wrapper.__module__ = function.__module__
    wrapper.__annotations__ = {"raw": Any, "return": hints.get("return", Any)}
    return wrapper


def takes(model: type[BaseModel]) -> Callable[[Callable], Callable]:
    """For an update handler or its validator: the raw argument read as `model`, refusals raised."""

    def decorate(function: Callable) -> Callable:
        async def handle_async(self: Any, raw: Any = None) -> Any:
            message = read(model, raw)
            try:
                return await function(self, message)
            except DATA_ERRORS as error:
                raise _unexpected(function.__name__, error) from None

        def handle(self: Any, raw: Any = None) -> Any:
            message = read(model, raw)
            try:
                return function(self, message)
            except DATA_ERRORS as error:
                raise _unexpected(function.__name__, error) from None

        handler = handle_async if inspect.iscoroutinefunction(function) else handle
        return _as_raw(function, handler)

    return decorate


def receives(model: type[BaseModel], name: str | None = None) -> Callable[[Callable], Callable]:
    """For a signal handler: the raw argument read as `model`; any refusal is passed to `_signal_refused`."""

    def decorate(function: Callable) -> Callable:
        signal = name or function.__name__

        async def handler(self: Any, raw: Any = None) -> None:
            try:
                message = read(model, raw, root="signal")
                result = function(self, message)
                if inspect.isawaitable(result):
                    await result
            except ApplicationError as refused:
                if refused.type != REFUSED:
                    raise
                self._signal_refused(signal, refused.message)
            except DATA_ERRORS as error:
                self._signal_refused(signal, _unexpected(signal, error).message)

        return _as_raw(function, handler)

    return decorate
