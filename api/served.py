"""The app as `backfills api` serves it: each of its processes (`BACKFILLS_API_PROCESSES`)
imports this module on its own, so each sets up its logging before the app starts."""

from api.main import app
from config import get_settings
from observability.logs import setup_logging

setup_logging(get_settings())

__all__ = ["app"]
