"""Schemathesis hooks for weir's API: a serializer for the component upload's body.

Schemathesis has no serializer for `application/wasm`; the upload takes any bytes (and
refuses what is not a component with a 4xx), so generated values go on the wire as the
bytes they are, or as their JSON text.
"""

import json

import schemathesis


@schemathesis.serializer("application/wasm")
def wasm_bytes(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    data = getattr(value, "data", None)
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()
