"""Validate real HTTP responses against the vendored Atlas OpenAPI 3.0 subsets.

Design notes
------------
* The specs are OpenAPI 3.0.1 (`nullable`, `readOnly`, `writeOnly`,
  `discriminator`), so schemas are checked with openapi-schema-validator's
  `OAS30ReadValidator` (response direction: readOnly allowed, writeOnly
  forbidden, `nullable` honoured) plus its OAS 3.0 format checker
  (`date-time`, `int32`, `int64`, `uuid` ...).
* `$ref`s are resolved lazily through a `referencing.Registry` holding the
  whole spec document; nothing is inlined. That matters for
  `atlas-backup-schedule-openapi.json`, where `DiskBackupCopyPolicyItem`
  has `oneOf` children that `allOf` straight back to it: inlining never
  terminates, and even lazy resolution loops forever once an instance
  reaches that schema, because validating the parent means validating the
  child means validating the parent... The `$ref` keyword is therefore
  wrapped in a re-entrancy guard: re-entering the same `$ref` for the very
  same instance object while it is already being checked adds no new
  constraint (co-inductive reading of the cycle), so it is skipped.
* Exactly three documented deviations of real Atlas from its own spec are
  accepted, each in exactly one field (see `_is_documented_deviation`).
  Every other schema error is reported.
"""

from __future__ import annotations

import contextvars
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

import referencing
import referencing.jsonschema
from jsonschema import _keywords as js_keywords
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

SPEC_URI = "urn:rewind-test:atlas-spec"

_active_refs: contextvars.ContextVar[frozenset] = contextvars.ContextVar("_active_refs", default=frozenset())


def _guarded_ref(validator: Any, ref: str, instance: Any, schema: Any):
    key = (ref, id(instance))
    active = _active_refs.get()
    if key in active:
        # Cycle: this very instance is already being validated against this
        # very schema further up the stack.
        return
    token = _active_refs.set(active | {key})
    try:
        # Materialise the errors while the guard is in place (the generator
        # would otherwise run after the context var is reset).
        errors = list(js_keywords.ref(validator, ref, instance, schema))
    finally:
        _active_refs.reset(token)
    yield from errors


ResponseValidator = extend(OAS30ReadValidator, validators={"$ref": _guarded_ref})


# --------------------------------------------------------------------------
# Documented deviations (accepted explicitly, one field each)
# --------------------------------------------------------------------------

# 1. Real Atlas answers `frequencyType: "ondemand"` for on-demand snapshots
#    (recorded responses of the Atlas CLI e2e suite), but the spec enum on the
#    snapshot schemas only lists hourly/daily/weekly/monthly/yearly. rewind
#    copies the real behaviour. Accepted: the value "ondemand", in the field
#    `frequencyType` of a snapshot object whose `snapshotType` is "onDemand".
ONDEMAND = "ondemand"
# 2. `ApiBSONTimestampView.increment` carries `minimum: 1199145600`, an epoch
#    seconds value pasted onto an oplog *increment* (an ordinal that starts at
#    1). Accepted: any non-negative integer below that bogus minimum, in the
#    field `desiredTimestamp.increment` only.
BOGUS_INCREMENT_MINIMUM = 1199145600
# 3. `ApiError.parameters` declares `items: {type: object}`, yet real Atlas
#    fills it with the *strings* substituted into `detail` (reference notes
#    atlas-restore-api.md section 6: GROUP_NOT_FOUND "params [id]",
#    VERSION_GONE `parameters: [version, path]` from mongodb-atlas-cli#4472).
#    rewind copies the real behaviour. Accepted: string items, in the
#    top-level `parameters` array of an error body only.


def _instance_at(root: Any, path: Iterable[Any]) -> Any:
    node = root
    for part in path:
        node = node[part]
    return node


