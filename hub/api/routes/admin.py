"""``/api/v1/admin``: device provisioning over HTTP, behind API keys.

Listing needs a ``read`` key, changing needs an ``admin`` key; both answer 401 without a valid
key. The same :class:`hub.provisioning.Provisioner` as ``fabcity hub devices`` does the work,
so the broker files and ``reload_command`` behave the same from either side.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict

from fabcity.errors import ConfigError
from fabcity.names import SITE_PATTERN, SiteName
from hub.api.deps import ContextDep
from hub.api.security import require_scope
from hub.apikeys import ApiKey
from hub.provisioning import ProvisioningError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"],
                   responses={401: {"description": "no valid API key"},
                              403: {"description": "the key's scope is not enough"}})

ReadKey = Annotated[ApiKey, Depends(require_scope("read"))]
AdminKey = Annotated[ApiKey, Depends(require_scope("admin"))]
NamePath = Annotated[str, Path(pattern=SITE_PATTERN)]


class ProvisionedDevicePublic(BaseModel):
    """A device with broker credentials (never its password)."""

    site: str
    device: str
    username: str
    created_ms: int


class DeviceCredentialsPublic(BaseModel):
    """The credentials of a device just added: the password is shown this once."""

    site: str
    device: str
    username: str
    password: str


class DeviceAdd(BaseModel):
    """What to provision."""

    model_config = ConfigDict(extra="forbid")

    site: SiteName
    device: SiteName


def _provisioner(ctx: Any) -> Any:
    provisioner = getattr(ctx, "provisioner", None)
    if provisioner is None:
        raise HTTPException(503, "device provisioning is off: set [broker] password_file and "
                                 "acl_file in hub.toml")
    return provisioner


@router.get("/devices", response_model=list[ProvisionedDevicePublic])
def provisioned_devices(ctx: ContextDep, _key: ReadKey) -> list[ProvisionedDevicePublic]:
    """Every device with broker credentials."""
    return [ProvisionedDevicePublic(site=d.site, device=d.device, username=d.username,
                                    created_ms=d.created_ms)
            for d in _provisioner(ctx).devices()]


@router.post("/devices", status_code=201, response_model=DeviceCredentialsPublic,
             responses={409: {"description": "already provisioned"}})
def add_device(ctx: ContextDep, _key: AdminKey, body: DeviceAdd) -> DeviceCredentialsPublic:
    """Issue a device's broker credentials, rewrite the broker files and reload the broker."""
    try:
        issued = _provisioner(ctx).add(body.site, body.device)
    except ProvisioningError as exc:
        raise HTTPException(409, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(502, f"credentials recorded but the broker was not updated: {exc}"
                            ) from None
    return DeviceCredentialsPublic(site=issued.site, device=issued.device,
                                   username=issued.username, password=issued.password)


@router.delete("/devices/{site}/{device}", status_code=204,
               responses={404: {"description": "not provisioned"}})
def revoke_device(ctx: ContextDep, _key: AdminKey, site: NamePath,
                  device: NamePath) -> Response:
    """Remove a device's credentials, rewrite the broker files and reload the broker."""
    try:
        _provisioner(ctx).revoke(site, device)
    except ProvisioningError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(502, f"credentials removed but the broker was not updated: {exc}"
                            ) from None
    return Response(status_code=204)
