"""Schemathesis against the document the bridge serves (GET /scim/v2/openapi.json), on each store.

Cases for every operation of the document are drawn from it; a path `id` is, half the time,
one of a live user's or group's ids, so writes reach real resources. Each answer is held to the
harness's invariants and to schemathesis's own checks that the answer matches the document
(status codes, content types, response schemas): a document that drifts from the bridge fails.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, seed
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.harness import SEED, TALLY, Fuzzer, FuzzFailure, check_answer, fuzz_settings
from tests.live import TOKEN

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]
# 5xx are check_answer's (stricter, and /Me's 501 is documented); these hold answers to the document.
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_schemathesis_finds_no_answer_outside_the_document_nor_any_5xx(fuzzer: Fuzzer) -> None:
    document = fuzzer.read("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    live_ids = {
        "/Users/{id}": [r["id"] for r in fuzzer.read("/Users", params={"count": "20"}).json()["Resources"]],
        "/Groups/{id}": [r["id"] for r in fuzzer.read("/Groups", params={"count": "20"}).json()["Resources"]],
    }
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    base = fuzzer.bridge.base

    @seed(SEED + 20)
    @fuzz_settings(900)
    @given(case=schema.as_strategy(), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        ids = live_ids.get(case.path)
        if ids and data.draw(st.booleans()):
            case.path_parameters = {**(case.path_parameters or {}), "id": data.draw(st.sampled_from(ids))}
        try:
            response = case.call(base_url=base, session=session)
        except requests.ConnectionError as error:
            raise FuzzFailure(f"dropped connection: {case.as_curl_command()}: {error!r}") from None
        TALLY.generated += 1
        check_answer(response, case.formatted_path)
        case.validate_response(response, checks=CHECKS)

    run()
    session.close()
