"""fabcity: the shared contract between edge agents and the hub.

Topics, readings, the JSON codec, the metric catalogue, configuration loading and the plugin
registry live here; ``edge``, ``hub`` and ``firmware_bridge`` import them, never each other
(``edge`` may import ``firmware_bridge``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fabcity")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