def _is_documented_deviation(err: ValidationError, root: Any) -> str | None:
    path = list(err.absolute_path)
    if (
        err.validator == "enum"
        and path
        and path[-1] == "frequencyType"
        and err.instance == ONDEMAND
        and isinstance(err.validator_value, list)
        and set(err.validator_value) == {"hourly", "daily", "weekly", "monthly", "yearly"}
    ):
        parent = _instance_at(root, path[:-1])
        if isinstance(parent, dict) and parent.get("snapshotType") == "onDemand":
            return "frequencyType=ondemand"
    if (
        err.validator == "minimum"
        and path[-2:] == ["desiredTimestamp", "increment"]
        and err.validator_value == BOGUS_INCREMENT_MINIMUM
        and isinstance(err.instance, int)
        and not isinstance(err.instance, bool)
        and 0 <= err.instance < BOGUS_INCREMENT_MINIMUM
    ):
        return "desiredTimestamp.increment<1199145600"
    if (
        err.validator == "type"
        and err.validator_value == "object"
        and len(path) == 2
        and path[0] == "parameters"
        and isinstance(root, dict)
        and "errorCode" in root
        and isinstance(err.instance, str)
    ):
        return "ApiError.parameters[string]"
    return None


def _flatten(errors: Iterable[ValidationError]) -> list[ValidationError]:
    return list(errors)


# --------------------------------------------------------------------------
# Spec wrapper
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    """Result of validating one response."""

    errors: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    schema_ref: str | None = None

    def __bool__(self) -> bool:  # truthy when OK
        return not self.errors


def _template_regex(template: str) -> re.Pattern:
    out = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            out += r"[^/]+"
        else:
            out += re.escape(part)
    return re.compile("^" + out + "$")


