#!/usr/bin/env python3
"""Generates docs/api/openapi.json from bicd's route table (`bicd routes`).

The route table in fcgi/routes.def is the one spec: paths, methods, roles, body limits and body
fields all come from it, so the API reference cannot drift from the code. tests/api/test_docs.py
fails when the committed file differs from what this script generates.

usage: gen_openapi.py [path/to/bicd] > docs/api/openapi.json
"""
import json
import re
import subprocess
import sys

ERRORS = {
    "400": "Malformed request or JSON (bad_request, bad_json)",
    "401": "Not signed in (unauthenticated) or wrong credentials (bad_credentials)",
    "403": "Role too low (forbidden) or CSRF/Origin check failed (csrf_failed)",
    "404": "No such resource (not_found)",
    "405": "Method not allowed on this path (method_not_allowed); see the Allow header",
    "409": "Already exists or changed concurrently (conflict)",
    "413": "Body over the route's limit (payload_too_large)",
    "415": "Body is not application/json (unsupported_media_type)",
    "422": "A field has an invalid value (validation_failed)",
    "503": "Database unreachable (database_unavailable) or busy (unavailable); see Retry-After",
}


def schema_of(field):
    t = field["type"]
    if t.endswith("[]"):
        s = {"type": "array", "items": {"type": t[:-2]}}
        if field["min"]:
            s["minItems"] = field["min"]
        if field["max"]:
            s["maxItems"] = field["max"]
    else:
        s = {"type": t}
        if t == "string":
            if field["min"]:
                s["minLength"] = field["min"]
            if field["max"]:
                s["maxLength"] = field["max"]
            if field["choices"]:
                s["enum"] = field["choices"]
        elif t == "integer":
            s["minimum"] = field["min"]
            s["maximum"] = field["max"]
    if field["nullable"]:
        s["nullable"] = True
    return s


def build(routes):
    paths = {}
    for r in routes:
        op = {
            "summary": r["summary"],
            "operationId": r["handler"],
            "x-bic-role": r["role"],
            "x-bic-body-limit": r["body_limit"],
            "responses": {"2XX": {"description": "Success"}},
        }
        params = re.findall(r"{(\w+)}", r["path"])
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True,
                                 "schema": {"type": "integer", "minimum": 1}} for p in params]
        if r["fields"]:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "required": [f["name"] for f in r["fields"] if f["required"]],
                "properties": {f["name"]: schema_of(f) for f in r["fields"]}}}}}
        if r["role"] != "anonymous":
            op["security"] = [{"session": []}]
        for code in ERRORS:
            op["responses"][code] = {"$ref": "#/components/responses/E%s" % code}
        paths.setdefault(r["path"], {})[r["method"].lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "BIC control plane API", "version": "1",
                 "description": "Generated from fcgi/routes.def by docs/api/gen_openapi.py. "
                                "Every state-changing request needs an Origin of this site and an "
                                "X-CSRF-Token header (see docs/architecture.md, Identity). "
                                "x-bic-role is the minimum role a caller needs."},
        "components": {
            "responses": {"E%s" % code: {"description": text, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}} for code, text in ERRORS.items()},
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "__Host-bic_session"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "request_id"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "request_id": {"type": "string"}}}}}},
        },
        "paths": paths,
    }


def main():
    bicd = sys.argv[1] if len(sys.argv) > 1 else "build/bicd"
    routes = json.loads(subprocess.run([bicd, "routes"], check=True, capture_output=True, text=True).stdout)
    json.dump(build(routes), sys.stdout, indent=2, sort_keys=False, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
