"""The target HTTP client's event-loop check is a dictionary look-up, not an import per request."""

from __future__ import annotations

import asyncio
import importlib.machinery
import sys

import httpcore._synchronization


def test_httpcore_finds_sniffio_so_a_request_does_not_search_the_import_path() -> None:
    """httpcore imports sniffio inside the function it calls four times per request: without the
    package each call fails an import, which walks every sys.path entry (the pyproject dependency)."""
    searches = []
    real = importlib.machinery.PathFinder.find_spec

    def find_spec(name: str, path: object = None, target: object = None) -> object:
        searches.append(name)
        return real(name, path, target)  # type: ignore[arg-type]

    async def ask() -> str:
        return httpcore._synchronization.current_async_library()

    importlib.machinery.PathFinder.find_spec = find_spec  # type: ignore[method-assign, assignment]
    try:
        for _ in range(3):
            assert asyncio.run(ask()) == "asyncio"
    finally:
        importlib.machinery.PathFinder.find_spec = real  # type: ignore[method-assign]
    # found once (or already imported), then a sys.modules hit: not one failed search per call
    assert searches.count("sniffio") <= 1, f"sys.path searched for sniffio {searches.count('sniffio')} times in 3 calls"
    assert "sniffio" in sys.modules
