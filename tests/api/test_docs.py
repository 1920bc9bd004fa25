"""The API reference is generated from the route table and must match it."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import REPO  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "docs", "api"))
import gen_openapi  # noqa: E402


class ApiReference(unittest.TestCase):
    def test_committed_openapi_matches_route_table(self):
        out = subprocess.run([sys.executable, os.path.join(REPO, "docs", "api", "gen_openapi.py"),
                              os.path.join(REPO, "build", "bicd")], check=True, capture_output=True, text=True).stdout
        with open(os.path.join(REPO, "docs", "api", "openapi.json")) as f:
            self.assertEqual(f.read(), out, "docs/api/openapi.json is stale: run make docs")

    def test_generator_maps_fields_to_schemas(self):
        doc = gen_openapi.build([{"method": "POST", "path": "/api/v1/x/{id}", "handler": "h", "role": "admin",
                                  "body_limit": 10, "summary": "s", "fields": [
                                      {"name": "a", "type": "string", "required": True, "min": 1, "max": 5,
                                       "choices": ["p", "q"], "nullable": False},
                                      {"name": "b", "type": "integer[]", "required": False, "min": 0, "max": 3,
                                       "choices": [], "nullable": True}]}])
        op = doc["paths"]["/api/v1/x/{id}"]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(body["required"], ["a"])
        self.assertFalse(body["additionalProperties"])
        self.assertEqual(body["properties"]["a"], {"type": "string", "minLength": 1, "maxLength": 5, "enum": ["p", "q"]})
        self.assertEqual(body["properties"]["b"], {"type": "array", "items": {"type": "integer"}, "maxItems": 3,
                                                   "nullable": True})
        self.assertEqual(op["parameters"][0]["name"], "id")
        self.assertEqual(op["x-bic-role"], "admin")
        self.assertEqual(op["security"], [{"session": []}])


if __name__ == "__main__":
    unittest.main()
