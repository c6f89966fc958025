"""Safe loading: hostile YAML is refused with file, line and rule; never a crash or blow-up."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import load
from reconciler.config.errors import ConfigError
from reconciler.config.load import MAX_ALIAS_NODES, MAX_DEPTH, load_yaml, plain_value

SCALARS = Path(__file__).resolve().parents[1] / "cases" / "config" / "yaml12-scalars.json"


def refused(text: str | bytes) -> ConfigError:
    """The ConfigError that loading `text` as f.yaml raises."""
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(ConfigError) as err:
        load_yaml("f.yaml", data)
    return err.value


def billion_laughs(levels: int, width: int = 10) -> str:
    """An alias bomb of width**levels nodes in a few hundred bytes."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# A child process: load each input under an address-space limit, print one JSON line each.
CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from reconciler.config.errors import ConfigError
    from reconciler.config.load import load_yaml
    for name, text in json.load(sys.stdin).items():
        try:
            load_yaml(name, text.encode())
            print(json.dumps([name, "loaded"]))
        except ConfigError as exc:
            print(json.dumps([name, exc.rule, exc.where.line]))
        sys.stdout.flush()
    """
)


def run_limited(inputs: dict[str, str]) -> dict[str, list[Any]]:
    """Load inputs in a child limited to 1 GiB of address space; its verdict per input."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-2000:]}"
    assert "MemoryError" not in done.stderr
    return {row[0]: row[1:] for row in map(json.loads, done.stdout.splitlines())}


class TestHostileInputInAChild:
    """Inputs that would crash or exhaust a naive loader, each run under RLIMIT_AS = 1 GiB."""

    def test_alias_bomb_of_10_to_the_9_nodes_is_refused_not_expanded(self) -> None:
        """A billion-laughs bomb is refused as yaml.alias-budget, with no MemoryError."""
        verdict = run_limited(
            {"bomb.yaml": billion_laughs(9), "wide.yaml": billion_laughs(3, 1000)}
        )
        assert verdict["bomb.yaml"][0] == "yaml.alias-budget"
        assert verdict["wide.yaml"][0] == "yaml.alias-budget"

    def test_100000_levels_of_nesting_are_refused_not_a_segfault(self) -> None:
        """Flow lists, flow maps and compact block lists 100,000 deep: yaml.too-deep."""
        n = 100_000
        verdict = run_limited(
            {
                "flow.yaml": "a: " + "[" * n + "]" * n + "\n",
                "flowmap.yaml": "a: " + "{a: " * n + "}" * n + "\n",
                "block.yaml": "a:\n  " + "- " * n + "x\n",
                "unclosed.yaml": "a: " + "[" * n + "\n",
            }
        )
        assert verdict == {
            "flow.yaml": ["yaml.too-deep", 1],
            "flowmap.yaml": ["yaml.too-deep", 1],
            "block.yaml": ["yaml.too-deep", 2],
            "unclosed.yaml": ["yaml.too-deep", 1],
        }


class TestAliases:
    def test_bomb_is_refused_at_the_first_value_over_budget(self) -> None:
        """The error names the anchored value whose expansion passes the budget."""
        err = refused(billion_laughs(9))
        assert err.rule == "yaml.alias-budget"
        assert (err.where.file, err.where.line) == ("f.yaml", 5)
        assert "alias bomb" in err.message

    def test_modest_aliases_are_expanded(self) -> None:
        """Aliases within the budget load as ordinary copies of the anchored value."""
        doc = load_yaml("f.yaml", b"a: &x {k: [1, 2]}\nb: *x\nc: [*x, *x]\n")
        assert doc.value == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "c": [{"k": [1, 2]}] * 2}

    def test_budget_counts_only_nodes_added_by_aliases(self) -> None:
        """A bomb just under the budget loads; one just over it is refused."""

        def copies(n: int) -> bytes:
            """A 1,001-node list, then n aliases to it: n * 1,001 nodes added."""
            anchor = "a: &a [" + ", ".join(["x"] * 1000) + "]\n"
            return (anchor + "b: [" + ", ".join(["*a"] * n) + "]\n").encode()

        assert 99 * 1001 < MAX_ALIAS_NODES < 100 * 1001
        assert len(load_yaml("f.yaml", copies(99)).value["b"]) == 99
        assert refused(copies(100)).rule == "yaml.alias-budget"

    def test_self_referencing_alias_is_refused(self) -> None:
        """An alias to the collection that holds it is a cycle, not a value."""
        err = refused("a: &a [1, *a]\n")
        assert (err.rule, err.where.line) == ("yaml.alias-budget", 1)


