"""``fabcity hub devices`` and ``fabcity hub keys``: broker accounts and API keys.

Kept apart from :mod:`hub.cli` and importing nothing heavy at registration: the commands load
their modules when they run.
"""

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["register_security"]


def register_security(commands: Any) -> None:
    """Add ``devices`` and ``keys`` to the ``fabcity hub`` sub-commands."""
    devices = commands.add_parser(
        "devices", help="provision device broker accounts (password and ACL files)",
        description="Issue, list and revoke the broker credentials of edge devices; each "
                    "change rewrites [broker] password_file and acl_file and runs "
                    "reload_command.")
    actions = devices.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="issue a device's credentials (shown once)")
    revoke = actions.add_parser("revoke", help="remove a device's credentials")
    for sub in (add, revoke):
        sub.add_argument("site")
        sub.add_argument("device")
    add.add_argument("--json", action="store_true",
                     help='print {"username": ..., "password": ...}')
    add.add_argument("--edge-config", action="store_true",
                     help="print an edge.toml fragment for the device")
    add.add_argument("--broker-url", help="the URL devices use (default: [mqtt] url)")
    listing = actions.add_parser("list", help="the provisioned devices")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    add.set_defaults(func=_devices_add)
    revoke.set_defaults(func=_devices_revoke)
    listing.set_defaults(func=_devices_list)

    keys = commands.add_parser(
        "keys", help="API keys for the admin endpoints",
        description="Create, list and revoke the API keys (Authorization: Bearer) the "
                    "admin endpoints require; only a hash is kept.")
    key_actions = keys.add_subparsers(title="actions", metavar="ACTION", required=True)
    create = key_actions.add_parser("create", help="make a key (shown once)")
    create.add_argument("name", help="who or what uses it")
    create.add_argument("--scope", choices=("read", "admin"), default="read")
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    key_list = key_actions.add_parser("list", help="every key, revoked ones included")
    key_list.add_argument("--json", action="store_true", help="one JSON array")
    key_revoke = key_actions.add_parser("revoke", help="stop a key from working")
    key_revoke.add_argument("id", help="the key's id (second part of fck_<id>_…)")
    create.set_defaults(func=_keys_create)
    key_list.set_defaults(func=_keys_list)
    key_revoke.set_defaults(func=_keys_revoke)
    for sub in (add, revoke, listing, create, key_list, key_revoke):
        sub.add_argument("--config", "-c", type=Path, help="hub.toml")


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def _provisioner(args: argparse.Namespace) -> Any:
    from hub.config import load_hub_settings
    from hub.provisioning import Provisioner

    return Provisioner(load_hub_settings(args.config))


def _devices_add(args: argparse.Namespace) -> int:
    from hub.provisioning import ProvisioningError

    provisioner = _provisioner(args)
    try:
        issued = provisioner.add(args.site, args.device)
    except ProvisioningError as exc:
        print(f"fabcity hub devices add: {exc}", file=sys.stderr)
        return 1
    finally:
        provisioner.close()
    if args.json:
        print(json.dumps({"username": issued.username, "password": issued.password}))
    elif not args.edge_config:
        print(f"username: {issued.username}\npassword: {issued.password}\n"
              "(shown once: only its hash is kept)")
    if args.edge_config:
        mqtt = provisioner.settings.mqtt
        url = args.broker_url or mqtt.url or "mqtts://BROKER:8883"
        lines = [f'site = "{issued.site}"', f'device = "{issued.device}"', "", "[mqtt]",
                 f'url = "{url}"', f'username = "{issued.username}"',
                 f'password = "{issued.password}"   # or password_file, mode 0600']
        if url.startswith("mqtts://"):
            lines.append('ca_file = "/etc/fabcity/ca.pem"   # the CA that signed the broker')
        print("\n".join(lines))
    return 0


def _devices_revoke(args: argparse.Namespace) -> int:
    from hub.provisioning import ProvisioningError

    provisioner = _provisioner(args)
    try:
        provisioner.revoke(args.site, args.device)
    except ProvisioningError as exc:
        print(f"fabcity hub devices revoke: {exc}", file=sys.stderr)
        return 1
    finally:
        provisioner.close()
    print(f"revoked {args.site}/{args.device}; the broker files are rewritten and reloaded")
    return 0


def _devices_list(args: argparse.Namespace) -> int:
    provisioner = _provisioner(args)
    try:
        records = provisioner.devices()
    finally:
        provisioner.close()
    rows = [{"site": r.site, "device": r.device, "username": r.username,
             "created": _iso(r.created_ms)} for r in records]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['site']}/{row['device']}  user {row['username']}  since {row['created']}")
    return 0


def _keys(args: argparse.Namespace) -> Any:
    from hub.apikeys import ApiKeys
    from hub.config import load_hub_settings

    return ApiKeys(load_hub_settings(args.config).resolved_state_path())


def _keys_create(args: argparse.Namespace) -> int:
    from hub.apikeys import ApiKeyError

    keys = _keys(args)
    try:
        record, key = keys.create(args.name, args.scope)
    except ApiKeyError as exc:
        print(f"fabcity hub keys create: {exc}", file=sys.stderr)
        return 1
    finally:
        keys.close()
    if args.json:
        print(json.dumps({"id": record.id, "scope": record.scope, "key": key}))
    else:
        print(f"{key}\n(id {record.id}, scope {record.scope}; shown once: only its hash is "
              "kept)")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    keys = _keys(args)
    try:
        records = keys.keys()
    finally:
        keys.close()
    rows = [{"id": r.id, "name": r.name, "scope": r.scope, "created": _iso(r.created_ms),
             "revoked": _iso(r.revoked_ms)} for r in records]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            state = f"revoked {row['revoked']}" if row["revoked"] else "active"
            print(f"{row['id']}  {row['scope']:5}  {state:30}  {row['name']}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from hub.apikeys import ApiKeyError

    keys = _keys(args)
    try:
        keys.revoke(args.id)
    except ApiKeyError as exc:
        print(f"fabcity hub keys revoke: {exc}", file=sys.stderr)
        return 1
    finally:
        keys.close()
    print(f"revoked key {args.id}")
    return 0
