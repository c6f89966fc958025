"""An empty fleet key is no key: secrets are "not checked", never fingerprinted with b""."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.model.fleet import FleetFile
from reconciler.secretstore import fleet_key


def _fleet(**secrets: object) -> FleetFile:
    return FleetFile.model_validate({"fleet_id": "f", "secrets": secrets})


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_an_empty_key_in_the_environment_is_absent(value: str, tmp_path: Path) -> None:
    """RECONCILER_FLEET_KEY set but empty: None, as if unset."""
    assert fleet_key(_fleet(), tmp_path, {"RECONCILER_FLEET_KEY": value}) is None


def test_an_empty_key_file_is_absent(tmp_path: Path) -> None:
    """A key file holding nothing (or only a newline): None."""
    (tmp_path / "fleet.key").write_text("\n")
    assert fleet_key(_fleet(fleet_key_file="fleet.key"), tmp_path, {}) is None


def test_an_empty_env_key_falls_back_to_the_key_file(tmp_path: Path) -> None:
    """An empty env var does not hide a real key file."""
    (tmp_path / "fleet.key").write_text("s3cret\n")
    got = fleet_key(_fleet(fleet_key_file="fleet.key"), tmp_path, {"RECONCILER_FLEET_KEY": ""})
    assert got == b"s3cret"


def test_a_real_key_is_returned_as_is(tmp_path: Path) -> None:
    """A set key comes back byte for byte."""
    assert fleet_key(_fleet(), tmp_path, {"RECONCILER_FLEET_KEY": "k1"}) == b"k1"
