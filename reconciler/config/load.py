"""Safe YAML loading that keeps where every key and value came from.

The loader is ruamel.yaml's C parser and composer, with our own resolver and
constructor on top, so YAML semantics are pinned here rather than by whichever
ruamel version is installed:

- YAML 1.2 core schema. `no`, `on`, `yes` are strings; `true`/`false` are the
  booleans; `0755` is the decimal integer 755 (write `0o755` for octal);
  `1_000` and `2024-01-01` are strings; `~`, `null` and an empty value are null.
- Refused, each with file:line:column and a rule id, never a crash, hang or
  memory blow-up: invalid UTF-8, files over `MAX_FILE_BYTES`, nesting deeper
  than `MAX_DEPTH`, aliases adding more than `MAX_ALIAS_NODES` nodes (an alias
  bomb is sized without being expanded), duplicate keys (also `a` vs `"a"`),
  any tag but the core ones, non-string keys, `<<` merge keys, and more than
  one document per file.

Nesting is checked before the C composer runs, since it recurses in C and
crashes on pathological depth (100,000 levels): a cheap scan of the text flags
files that may be deep, and only those are checked exactly from the parser's
events (iterative, so safe at any depth), which stop at the first node too deep.

The result is a `Doc`: plain Python values (dict, list, str, int, float, bool,
None) and a parallel tree of `Loc` spans, so later stages can say exactly which
line set a value without carrying ruamel's node types around.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import BaseResolver
from ruamel.yaml.tag import Tag

from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.secretscan import clip, quoted

# Under the repo edge's cap on a whole repo (reconciler/repo/files.py MAX_REPO_BYTES, 20 MiB).
MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 32
MAX_ALIAS_NODES: Final = 100_000
# A file whose text might nest deeper than this (open brackets, or a line's leading run of
# indentation and dashes) is checked exactly from parser events before the C composer
# sees it. The composer crashes somewhere past 20,000 levels; text under this mark cannot
# nest past a few hundred, and real files stay far below it, so they pay no extra parse.
_PRESCAN_DEPTH: Final = 200

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = f"{_CORE}map", f"{_CORE}seq"
_PLAIN = "?plain"  # our own marker: an untagged plain scalar, resolved by `plain_value`
_PLAIN_TAG, _STR_TAG, _MAP_TAG, _SEQ_TAG = (Tag(suffix=t) for t in (_PLAIN, _STR, _MAP, _SEQ))
_SCALAR_TAGS: Final = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _PLAIN})

_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES: Final = frozenset({"true", "True", "TRUE"})
_FALSES: Final = frozenset({"false", "False", "FALSE"})
_INT_RE: Final = re.compile(r"[-+]?[0-9]+")
_OCT_RE: Final = re.compile(r"0o[0-7]+")
_HEX_RE: Final = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_RE: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF_RE: Final = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN_RE: Final = re.compile(r"\.(nan|NaN|NAN)")
_BRACKETS_RE: Final = re.compile(r"[\[\]{}]")
_DEEP_LINE_RE: Final = re.compile(rf"^[ \t?:-]{{{_PRESCAN_DEPTH},}}", re.MULTILINE)


class _CoreResolver(BaseResolver):
    """Tags plain scalars `?plain` so that we, not ruamel, decide what they mean."""

    def __init__(self, version: Any = None, loader: Any = None, loadumper: Any = None) -> None:
        BaseResolver.__init__(self, loadumper=loadumper)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Tag:
        # Shared Tag objects: ruamel's Node would otherwise build one per node.
        if kind is ScalarNode:
            return _PLAIN_TAG if implicit[0] else _STR_TAG
        return _MAP_TAG if kind is MappingNode else _SEQ_TAG

    @property
    def processing_version(self) -> tuple[int, int]:
        return (1, 2)


@dataclass(slots=True)
class Loc:
    """Where a value sits, and where each of its children sits (maps and lists)."""

    span: SourceSpan
    kids: dict[str | int, Loc] | None = None

    def find(self, path: tuple[str | int, ...]) -> SourceSpan:
        """The span of the deepest node along `path` (the parent when a key is missing)."""
        loc = self
        for part in path:
            if loc.kids is None or part not in loc.kids:
                break
            loc = loc.kids[part]
        return loc.span


@dataclass(frozen=True, slots=True)
class Doc:
    """One loaded YAML file: plain values plus their locations."""

    file: str
    value: Any
    loc: Loc


def plain_value(text: str) -> Any:
    """Resolve an untagged plain scalar by the YAML 1.2 core schema."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    if _INT_RE.fullmatch(text):
        return int(text, 10)
    if _OCT_RE.fullmatch(text):
        return int(text[2:], 8)
    if _HEX_RE.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    if _INF_RE.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN_RE.fullmatch(text):
        return math.nan
    return text


