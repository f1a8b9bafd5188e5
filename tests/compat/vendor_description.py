"""Reading Microsoft's DPS service description out of its generated Python client.

The DPS swagger (Azure/azure-rest-api-specs) is in no package installable here; the official
client ``azure-iot-deviceprovisioning`` is generated from it (2021-10-01) and keeps what we
compare: one ``build_*_request`` function per operation (method, URL template, query parameters,
headers) and, in each operation's docstring, the JSON templates of its request and response
bodies. The module is read as text with ``ast`` (never imported), from the compat venv.
"""

from __future__ import annotations

import ast
import re
import subprocess
from dataclasses import dataclass, field

from tests.compat.support import compat_python

__all__ = ["VendorOperation", "vendor_operations", "vendor_source"]

MODULE = "azure.iot.deviceprovisioning.operations._operations"
_KEY = re.compile(r'"([A-Za-z_$][\w$]*)":')
_REQUEST_MARK = "# JSON input template you can fill out and use as your body input."
_RESPONSE_MARK = "# response body for status code(s): 200"


@dataclass
class VendorOperation:
    method: str
    path: str
    query: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    request_names: set[str] = field(default_factory=set)
    response_names: set[str] = field(default_factory=set)


def vendor_source() -> str:
    origin = subprocess.run(
        [str(compat_python()), "-c", f"import importlib.util as u; print(u.find_spec({MODULE!r}).origin)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    with open(origin, encoding="utf-8") as f:
        return f.read()


def _subscript_keys(fn: ast.FunctionDef, target: str) -> set[str]:
    keys = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if (
                    isinstance(t, ast.Subscript)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == target
                    and isinstance(t.slice, ast.Constant)
                ):
                    keys.add(str(t.slice.value))
    return keys


def _builder(fn: ast.FunctionDef) -> VendorOperation:
    url = method = ""
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_url" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            url = str(node.value.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "HttpRequest":
            for kw in node.keywords:
                if kw.arg == "method" and isinstance(kw.value, ast.Constant):
                    method = str(kw.value.value)
    headers = _subscript_keys(fn, "_headers") - {"Accept", "Content-Type"}
    return VendorOperation(method, url, _subscript_keys(fn, "_params"), headers)


def _template(doc: str, mark: str) -> set[str]:
    if mark not in doc:
        return set()
    text = doc.split(mark, 1)[1]
    for end in (_REQUEST_MARK, _RESPONSE_MARK):
        text = text.split(end, 1)[0]
    return set(_KEY.findall(text))


def vendor_operations(source: str) -> dict[tuple[str, str], VendorOperation]:
    """(METHOD, path) -> what the vendor's description says of the operation."""
    tree = ast.parse(source)
    builders = {
        fn.name: _builder(fn)
        for fn in tree.body
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("build_")
    }
    found: dict[tuple[str, str], VendorOperation] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")):
            calls = {
                node.func.id
                for node in ast.walk(fn)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builders
            }
            for name in calls:
                op = builders[name]
                known = found.setdefault((op.method, op.path), op)
                doc = ast.get_docstring(fn) or ""
                known.request_names |= _template(doc, _REQUEST_MARK)
                known.response_names |= _template(doc, _RESPONSE_MARK)
    return found
