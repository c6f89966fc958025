"""Events and commands <-> JSON records, for the journal; secret values are refused, not hidden.

A record is `{"type": "BoxFailed", "agent": ..., ...}`: the class name and the
fields as JSON. Decoding builds the frozen dataclass again, so its invariants
are checked once more. Anything that is not plain data (a `SecretValues`, a
model, an object with a `str()` that might leak) is refused with
`RecordRefused` before a byte is written.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from typing import Final, TypeVar

from pydantic import TypeAdapter, ValidationError

from reconciler.rollout.commands import COMMAND_TYPES, Command
from reconciler.rollout.events import EVENT_TYPES, Event

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject = dict[str, JSONValue]

EVENTS: Final = {t.__name__: t for t in EVENT_TYPES}
COMMANDS: Final = {t.__name__: t for t in COMMAND_TYPES}
T = TypeVar("T", Event, Command)


class RecordRefused(TypeError):
    """A value that must not go to the journal (not plain data, or a secret holder)."""


def check_plain(value: object, where: str = "record") -> None:
    """Refuse anything but JSON-able plain data (str, int, float, bool, None, lists, maps).

    Raises:
        RecordRefused: naming where the value sits and its type, never its content.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordRefused(f"{where}: keys must be str, got {type(key).__name__}")
            check_plain(item, f"{where}.{key}")
        return
    raise RecordRefused(
        f"{where}: a {type(value).__name__} is not plain data and is never journaled"
        " (store a name or a fingerprint instead)"
    )


def _check_fields(obj: object, where: str) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _check_fields(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, tuple):
        for i, item in enumerate(obj):
            _check_fields(item, f"{where}[{i}]")
    elif not isinstance(obj, enum.Enum):
        check_plain(obj, where)


_EVENT_ADAPTERS: dict[str, TypeAdapter[Event]] = {}
_COMMAND_ADAPTERS: dict[str, TypeAdapter[Command]] = {}


def _adapter(cls: type[T], cache: dict[str, TypeAdapter[T]]) -> TypeAdapter[T]:
    """pydantic's (de)serialiser of one class, built once (building one takes milliseconds)."""
    adapter = cache.get(cls.__name__)
    if adapter is None:
        adapter = cache[cls.__name__] = TypeAdapter(cls)
    return adapter


def to_record(obj: Event | Command) -> JSONObject:
    """An event or command as a JSON object with its `type`.

    Raises:
        RecordRefused: a field holds something other than plain data.
    """
    kind = type(obj).__name__
    if EVENTS.get(kind) is not type(obj) and COMMANDS.get(kind) is not type(obj):
        raise RecordRefused(f"{kind} is not a rollout event or command")
    _check_fields(obj, kind)
    body: JSONObject = (
        _adapter(type(obj), _EVENT_ADAPTERS).dump_python(obj, mode="json")
        if isinstance(obj, Event)
        else _adapter(type(obj), _COMMAND_ADAPTERS).dump_python(obj, mode="json")
    )
    return {"type": kind, **body}


def _from_record(
    data: Mapping[str, JSONValue],
    table: Mapping[str, type[T]],
    cache: dict[str, TypeAdapter[T]],
    what: str,
) -> T:
    kind = data.get("type")
    cls = table.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"not {what} record: type {kind!r}")
    body = {k: v for k, v in data.items() if k != "type"}
    try:
        return _adapter(cls, cache).validate_python(body)
    except ValidationError as exc:
        raise ValueError(f"bad {kind} record: {exc.errors()[0]['msg']}") from None
    except TypeError as exc:  # an invariant the dataclass checks itself
        raise ValueError(f"bad {kind} record: {exc}") from None


def event_from_record(data: Mapping[str, JSONValue]) -> Event:
    """The event a record holds.

    Raises:
        ValueError: not an event record, or its fields are wrong.
    """
    return _from_record(data, EVENTS, _EVENT_ADAPTERS, "an event")


def command_from_record(data: Mapping[str, JSONValue]) -> Command:
    """The command a record holds.

    Raises:
        ValueError: not a command record, or its fields are wrong.
    """
    return _from_record(data, COMMANDS, _COMMAND_ADAPTERS, "a command")


def dumps(value: JSONValue) -> str:
    """Canonical JSON text of plain data (sorted keys, no spaces)."""
    check_plain(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
