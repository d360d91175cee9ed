"""Runs deploy/argocd/health.lua under reference Lua 5.4 (lupa) over the health fixtures.

Usage: python lua54_check.py SCRIPT.lua FIXTURE.yaml...

Argo CD embeds gopher-lua (Lua 5.1) and opens only the package, base and table libraries;
hack/argocd runs the script that way. This second run proves the script is portable Lua and
uses no library Argo CD withholds: string, math, os, io, debug, coroutine and utf8 are
removed (including the string metatable, so ("x"):find(...) fails too).

Exit status: 0 all match, 1 a mismatch, 2 an unreadable fixture or a script error.
"""

import sys
from pathlib import Path

import yaml
from lupa import lua54

VALID = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

SANDBOX = """
debug.setmetatable("", nil)
string, math, os, io, debug, coroutine, utf8 = nil, nil, nil, nil, nil, nil, nil
"""


def run(script: str, obj: dict) -> tuple[str, str]:
    lua = lua54.LuaRuntime(unpack_returned_tuples=True)
    lua.execute(SANDBOX)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    if lupa_type(lua, result) != "table":
        raise RuntimeError(f"the script returned {lupa_type(lua, result)}, not a table")
    status, message = result["status"], result["message"]
    if status not in VALID:
        raise RuntimeError(f"invalid health status {status!r}")
    return status, message if isinstance(message, str) else ""


def lupa_type(lua, value) -> str:
    return "nil" if value is None else lua.globals().type(value)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: lua54_check.py SCRIPT.lua FIXTURE.yaml...", file=sys.stderr)
        return 2
    script = Path(argv[1]).read_text()
    failed = broken = 0
    fixtures = argv[2:]
    for path in fixtures:
        name = Path(path).name
        try:
            fixture = yaml.safe_load(Path(path).read_text())
            want = fixture["expect"]["argocd"]
            want_status, want_message = want["status"], want["message"]
            obj = fixture["object"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
            print(f"ERROR {name}: {e!r}")
            broken += 1
            continue
        try:
            status, message = run(script, obj)
        except Exception as e:  # noqa: BLE001 - Lua errors surface as lupa exceptions
            print(f"ERROR {name}: health.lua: {e}")
            broken += 1
            continue
        if (status, message) != (want_status, want_message):
            print(f"FAIL  {name}: lua5.4 {status} {message!r}, expected {want_status} {want_message!r}")
            failed += 1
            continue
        print(f"ok    {name}: lua5.4 {status} {message!r}")
    print(f"lua5.4: {len(fixtures) - failed - broken} passed, {failed + broken} failed")
    return 2 if broken else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
