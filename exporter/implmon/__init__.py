"""implmon: the Monitoring Implementation Framework as an exporter and an embeddable SDK."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("implmon")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
