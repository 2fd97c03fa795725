"""The studio's web layer (Starlette): parses requests, calls :mod:`affdata.annotate`, returns.

Imported only by ``affdata annotate serve`` (and tests); nothing under ``affdata`` imports it.
"""

from affdata.annotate.web.app import create_app

__all__ = ["create_app"]
