"""The device registry keeps status and meta decoded: validated once, served without parsing."""

import json
from pathlib import Path

import pytest

from fabcity.device import DeviceMeta, Status, decode_meta
from hub.registry import DeviceRegistry


def _meta() -> DeviceMeta:
    return decode_meta(json.dumps({
        "site": "lab", "device": "pi-1", "kind": "machine",
        "sensors": [{"name": "clamp", "driver": "x", "metrics": {"power": "W"}}]}).encode())


def test_devices_serves_the_models_it_was_given_without_parsing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = DeviceRegistry(tmp_path / "registry.db")
    meta, status = _meta(), Status(state="online")
    registry.set_status("lab", "pi-1", status, 1)
    registry.set_meta("lab", "pi-1", meta)

    def no_parsing(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the registry parsed stored JSON on a read")

    monkeypatch.setattr(json, "loads", no_parsing)
    monkeypatch.setattr(DeviceMeta, "model_validate_json", no_parsing)
    (record,) = registry.devices()
    assert record.meta is meta and record.status is status
    registry.close()


def test_a_reopened_registry_decodes_what_was_stored_once(tmp_path: Path) -> None:
    registry = DeviceRegistry(tmp_path / "registry.db")
    registry.set_status("lab", "pi-1", Status(state="offline"), 5)
    registry.set_meta("lab", "pi-1", _meta())
    registry.close()
    again = DeviceRegistry(tmp_path / "registry.db")
    (record,) = again.devices()
    assert record.state == "offline" and record.status == Status(state="offline")
    assert record.meta == _meta()
    again.set_meta("lab", "pi-1", None)
    assert again.devices()[0].meta is None
    again.close()


def test_a_stored_meta_beyond_todays_limits_is_skipped_on_load(tmp_path: Path) -> None:
    registry = DeviceRegistry(tmp_path / "registry.db")
    registry.set_meta("lab", "pi-1", _meta())
    registry._conn.execute("UPDATE devices SET meta_json = ?",
                           [json.dumps({"site": "lab", "device": "pi-1", "name": "n" * 10_000})])
    registry.close()
    again = DeviceRegistry(tmp_path / "registry.db")
    assert again.devices()[0].meta is None
    again.close()


def test_a_reader_in_another_process_sees_status_meta_and_clearing(tmp_path: Path) -> None:
    """Ingest workers write the file, an API process reads it (SQLite WAL)."""
    writer = DeviceRegistry(tmp_path / "registry.db")
    reader = DeviceRegistry(tmp_path / "registry.db")
    assert reader.devices() == []
    writer.set_status("lab", "pi-1", Status(state="online"), 5)
    writer.set_meta("lab", "pi-1", _meta())
    (record,) = reader.devices()
    assert record.state == "online" and record.status == Status(state="online")
    assert record.meta == _meta() and record.last_seen_ms == 5
    writer.set_status("lab", "pi-1", Status(state="offline"), 9)
    writer.set_meta("lab", "pi-1", None)
    (record,) = reader.devices()
    assert record.state == "offline" and record.meta is None
    writer.close()
    reader.close()
