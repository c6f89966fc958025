"""Commands loaded on dispatch: the root group knows each command's name, module and
one-line summary, and imports the module (building its click command with typer) only
when that command runs or its own --help is asked for.

`reconcile --help` lists the summaries without importing any command module; the
summaries are held equal to the commands' own help by tests/test_imports.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command by reference: `module.attr` is its function or its typer.Typer group."""

    name: str
    module: str
    attr: str
    summary: str  # the first paragraph of its help (the docstring, or the Typer's help=)

    def short_help(self, limit: int) -> str:
        """What `reconcile --help` shows for it: its summary cut to `limit` as click does."""
        return TyperCommand(name=self.name, help=self.summary).get_short_help_str(limit)

    def build(self) -> Command:
        """Import the module and build the click command exactly as typer would."""
        target = getattr(importlib.import_module(self.module), self.attr)
        holder = typer.Typer(add_completion=False, rich_markup_mode=None)
        holder.callback()(_group_mode)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=self.name)
        else:
            holder.command(name=self.name)(target)
        group = typer.main.get_command(holder)
        if not isinstance(group, TyperGroup):  # typer builds a group for a callback: a bug
            raise TypeError(f"typer built {type(group).__name__} for {self.name}'s holder")
        return group.commands[self.name]


def _group_mode() -> None:
    """The holder's callback: makes typer build a group, whose one command is taken."""


class LazyCommands(MutableMapping[str, "Command"]):
    """A group's commands: the lazy ones built on first lookup, then kept."""

    def __init__(self, lazy: tuple[LazyCommand, ...]) -> None:
        self._lazy = {c.name: c for c in lazy}
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in self._lazy:
                raise KeyError(name)
            self._built[name] = self._lazy[name].build()
        return self._built[name]

    def short_help(self, name: str, limit: int) -> str:
        """The command's line in its group's --help, building it only if it is not lazy."""
        if name in self._lazy and name not in self._built:
            return self._lazy[name].short_help(limit)
        return self[name].get_short_help_str(limit)

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._built.pop(name, None)
        self._lazy.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._lazy or name in self._built

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (n for n in self._built if n not in self._lazy)

    def __len__(self) -> int:
        return len(self._lazy.keys() | self._built.keys())
