"""The licence of the data in an answer: SPDX ids, their URLs, and the headers naming them."""

from collections.abc import Iterable

from hub.context import HubContext

__all__ = ["LICENCE_HEADER", "LICENCE_URLS", "licence_headers", "licences_of"]

LICENCE_HEADER = "X-Data-Licence"

#: SPDX ids of the usual open-data licences -> their canonical text.
LICENCE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "ODC-By-1.0": "https://opendatacommons.org/licenses/by/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
    "OGL-UK-3.0": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
    "etalab-2.0": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "DL-DE-BY-2.0": "https://www.govdata.de/dl-de/by-2-0",
}


def licences_of(ctx: HubContext, sites: Iterable[str]) -> dict[str, str]:
    """Site -> SPDX id of its data's licence, ordered by site."""
    return {site: ctx.licence(site) for site in sorted(set(sites))}


def licence_headers(ids: Iterable[str]) -> dict[str, str]:
    """``X-Data-Licence`` naming each licence once, and a ``Link rel="license"`` for each
    one whose URL is known."""
    unique = list(dict.fromkeys(ids))
    headers = {LICENCE_HEADER: ", ".join(unique)}
    links = [f'<{LICENCE_URLS[i]}>; rel="license"' for i in unique if i in LICENCE_URLS]
    if links:
        headers["Link"] = ", ".join(links)
    return headers