class AtlasSpec:
    def __init__(self, path: Path):
        self.path = path
        self.doc: dict = json.loads(path.read_text())
        assert self.doc.get("openapi", "").startswith("3.0"), "expected an OpenAPI 3.0 document"
        resource = referencing.Resource.from_contents(self.doc, default_specification=referencing.jsonschema.DRAFT4)
        self.registry = referencing.Registry().with_resource(SPEC_URI, resource)
        # Most specific templates first, so `/snapshots/shardedClusters` wins
        # over `/snapshots/{snapshotId}`.
        self._templates = sorted(
            ((t, _template_regex(t)) for t in self.doc["paths"]),
            key=lambda tr: (tr[0].count("{"), -len(tr[0])),
        )

    # -- schema access -----------------------------------------------------

    def schema(self, name: str) -> dict:
        return self.doc["components"]["schemas"][name]

    def validator_for_ref(self, ref: str) -> Any:
        if ref.startswith("#"):
            ref = SPEC_URI + ref
        return ResponseValidator({"$ref": ref}, registry=self.registry, format_checker=oas30_format_checker)

    def check(self, instance: Any, ref: str) -> Outcome:
        """Validate `instance` against the schema at `ref` (e.g. "#/components/schemas/ApiError")."""
        out = Outcome(schema_ref=ref)
        for err in sorted(self.validator_for_ref(ref).iter_errors(instance), key=lambda e: list(e.absolute_path)):
            dev = _is_documented_deviation(err, instance)
            if dev:
                out.deviations.append(f"{dev} at {'/'.join(map(str, err.absolute_path))}")
            else:
                loc = "/".join(map(str, err.absolute_path)) or "<root>"
                out.errors.append(f"{loc}: {err.message} (schema path {'/'.join(map(str, err.absolute_schema_path))})")
        return out

    # -- operation lookup --------------------------------------------------

    def match(self, method: str, url: str) -> tuple[str, dict] | None:
        path = urlsplit(url).path
        for template, rx in self._templates:
            if rx.match(path):
                op = self.doc["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
        return None

    def _deref(self, obj: dict) -> dict:
        while "$ref" in obj:
            ptr = obj["$ref"]
            assert ptr.startswith("#/"), ptr
            node: Any = self.doc
            for part in ptr[2:].split("/"):
                node = node[part]
            obj = node
        return obj

    def response_content(self, method: str, url: str, status: int) -> dict | None:
        """The `content` map the spec declares for this operation/status, or None if undeclared."""
        m = self.match(method, url)
        if m is None:
            return None
        _, op = m
        resp = op.get("responses", {}).get(str(status))
        if resp is None:
            return None
        return self._deref(resp).get("content", {})

    def declared_statuses(self, method: str, url: str) -> set[int]:
        m = self.match(method, url)
        assert m is not None, f"no operation for {method} {url}"
        return {int(s) for s in m[1]["responses"] if s.isdigit()}

    # -- whole-response validation ----------------------------------------

    def validate_response(self, resp: Any, *, allow_undeclared_status: bool = False) -> Outcome:
        """Validate a `requests.Response` (body + content type) against the spec.

        * 2xx: the body must validate against the schema declared for the
          response media type, and `Content-Type` must be exactly the
          request's versioned media type plus `;charset=utf-8`.
        * >= 400: `Content-Type: application/json` and the body must be an
          `ApiError` (the declared schema when the spec lists the status,
          `#/components/schemas/ApiError` otherwise), with `error` equal to
          the status and an `X-Error-Code` header equal to `errorCode`.
        """
        req = resp.request
        method, url, status = req.method, req.url, resp.status_code
        out = Outcome()
        m = self.match(method, url)
        if m is None:
            out.errors.append(f"{method} {url}: not an operation of {self.path.name}")
            return out
        ctype = resp.headers.get("Content-Type", "")
        if 200 <= status < 300:
            accept = req.headers.get("Accept", "")
            want = [accept.lower(), "charset=utf-8"]
            got = [p.strip().lower() for p in ctype.split(";")]
            if got != want:
                out.errors.append(f"Content-Type {ctype!r}, expected {accept + ';charset=utf-8'!r}")
            content = self.response_content(method, url, status)
            if content is None:
                if not allow_undeclared_status:
                    out.errors.append(f"status {status} is not declared for {method} {m[0]}")
                return out
            if status == 204:
                if resp.content:
                    out.errors.append(f"204 with a body: {resp.text[:200]!r}")
                return out
            media = content.get(accept)
            if media is None:
                out.errors.append(f"spec declares no {accept!r} for {status} (has {sorted(content)})")
                return out
            ref = media["schema"]["$ref"]
        else:
            base = ctype.split(";")[0].strip().lower()
            if base != "application/json":
                out.errors.append(f"error Content-Type {ctype!r}, expected application/json")
            content = self.response_content(method, url, status)
            if content and "application/json" in content:
                ref = content["application/json"]["schema"]["$ref"]
            else:
                # Status not declared for this operation (e.g. 406): still an ApiError.
                ref = "#/components/schemas/ApiError"
        try:
            body = resp.json()
        except ValueError:
            out.errors.append(f"body is not JSON: {resp.text[:200]!r}")
            return out
        inner = self.check(body, ref)
        out.schema_ref = ref
        out.errors.extend(inner.errors)
        out.deviations.extend(inner.deviations)
        if status >= 400 and isinstance(body, dict):
            if body.get("error") != status:
                out.errors.append(f"ApiError.error={body.get('error')!r} but HTTP status {status}")
            if resp.headers.get("X-Error-Code") != body.get("errorCode"):
                out.errors.append(
                    f"X-Error-Code header {resp.headers.get('X-Error-Code')!r} != errorCode {body.get('errorCode')!r}"
                )
        return out


def patched_for_documented_deviations(doc: dict) -> dict:
    """A deep copy of a spec with the three documented deviations written in.

    Used only where errors cannot be filtered one by one (the schemathesis
    run). Each patch asserts that the spec still has the exact shape it
    patches, so an upstream fix turns into a loud failure, not a silent no-op.
    """
    doc = copy.deepcopy(doc)
    schemas = doc["components"]["schemas"]
    patched = []
    for name in ("DiskBackupSnapshot", "DiskBackupReplicaSet", "DiskBackupShardedClusterSnapshot"):
        prop = schemas[name]["properties"]["frequencyType"]
        assert prop["enum"] == ["hourly", "daily", "weekly", "monthly", "yearly"], (name, prop["enum"])
        prop["enum"] = prop["enum"] + [ONDEMAND]
        patched.append(f"{name}.frequencyType += ondemand")
    inc = schemas["ApiBSONTimestampView"]["properties"]["increment"]
    assert inc["minimum"] == BOGUS_INCREMENT_MINIMUM, inc
    # ApiBSONTimestampView is referenced only by DiskBackupSnapshotRestoreJob.desiredTimestamp.
    refs = json.dumps(doc).count('"#/components/schemas/ApiBSONTimestampView"')
    assert refs == 1, f"ApiBSONTimestampView is now referenced {refs} times; narrow the patch"
    inc["minimum"] = 0
    patched.append("ApiBSONTimestampView.increment minimum 1199145600 -> 0")
    params = schemas["ApiError"]["properties"]["parameters"]
    assert params["items"] == {"type": "object"}, params
    params["items"] = {"anyOf": [{"type": "object"}, {"type": "string"}]}
    patched.append("ApiError.parameters items: object -> object | string")
    doc.setdefault("x-rewind-test-patches", patched)
    return doc