_EXPECT: Final = {_INT: int, _FLOAT: float, _BOOL: bool, _NULL: type(None)}


class _Builder:
    """Turns a composed node graph into plain values and `Loc`s, enforcing the limits."""

    def __init__(self, file: str) -> None:
        self.file = file

    def span(self, node: Node) -> SourceSpan:
        mark = node.start_mark
        return SourceSpan(self.file, mark.line + 1, mark.column + 1)

    def error(self, node: Node, rule: str, message: str) -> ConfigError:
        return ConfigError(self.span(node), rule, message)

    def check_aliases(self, root: Node) -> None:
        """Refuse aliases that add over MAX_ALIAS_NODES nodes, sized without expanding them.

        Each distinct node is sized once (memoized by identity), so a bomb of 10^100
        nodes costs a walk of its few written nodes. The nodes aliases add are the
        expanded size less the distinct nodes; a subtree whose size passes the
        distinct nodes seen so far plus the budget is already over it, and is named.
        """
        sizes: dict[int, int] = {}
        stack: list[tuple[Node, bool]] = [(root, False)]
        active: set[int] = set()
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                active.discard(key)
                kids = _children(node)
                sizes[key] = 1 + sum(sizes[id(k)] for k in kids)
                if sizes[key] > len(sizes) + MAX_ALIAS_NODES:
                    raise self.alias_bomb(node, sizes[key])
                continue
            if key in sizes:
                continue
            if key in active:
                raise self.error(node, "yaml.alias-budget", "an alias refers to itself")
            active.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node) if id(k) not in sizes)
        if sizes[id(root)] > len(sizes) + MAX_ALIAS_NODES:
            raise self.alias_bomb(root, sizes[id(root)])

    def bad_tag(self, node: Node, tag: str) -> ConfigError:
        return self.error(
            node,
            "yaml.tag",
            f"tag {_short_tag(tag)} is not allowed; only the YAML 1.2 core tags are (!!str,"
            " !!int, !!float, !!bool, !!null, !!map, !!seq): remove it",
        )

    def alias_bomb(self, node: Node, size: int) -> ConfigError:
        return self.error(
            node,
            "yaml.alias-budget",
            f"aliases expand this value to {_count(size)} nodes, over the budget of "
            f"{MAX_ALIAS_NODES:,} nodes added by aliases (an alias bomb?); write values out",
        )

    def build(self, node: Node, depth: int) -> tuple[Any, Loc]:
        if depth > MAX_DEPTH:
            raise self.error(
                node,
                "yaml.too-deep",
                f"values nest deeper than {MAX_DEPTH} levels; flatten this value",
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node), Loc(self.span(node))
        if isinstance(node, SequenceNode):
            if _tag(node) != _SEQ:
                raise self.bad_tag(node, _tag(node))
            items: list[Any] = []
            kids: dict[str | int, Loc] = {}
            for i, item in enumerate(node.value):
                value, loc = self.build(item, depth + 1)
                items.append(value)
                kids[i] = loc
            return items, Loc(self.span(node), kids)
        if isinstance(node, MappingNode):
            return self.mapping(node, depth)
        raise self.error(node, "yaml.syntax", "unexpected node")  # pragma: no cover

    def mapping(self, node: MappingNode, depth: int) -> tuple[dict[str, Any], Loc]:
        if _tag(node) != _MAP:
            raise self.bad_tag(node, _tag(node))
        out: dict[str, Any] = {}
        kids: dict[str | int, Loc] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.error(key_node, "yaml.key-type", "a mapping key must be a string")
            key = self.scalar(key_node)
            if key == "<<" and _tag(key_node) == _PLAIN:
                raise self.error(
                    key_node, "yaml.merge-key", "'<<' merge keys are not supported; use layers"
                )
            if not isinstance(key, str):
                raise self.error(
                    key_node,
                    "yaml.key-type",
                    f"key {quoted(key_node.value)} is {_yaml_type(key)}, not a string; quote it",
                )
            if key in out:
                first = kids[key].span
                raise self.error(
                    key_node,
                    "yaml.duplicate-key",
                    f"duplicate key {quoted(key)} (first at line {first.line})",
                )
            value, loc = self.build(value_node, depth + 1)
            out[key] = value
            loc.span = self.span(key_node)
            kids[key] = loc
        return out, Loc(self.span(node), kids)

    def scalar(self, node: ScalarNode) -> Any:
        tag = _tag(node)
        text: str = node.value
        if tag == _PLAIN:
            return plain_value(text)
        if tag == _STR:
            return text
        if tag not in _SCALAR_TAGS:
            raise self.bad_tag(node, tag)
        value = plain_value(text)
        if type(value) is not _EXPECT[tag]:
            raise self.error(
                node, "yaml.tag", f"{quoted(text)} is not a valid {_short_tag(tag)}; remove the tag"
            )
        return value


