#!/usr/bin/env python3
"""layering.PlantedViolationIsCaught: scripts/check_layering.py catches every kind of violation.

Each case plants one #include (check_layering.py --plant) into the real tree and compares the output
with the unplanted run: a violation must add exactly its one line (file, line, include, rule) and
exit 1; an allowed include must change nothing. So the test holds whether or not today's tree is
clean. One more case grants a module a src/core header it does not include: the stale grant must
be reported (the table only shrinks). stdlib only, no build needed.
"""

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "check_layering.py")

sys.dont_write_bytecode = True  # read the tree, leave nothing in it (no scripts/__pycache__)
spec = importlib.util.spec_from_file_location("check_layering", SCRIPT)
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)


def run(*args):
    """(exit status, stdout lines) of the checker, in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = checker.main(list(args))
    return status, out.getvalue().splitlines()


def lines_of(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return len(f.read().splitlines())


class PlantedViolationIsCaught(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base_status, cls.base = run()
        cls.base_violations = [l for l in cls.base if not l.startswith("check_layering:")]

    def assertCaught(self, plant, expected):
        status, out = run("--plant", plant)
        self.assertEqual(status, 1, "\n".join(out))
        added = [l for l in out if l not in self.base]
        self.assertEqual(added, [expected])
        self.assertEqual(len(out), len(self.base_violations) + 1)

    def assertAllowed(self, plant):
        status, out = run("--plant", plant)
        self.assertEqual(status, self.base_status)
        self.assertEqual([l for l in out if not l.startswith("check_layering:")],
                         self.base_violations)

    def test_process_exit_status_and_output(self):
        # The real command line, as CI runs it: exit 1 and the violation on stdout.
        proc = subprocess.run(
            [sys.executable, SCRIPT, "--root", ROOT,
             "--plant", 'src/sni/x.cc:#include "mesh/mesh_worker.h"'],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn('src/sni/x.cc:1: includes "mesh/mesh_worker.h": src/sni (a module) may not '
                      "include a module's headers (src/mesh)", proc.stdout.splitlines())

    def test_module_includes_another_module(self):
        self.assertCaught('src/sni/x.cc:#include "mesh/mesh_worker.h"',
                          'src/sni/x.cc:1: includes "mesh/mesh_worker.h": src/sni (a module) may '
                          "not include a module's headers (src/mesh)")

    def test_line_number_after_a_real_files_lines(self):
        n = lines_of("src/sni/sni_config.cc") + 1
        self.assertCaught('src/sni/sni_config.cc:#include "socks/socks_codec.h"',
                          'src/sni/sni_config.cc:%d: includes "socks/socks_codec.h": src/sni (a '
                          "module) may not include a module's headers (src/socks)" % n)

    def test_relative_and_angle_spellings_are_resolved(self):
        self.assertCaught('src/sni/x.cc:#include "../mesh/mesh_worker.h"',
                          'src/sni/x.cc:1: includes "../mesh/mesh_worker.h": src/sni (a module) '
                          "may not include a module's headers (src/mesh)")
        self.assertCaught("src/udp/x.cc:  #  include <mesh/mesh_worker.h>",
                          'src/udp/x.cc:1: includes "mesh/mesh_worker.h": src/udp (a module) may '
                          "not include a module's headers (src/mesh)")

    def test_nothing_includes_the_daemon(self):
        rule = "nothing includes src/ugated (the daemon wires the layers; it is no layer)"
        self.assertCaught('src/mesh/x.cc:#include "ugated/daemon.h"',
                          'src/mesh/x.cc:1: includes "ugated/daemon.h": ' + rule)
        self.assertCaught('src/http/x.cc:#include "ugated/daemon.h"',
                          'src/http/x.cc:1: includes "ugated/daemon.h": ' + rule)

    def test_core_includes_no_library_and_no_module(self):
        self.assertCaught('src/core/x.cc:#include "http/h2_connection.h"',
                          'src/core/x.cc:1: includes "http/h2_connection.h": src/core may include '
                          "only include/ugate and src/core; src/http is a library")
        self.assertCaught('src/core/x.h:#include "udp/flow_table.h"',
                          'src/core/x.h:1: includes "udp/flow_table.h": src/core may include only '
                          "include/ugate and src/core; src/udp is a module")

    def test_contract_includes_only_the_contract(self):
        self.assertCaught('include/ugate/x.h:#include "core/worker.h"',
                          'include/ugate/x.h:1: includes "core/worker.h": include/ugate may include '
                          "only include/ugate and system headers")

    def test_library_uses_only_its_cmake_deps(self):
        self.assertCaught('src/auth/x.cc:#include "http/trace_context.h"',
                          'src/auth/x.cc:1: includes "http/trace_context.h": src/auth may include '
                          "library src/http only if ugate_auth depends on ugate_http in "
                          "CMakeLists.txt")
        self.assertCaught('src/http/x.cc:#include "mesh/node_table.h"',
                          'src/http/x.cc:1: includes "mesh/node_table.h": src/http (a library) may '
                          "not include a module's headers (src/mesh)")

    def test_module_uses_only_its_cmake_deps(self):
        # A new folder is a module with no CMake target yet: no library, no core header.
        self.assertCaught('src/newmod/x.cc:#include "http/h2_connection.h"',
                          'src/newmod/x.cc:1: includes "http/h2_connection.h": src/newmod may include '
                          "library src/http only if ugate_newmod depends on ugate_http in "
                          "CMakeLists.txt")

    def test_module_core_headers_only_from_the_debt_table(self):
        self.assertCaught('src/newmod/x.cc:#include "core/config.h"',
                          'src/newmod/x.cc:1: includes "core/config.h": module src/newmod may include '
                          'src/core only as CORE_DEBT["newmod"] in scripts/check_layering.py allows, '
                          "and it does not list config.h (the contract belongs in include/ugate; "
                          "the table only shrinks)")
        granted = set(checker.CORE_DEBT.get("sni", ()))
        header = next(h for h in ("worker.h", "proxy_session.h", "splicer.h") if h not in granted)
        self.assertCaught('src/sni/x.cc:#include "core/%s"' % header,
                          'src/sni/x.cc:1: includes "core/%s": module src/sni may include src/core '
                          'only as CORE_DEBT["sni"] in scripts/check_layering.py allows, and it '
                          "does not list %s (the contract belongs in include/ugate; the table only "
                          "shrinks)" % (header, header))

    def test_allowed_includes_change_nothing(self):
        self.assertAllowed("src/newmod/x.cc:#include <ugate/stream.h>")
        self.assertAllowed('src/newmod/x.cc:#include "newmod/newmod_module.h"')
        self.assertAllowed('src/mesh/x.cc:#include "http/h2_connection.h"')  # ugate_mesh -> ugate_http
        self.assertAllowed('src/http/x.cc:#include "core/config.h"')  # a library uses core
        self.assertAllowed('src/ugated/x.cc:#include "mesh/mesh_worker.h"')
        self.assertAllowed('src/sni/x.cc:#include <spdlog/spdlog.h>')
        self.assertAllowed('tests/unit/sni/x_test.cc:#include "mesh/mesh_worker.h"')  # exempt
        self.assertAllowed('fuzz/x_fuzz.cc:#include "ugated/daemon.h"')  # exempt

    def test_bad_plant_is_a_usage_error(self):
        self.assertEqual(run("--plant", "no-colon-here")[0], 2)

    def test_stale_debt_entry_is_reported(self):
        # A grant no module uses any more must be reported, so the table only shrinks. With
        # today's table empty, a grant is planted for this run (sni does not include worker.h).
        saved = checker.CORE_DEBT
        checker.CORE_DEBT = {"sni": ("worker.h",)}
        try:
            status, out = run()
        finally:
            checker.CORE_DEBT = saved
        self.assertEqual(status, 1)
        line = checker.script_line(r'^\s*"sni": \(')
        self.assertIn('scripts/check_layering.py:%d: CORE_DEBT grants "core/worker.h" to src/sni, which no '
                      "longer includes it: remove it (the table only shrinks)" % line, out)


if __name__ == "__main__":
    unittest.main()
