"""Schemathesis hooks for test_openapi.py: the fields whose rules the
OpenAPI document cannot state (docs/api.md lists them), by name. Only in requests the
document calls valid are those fields dropped or given a value that is valid by the
rules the document cannot state; everything else is generated from the document."""

import time
import urllib.parse

import requests
import schemathesis

# How long a delete's operation may take to end (the test server's --operation-delay is 0s).
PATIENCE_SECONDS = 60

# Dropped from valid requests: a filter's and an order's grammar, a page token's
# signature (made by the server).
DROPPED = ("filter", "orderBy", "pageToken")
# Given a valid value: which update-mask paths a kind has (every kind's `name` is one), a
# source URI's form and reachability (a loopback port nobody listens on: the import fails
# at once, as the test server may fetch only from 127.0.0.1).
REPLACED = {"updateMask": "name", "uri": "http://127.0.0.1:9/image.qcow2"}


def _valid_by_what_the_document_cannot_say(container: object) -> None:
    if not isinstance(container, dict):
        return
    for name in DROPPED:
        container.pop(name, None)
    for name, value in REPLACED.items():
        # null is a field left unset (a oneof member too): it stays unset.
        if isinstance(container.get(name), str):
            container[name] = value


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # (Schemathesis checks a case again after this hook: what it sends is judged as sent.)
    meta = case.meta
    if case.method.upper() == "PATCH":
        # An update names what it changes: an update without a mask changes nothing and is
        # refused (a stateful step may even send no body).
        if not isinstance(case.body, dict):
            case.body = {}
            case.media_type = case.media_type or "application/json"
        if not isinstance(case.body.get("updateMask"), str):
            case.body["updateMask"] = REPLACED["updateMask"]
    for location, container in (("query", case.query), ("body", case.body)):
        component = meta.components.get(location) if meta is not None else None
        if component is None or component.mode.is_positive:
            _valid_by_what_the_document_cannot_say(container)


@schemathesis.hook
def after_call(ctx, case, response):
    """A delete answers its Operation at once and ends it a moment later (the document
    cannot say when): like any client of a long-running operation, wait for it to be done
    before the next step looks for the resource."""
    if case.method.upper() != "DELETE" or response.status_code != 200:
        return
    operation = response.json()
    if not isinstance(operation, dict) or operation.get("done") is not False:
        return
    parts = urllib.parse.urlsplit(response.request.url)
    url = f"{parts.scheme}://{parts.netloc}/operations/{operation['id']}"
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        if requests.get(url, timeout=PATIENCE_SECONDS).json().get("done"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the delete's operation {operation['id']} is not done after {PATIENCE_SECONDS} s")
