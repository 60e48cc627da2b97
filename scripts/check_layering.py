#!/usr/bin/env python3
"""Checks ugate's layering: which headers each part of the tree may include.

Usage: check_layering.py [--root DIR] [--plant 'PATH:LINE']...

The layers (docs/ARCHITECTURE.md, "Layering (checked by CTest)"):
- include/ugate (the contract) includes only include/ugate.
- core (src/core) includes only include/ugate and src/core.
- a library (LIBRARIES) includes include/ugate, src/core, itself, and the libraries its CMake target
  depends on directly (ugate_module(<dir> DEPS ...) and target_link_libraries(ugate_<dir> ...) in
  CMakeLists.txt: the table of dependencies is read from there, not written here).
- a module (any other src/<dir>) includes include/ugate, itself, the libraries its CMake target
  depends on, and of src/core only the headers CORE_DEBT grants it; never another module.
- the daemon (src/ugated) wires everything together and may include any of them; nothing includes it.
tests/, fuzz/ and bench/ are not checked. Includes are mapped as the compiler resolves them under
`-Iinclude -Isrc`: "dir/file.h" is src/dir/file.h, <ugate/x.h> is include/ugate/x.h, a quoted name
beside the including file is that file; anything else is a system or third-party header. Every
#include line counts, also one inside a comment or #if 0.

--plant 'src/sni/x.cc:#include "mesh/mesh_worker.h"' appends that line to the file (a new one, or
after the real file's lines) for this run only: the tests prove that a violation is caught.

Prints one line per violation, `path:line: includes "X": <rule>`, and exits 1; otherwise one summary
line and exit 0. Exit 2: bad arguments or an unreadable CMakeLists.txt. Reads the tree, writes nothing.
"""

import argparse
import os
import posixpath
import re
import sys

CORE = "core"
# Libraries modules may use. src/http also holds the http-connect front door (a listener kind).
LIBRARIES = ("auth", "http")
DAEMON = "ugated"
CONTRACT = "include/ugate"

# Debt: src/core headers a module may still include (module -> header names) while that part of
# the contract has not moved into include/ugate. Paid off: the table is empty, and may only stay so
# or shrink again after a temporary entry. A module not listed may include no src/core header at
# all, and an entry the module no longer uses is reported, so that it is removed.
CORE_DEBT = {}  # empty: every module includes only include/ugate, its libraries and its own folder

SOURCE_SUFFIXES = (".h", ".hh", ".hpp", ".inc", ".ipp", ".c", ".cc", ".cpp", ".cxx")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
CMAKE_CALL_RE = re.compile(r"\b(ugate_module|target_link_libraries)\s*\(([^)]*)\)")


def role(folder):
    """The layer of src/<folder>: core, library, daemon or module (the default)."""
    if folder == CORE:
        return "core"
    if folder in LIBRARIES:
        return "library"
    if folder == DAEMON:
        return "daemon"
    return "module"


def read_cmake_deps(root):
    """{dir: set of dirs} from ugate_module()/target_link_libraries(ugate_<dir> ...) calls."""
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        text = "\n".join(line.split("#", 1)[0] for line in f)
    deps = {}
    for call, args in CMAKE_CALL_RE.findall(text):
        words = args.split()
        if not words:
            continue
        if call == "ugate_module":
            target, rest = words[0], words[1:]
        elif words[0].startswith("ugate_"):
            target, rest = words[0][len("ugate_"):], words[1:]
        else:
            continue
        found = deps.setdefault(target, set())
        found.update(w[len("ugate_"):] for w in rest if w.startswith("ugate_"))
    return deps


def list_sources(root):
    """Tree-relative paths of every source file under include/ and src/."""
    out = []
    for top in ("include", "src"):
        for base, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(SOURCE_SUFFIXES):
                    out.append(os.path.relpath(os.path.join(base, name), root).replace(os.sep, "/"))
    return out


def place(path):
    """(kind, folder) of a tree path: ("contract", None), (role, src folder) or (None, None)."""
    parts = path.split("/")
    if parts[0] == "include" and len(parts) > 2 and parts[1] == "ugate":
        return "contract", None
    if parts[0] == "src" and len(parts) > 2:
        return role(parts[1]), parts[1]
    return None, None


def resolve(includer, delim, name, exists, is_src_dir):
    """The tree path an include names, or None for a system or third-party header."""
    if delim == '"':
        beside = posixpath.normpath(posixpath.join(posixpath.dirname(includer), name))
        if not beside.startswith("../") and exists(beside):
            return beside
    for top in ("include", "src"):
        candidate = posixpath.normpath(posixpath.join(top, name))
        if candidate.startswith(top + "/") and exists(candidate):
            return candidate
    first = name.split("/", 1)[0]
    if "/" in name and first == "ugate":
        return "include/" + name
    if delim == '"' and "/" in name and is_src_dir(first):
        return posixpath.normpath("src/" + name)
    return None