class TestDepth:
    def test_block_nesting_past_the_limit_is_refused_at_its_line(self) -> None:
        """MAX_DEPTH + 1 levels of indented maps: refused at the first line too deep."""
        text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * 40 + "v: 1\n"
        err = refused(text)
        assert (err.rule, err.where.line) == ("yaml.too-deep", MAX_DEPTH + 2)

    def test_nesting_at_the_limit_loads(self) -> None:
        """A value exactly MAX_DEPTH levels deep is fine."""
        text = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
        assert load_yaml("f.yaml", text.encode()).value is not None

    def test_brackets_and_dashes_inside_strings_are_not_nesting(self) -> None:
        """The cheap prescan may suspect a prompt full of brackets; the exact check clears it."""
        text = (
            "prompt: |\n  "
            + "[" * 500
            + "\n  "
            + "-" * 300
            + "\nquoted: '"
            + "{" * 300
            + "'\n"
            + "# "
            + "[" * 300
            + "\n"
        )
        doc = load_yaml("f.yaml", text.encode())
        assert doc.value["prompt"].startswith("[" * 500)
        assert doc.value["quoted"] == "{" * 300

    def test_syntax_error_inside_deep_but_allowed_text_is_a_syntax_error(self) -> None:
        """When the exact check meets bad YAML, the composer reports it as yaml.syntax."""
        text = "prompt: '" + "[" * 300 + "\nbad: [1, 2\n"
        assert refused(text).rule == "yaml.syntax"


class TestKeys:
    @pytest.mark.parametrize(
        ("text", "line"),
        [
            ("a: 1\na: 2\n", 2),
            ('a: 1\n"a": 2\n', 2),
            ("a: 1\n'a': 2\n", 2),
            ("m:\n  x: 1\n  y: 2\n  x: 3\n", 4),
            ("- {k: 1, k: 2}\n", 1),
        ],
        ids=["plain", "double-quoted", "single-quoted", "nested", "flow"],
    )
    def test_duplicate_keys_are_refused_also_after_unquoting(self, text: str, line: int) -> None:
        """The same key twice in a map, however it is quoted, is yaml.duplicate-key."""
        err = refused(text)
        assert (err.rule, err.where.line) == ("yaml.duplicate-key", line)

    @pytest.mark.parametrize(
        "text",
        [
            "1: a\n",
            "1.5: a\n",
            "true: a\n",
            "~: a\n",
            "null: a\n",
            "[a, b]: c\n",
            "? {a: 1}\n: b\n",
        ],
        ids=["int", "float", "bool", "tilde", "null", "list", "map"],
    )
    def test_non_string_keys_are_refused(self, text: str) -> None:
        """Keys that YAML 1.2 reads as numbers, booleans, null or collections: yaml.key-type."""
        assert refused(text).rule == "yaml.key-type"

    def test_yaml_1_1_booleans_are_string_keys(self) -> None:
        """`no:`, `on:` and `yes:` are plain string keys under YAML 1.2."""
        assert load_yaml("f.yaml", b"no: 1\non: 2\nyes: 3\n").value == {"no": 1, "on": 2, "yes": 3}

    def test_quoted_number_key_is_a_string(self) -> None:
        """Quoting a numeric key makes it the string it looks like."""
        assert load_yaml("f.yaml", b'"8080": http\n').value == {"8080": "http"}

    def test_merge_key_is_refused(self) -> None:
        """`<<` is refused (layers do that job), while a quoted "<<" is an ordinary key."""
        assert refused("a: &a {x: 1}\nb:\n  <<: *a\n").rule == "yaml.merge-key"
        assert load_yaml("f.yaml", b'"<<": 1\n').value == {"<<": 1}


class TestTags:
    @pytest.mark.parametrize(
        "text",
        [
            "a: !!python/object/apply:os.system [echo]\n",
            "a: !!python/name:os.system\n",
            "a: !custom x\n",
            "a: !env HOME\n",
            "a: !!binary aGk=\n",
            "a: !!timestamp 2024-01-01\n",
            "a: !!set {x: null}\n",
            "a: !!omap [x: 1]\n",
            "a: !<tag:example.com,2024:thing> x\n",
            "a: !local [1]\n",
            "a: !local {b: 1}\n",
        ],
    )
    def test_any_non_core_tag_is_refused(self, text: str) -> None:
        """Every tag but the YAML 1.2 core ones, on scalars and collections: yaml.tag."""
        err = refused(text)
        assert (err.rule, err.where.line, err.where.column) == ("yaml.tag", 1, 4)

    def test_core_tags_are_allowed_and_checked(self) -> None:
        """!!str, !!int, !!float, !!bool, !!null, !!map, !!seq mean what they say."""
        text = "a: !!str 123\nb: !!int 7\nc: !!float 1.5\nd: !!bool true\ne: !!null null\n"
        text += "f: !!map {x: 1}\ng: !!seq [1]\n"
        value = load_yaml("f.yaml", text.encode()).value
        assert value == {
            "a": "123",
            "b": 7,
            "c": 1.5,
            "d": True,
            "e": None,
            "f": {"x": 1},
            "g": [1],
        }
        assert refused("a: !!int seven\n").rule == "yaml.tag"