def _tag(node: Node) -> str:
    """The node's tag; the fast path skips ruamel's URI decoding for resolver-made tags."""
    ctag = node.ctag
    if ctag.handle is None:
        return str(ctag.suffix)
    return str(ctag.trval)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _short_tag(tag: str) -> str:
    """`tag:yaml.org,2002:binary` as the file likely spelled it: `!!binary`."""
    return clip(f"!!{tag.removeprefix(_CORE)}" if tag.startswith(_CORE) else tag)


def _codepoint(char: int | str) -> int:
    return char if isinstance(char, int) else ord(char[:1] or "\0")


def _count(n: int) -> str:
    """A node count for a message; a bomb's can have hundreds of digits."""
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number"}.get(type(value), "a value")


def _maybe_deep(text: str) -> bool:
    """Cheap and conservative: can this text nest deeper than MAX_DEPTH at all?"""
    depth = 0
    for m in _BRACKETS_RE.finditer(text):
        depth += 1 if m.group() in "[{" else -1
        if depth > _PRESCAN_DEPTH:
            return True
    return _DEEP_LINE_RE.search(text) is not None


def _check_depth(file: str, text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH from the parser's events, before composing.

    The event parser keeps its stack on the heap, so any depth is safe here;
    the scan stops at the first collection too deep. A syntax error is left to
    the composer, which reports it (it never gets deeper than the scan did).
    """
    depth = 0
    try:
        for event in YAML(typ="safe", pure=False).parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH + 1:
                    mark = event.start_mark
                    raise ConfigError(
                        SourceSpan(file, mark.line + 1, mark.column + 1),
                        "yaml.too-deep",
                        f"values nest deeper than {MAX_DEPTH} levels; flatten this value",
                    )
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        return


def decode(file: str, data: bytes) -> str:
    """UTF-8 text of a config file (a BOM is dropped); anything else is refused."""
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            SourceSpan(file, 1, 1),
            "yaml.too-large",
            f"{len(data)} bytes is over the {MAX_FILE_BYTES}-byte limit for one file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            SourceSpan(file, line, column),
            "yaml.encoding",
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8; save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")


def load_yaml(file: str, data: bytes) -> Doc:
    """Load one YAML file safely; raise `ConfigError` with its location on any refusal."""
    text = decode(file, data)
    if _maybe_deep(text):
        _check_depth(file, text)
    yaml = YAML(typ="safe", pure=False)
    yaml.Resolver = _CoreResolver
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        multi = "single document" in f"{exc.context} {exc.problem}"
        rule = "yaml.multi-document" if multi else "yaml.syntax"
        if multi:
            problem = "a config file holds exactly one YAML document; remove the '---'"
        raise ConfigError(SourceSpan(file, line, col), rule, clip(problem, 200)) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            SourceSpan(file, line, column),
            "yaml.syntax",
            f"character U+{_codepoint(exc.character):04X}: {exc.reason}; remove it, or write"
            " it as an escape in a double-quoted string",
        ) from None
    except YAMLError as exc:
        raise ConfigError(SourceSpan(file, 1, 1), "yaml.syntax", clip(str(exc), 200)) from None
    except RecursionError:
        raise ConfigError(
            SourceSpan(file, 1, 1), "yaml.too-deep", "values nest too deeply"
        ) from None
    if root is None:
        return Doc(file, None, Loc(SourceSpan(file, 1, 1)))
    builder = _Builder(file)
    # Only a document with an alias can expand; sizing costs a walk, so skip it otherwise.
    if "*" in text:
        builder.check_aliases(root)
    value, loc = builder.build(root, 0)
    return Doc(file, value, loc)
