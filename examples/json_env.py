"""Turn fields of the JSON a ``provisiond … --json`` command prints into shell variables.

Python standard library only. Reads one JSON object on stdin and prints an ``export`` line per
``NAME=field`` argument, quoted for the shell, for ``eval``::

    eval "$(provisiond init --json | python3 examples/json_env.py ID_SCOPE=idScope CA=caCertificate)"
    eval "$(provisiond partner create Acme --json | python3 examples/json_env.py P=partnerId TOKEN=token)"

A field that is missing fails with a message on stderr and exit status 1, so ``eval`` sets nothing.
``jq -r`` does the same job where jq is installed.
"""

from __future__ import annotations

import json
import shlex
import sys

__all__ = ["exports"]


def exports(document: dict[str, object], pairs: list[str]) -> list[str]:
    """``export NAME=value`` lines for ``NAME=field`` pairs naming top-level fields of ``document``."""
    lines = []
    for pair in pairs:
        name, sep, field = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"{pair!r} is not NAME=field")
        if field not in document:
            raise KeyError(f"no field {field!r} in {sorted(document)}")
        lines.append(f"export {name}={shlex.quote(str(document[field]))}")
    return lines


def main() -> int:
    """Read the JSON object on stdin, print the exports; exit 1 (printing nothing on stdout) on a miss."""
    try:
        document = json.load(sys.stdin)
        if not isinstance(document, dict):
            raise ValueError("stdin is not a JSON object")
        lines = exports(document, sys.argv[1:])
    except (ValueError, KeyError) as exc:
        print(f"json_env.py: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
