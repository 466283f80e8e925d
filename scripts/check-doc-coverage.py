#!/usr/bin/env python3
"""Lists the public symbols of a module that carry no doc comment of their own.

Usage: check-doc-coverage.py SYMBOLGRAPH_DIR MODULE [MODULE...]

Reads MODULE.symbols.json (and MODULE@OTHER.symbols.json, extensions of
other modules' types) from SYMBOLGRAPH_DIR/MODULE, or from SYMBOLGRAPH_DIR
itself when it has no such subfolder, as `swift package
dump-symbol-graph` writes them. A symbol counts as documented only when its
doc comment is written at its own declaration: a comment inherited from a
protocol requirement or a superclass (the symbol graph copies those in,
e.g. `description`'s "A textual representation of this instance" from the
standard library) does not count, and neither does none at all. Members the
compiler synthesizes (`hashValue`, `!=`, inherited class members) have no
source location of their own and are skipped: nobody can document them.

Prints one line per undocumented symbol, `file:line: kind path`, sorted by
file and line, and exits 1 if there is any; exits 0 and prints a count
otherwise.
"""
import json
import os
import sys
from urllib.parse import unquote, urlparse


def path_of(uri):
    return unquote(urlparse(uri).path) if uri else ""


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    directory, modules = sys.argv[1], sys.argv[2:]
    root = os.getcwd() + os.sep
    missing = []
    checked = 0
    for module in modules:
        folder = os.path.join(directory, module)
        if not os.path.isdir(folder):
            folder = directory
        files = [f for f in os.listdir(folder)
                 if f == f"{module}.symbols.json" or f.startswith(f"{module}@")]
        if f"{module}.symbols.json" not in files:
            print(f"error: no symbol graph for module {module} in {folder}", file=sys.stderr)
            return 2
        for name in sorted(files):
            with open(os.path.join(folder, name)) as f:
                graph = json.load(f)
            for symbol in graph["symbols"]:
                if symbol.get("accessLevel") not in ("public", "open"):
                    continue
                location = symbol.get("location")
                if not location:
                    continue  # synthesized: no declaration to document
                checked += 1
                file = path_of(location.get("uri"))
                doc = symbol.get("docComment")
                # Written here: the comment's file is the declaration's (a
                # compiler that records no file for it records no module
                # either, unless the comment was inherited).
                if doc and doc.get("uri"):
                    here = path_of(doc["uri"]) == file
                else:
                    here = bool(doc) and "module" not in doc
                own = here and any(line.get("text", "").strip() for line in doc.get("lines", []))
                if own:
                    continue
                line = location.get("position", {}).get("line", 0) + 1
                kind = symbol["kind"].get("displayName", symbol["kind"]["identifier"]).lower()
                path = ".".join(symbol["pathComponents"])
                shown = file[len(root):] if file.startswith(root) else file
                missing.append((shown, line, f"{shown}:{line}: {kind} {module}.{path}"))
    if missing:
        print(f"error: {len(missing)} public symbol(s) without a doc comment of their own:", file=sys.stderr)
        for _, _, text in sorted(set(missing)):
            print(f"  {text}", file=sys.stderr)
        return 1
    print(f"doc coverage: all {checked} public symbols of {', '.join(modules)} documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