class TestBytes:
    def test_non_utf8_is_refused_at_the_bad_byte(self) -> None:
        """Latin-1 bytes are yaml.encoding at the line and column of the first bad byte."""
        err = refused("a: 1\nb: caf\u00e9\n".encode("latin-1"))
        assert (err.rule, err.where.line, err.where.column) == ("yaml.encoding", 2, 7)

    def test_utf16_is_refused(self) -> None:
        """A UTF-16 file (with its BOM) is not UTF-8."""
        assert refused("a: 1\n".encode("utf-16")).rule == "yaml.encoding"

    def test_utf8_bom_is_accepted(self) -> None:
        """A UTF-8 byte-order mark is dropped."""
        assert load_yaml("f.yaml", b"\xef\xbb\xbfa: 1\n").value == {"a": 1}

    def test_control_character_is_a_one_line_syntax_error(self) -> None:
        """A NUL byte is yaml.syntax at its own line and column, in a one-line message."""
        err = refused("a: 1\nb: x\x00y\n")
        assert (err.rule, err.where.line, err.where.column) == ("yaml.syntax", 2, 5)
        assert "\n" not in str(err)

    def test_oversize_file_is_refused_before_parsing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file one byte over MAX_FILE_BYTES is yaml.too-large; one at the limit loads."""
        monkeypatch.setattr(load, "MAX_FILE_BYTES", 64)
        assert load_yaml("f.yaml", b"a: " + b"x" * 60 + b"\n").value == {"a": "x" * 60}
        assert refused(b"a: " + b"x" * 61 + b"\n").rule == "yaml.too-large"

    def test_more_than_one_document_is_refused(self) -> None:
        """A `---` separating two documents: yaml.multi-document at the second."""
        err = refused("a: 1\n---\nb: 2\n")
        assert (err.rule, err.where.line) == ("yaml.multi-document", 2)

    def test_empty_file_is_null(self) -> None:
        """An empty file (or only comments) loads as None."""
        assert load_yaml("f.yaml", b"# nothing\n").value is None


class TestYaml12:
    """YAML 1.2 core semantics, pinned by tests/cases/config/yaml12-scalars.json."""

    CASES = json.loads(SCALARS.read_text(encoding="utf-8"))["cases"]

    @staticmethod
    def expected(value: Any) -> Any:
        return {"+inf": math.inf, "-inf": -math.inf}.get(value, value) if value else value

    @pytest.mark.parametrize("case", CASES, ids=[c["text"] for c in CASES])
    def test_plain_scalar_reads_as_yaml_1_2(self, case: dict[str, Any]) -> None:
        """A plain scalar reads as the 1.2 core schema says, in a file and on its own."""
        want = self.expected(case["value"])
        loaded = load_yaml("f.yaml", f"v: {case['text']}\n".encode()).value["v"]
        assert loaded == want
        assert type(loaded) is type(want)
        assert plain_value(case["text"]) == want

    def test_nan_reads_as_nan(self) -> None:
        """.nan is the float NaN."""
        assert math.isnan(load_yaml("f.yaml", b"v: .nan\n").value["v"])

    def test_quoted_scalars_are_always_strings(self) -> None:
        """Quotes keep `no`, `0755` and `null` as the strings they spell."""
        value = load_yaml("f.yaml", b"a: 'no'\nb: \"0755\"\nc: 'null'\n").value
        assert value == {"a": "no", "b": "0755", "c": "null"}


class TestLocations:
    def test_every_key_knows_its_line_and_column(self) -> None:
        """Loc spans point at the key that set each value, lists at their items."""
        doc = load_yaml("f.yaml", b"a:\n  b: 1\n  c:\n    - x\n    - y: 2\n")
        assert str(doc.loc.find(("a",))) == "f.yaml:1:1"
        assert str(doc.loc.find(("a", "b"))) == "f.yaml:2:3"
        assert str(doc.loc.find(("a", "c", 1))) == "f.yaml:5:7"
        assert str(doc.loc.find(("a", "c", 1, "y"))) == "f.yaml:5:7"
        assert str(doc.loc.find(("a", "missing"))) == "f.yaml:1:1"