def rule_broken(src_kind, src_dir, target, deps):
    """Why src (kind, folder) may not include target, or None when it may."""
    kind, folder = place(target)
    if kind is None:
        return "headers live in include/ugate or src/<dir>/; this one is in neither"
    if src_kind == "contract":
        if kind == "contract":
            return None
        return "include/ugate may include only include/ugate and system headers"
    if kind == "contract" or folder == src_dir:
        return None
    if kind == "daemon":
        return "nothing includes src/ugated (the daemon wires the layers; it is no layer)"
    if src_kind == "daemon":
        return None
    if src_kind == "core":
        return "src/core may include only include/ugate and src/core; src/%s is a %s" % (folder, kind)
    if kind == "module":
        return "src/%s (a %s) may not include a module's headers (src/%s)" % (src_dir, src_kind, folder)
    if kind == "library":
        if folder in deps.get(src_dir, ()):
            return None
        return ("src/%s may include library src/%s only if ugate_%s depends on ugate_%s in "
                "CMakeLists.txt" % (src_dir, folder, src_dir, folder))
    # kind == "core"
    if src_kind == "library":
        return None
    header = target[len("src/core/"):]
    if header in CORE_DEBT.get(src_dir, ()):
        return None
    return ("module src/%s may include src/core only as CORE_DEBT[\"%s\"] in "
            "scripts/check_layering.py allows, and it does not list %s (the contract belongs in "
            "include/ugate; the table only shrinks)" % (src_dir, src_dir, header))


def script_line(pattern):
    """The line number in this script of the first line matching pattern (for messages)."""
    with open(os.path.abspath(__file__), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if re.search(pattern, line):
                return number
    return 0


def parse_plants(specs):
    """{path: [lines]} from --plant 'PATH:LINE' arguments."""
    plants = {}
    for spec in specs:
        path, sep, line = spec.partition(":")
        path = posixpath.normpath(path)
        if not sep or path == ".." or path.startswith(("../", "/")):
            raise ValueError("--plant wants 'PATH:LINE' with PATH inside the tree, got %r" % spec)
        plants.setdefault(path, []).append(line)
    return plants


def check(root, plants):
    """Returns (violations, files checked, includes checked)."""
    deps = read_cmake_deps(root)
    files = list_sources(root)
    known = set(files)
    for path in plants:
        if path not in known and path.startswith(("include/", "src/")):  # elsewhere: exempt
            files.append(path)
            known.add(path)
    exists = lambda p: p in known or os.path.isfile(os.path.join(root, p))
    is_src_dir = lambda d: os.path.isdir(os.path.join(root, "src", d)) or any(
        p.startswith("src/%s/" % d) for p in plants)
    violations = []
    used_debt = set()
    includes = 0
    for path in files:
        src_kind, src_dir = place(path)
        if (path.startswith("include/") and src_kind != "contract") or (
                path.startswith("src/") and src_kind is None):
            violations.append("%s:1: not in a layer: sources live in include/ugate or src/<dir>/"
                              % path)
            continue
        lines = []
        if os.path.isfile(os.path.join(root, path)):
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        lines += plants.get(path, [])
        for number, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            includes += 1
            delim, name = m.groups()
            target = resolve(path, delim, name, exists, is_src_dir)
            if target is None:
                continue
            why = rule_broken(src_kind, src_dir, target, deps)
            if why:
                violations.append('%s:%d: includes "%s": %s' % (path, number, name, why))
            elif src_kind == "module" and target.startswith("src/core/"):
                used_debt.add((src_dir, target[len("src/core/"):]))
    for module in sorted(CORE_DEBT):
        line = script_line(r'^\s*"%s": \(' % re.escape(module))
        if role(module) != "module":
            violations.append("scripts/check_layering.py:%d: CORE_DEBT lists src/%s, which is a %s, "
                              "not a module" % (line, module, role(module)))
            continue
        for header in CORE_DEBT[module]:
            if (module, header) not in used_debt:
                violations.append(
                    'scripts/check_layering.py:%d: CORE_DEBT grants "core/%s" to src/%s, which no '
                    "longer includes it: remove it (the table only shrinks)" % (line, header, module))
    for folder in (CORE,) + LIBRARIES:
        if folder not in deps:
            violations.append("CMakeLists.txt:1: no ugate_module(%s ...): the layer table in "
                              "scripts/check_layering.py names src/%s" % (folder, folder))
    return violations, len(files), includes


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."),
                        help="the source tree (default: this script's ..)")
    parser.add_argument("--plant", action="append", default=[], metavar="PATH:LINE",
                        help="append LINE to PATH (which need not exist) for this run only")
    args = parser.parse_args(argv)
    try:
        plants = parse_plants(args.plant)
        violations, files, includes = check(os.path.abspath(args.root), plants)
    except (OSError, ValueError) as e:
        print("check_layering: %s" % e, file=sys.stderr)
        return 2
    for v in violations:
        print(v)
    if violations:
        print("check_layering: %d violation(s) in %d files, %d includes" %
              (len(violations), files, includes), file=sys.stderr)
        return 1
    print("check_layering: %d files, %d includes checked, layering holds" % (files, includes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
