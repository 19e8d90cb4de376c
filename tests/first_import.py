"""The first-import check of tests/test_package.py: one fresh interpreter forks a child per
module from a "zygote" that ran only the third-party imports the module runs anyway."""

from __future__ import annotations

import json
import subprocess
import sys

#: The script of the first-import check's "zygote" (run in a fresh interpreter; it never
#: imports ald_tune itself). argv[1]: JSON [[preload, module], ...]; preload lists the
#: third-party import statements to run before forking, in the order of a trie shared by
#: the modules. Each module is imported in its own forked child; the script prints JSON
#: {module: traceback} of the failures.
ZYGOTE = r"""
import json, os, sys, traceback

def check(module):  # in a forked child: import the module first, report, never return
    error = None
    try:
        early = sorted(m for m in sys.modules if m == "ald_tune" or m.startswith("ald_tune."))
        assert not early, f"ald_tune modules loaded before the check: {early}"
        __import__(module)
    except BaseException:
        error = traceback.format_exc()[-1500:]
    # every child reports, a pass too: one that dies without a word is a failure
    os.write(OUT, json.dumps({module: error}).encode() + b"\n")
    os._exit(0 if error is None else 1)

def zygote(loaded, items):  # in a child: import one more package, then fork below it
    try:
        exec(loaded[-1], {})
    except BaseException:
        error = "preload: " + traceback.format_exc()[-1500:]
        for _, m in items:
            os.write(OUT, json.dumps({m: error}).encode() + b"\n")
        os._exit(1)
    node(loaded, items)
    os._exit(0)

def node(loaded, items):
    jobs = [(check, (m,)) for p, m in items if len(p) == len(loaded)]
    below = {}
    for p, m in items:
        if len(p) > len(loaded):
            below.setdefault(p[len(loaded)], []).append((p, m))
    jobs += [(zygote, (loaded + [pkg], sub)) for pkg, sub in below.items()]
    running = set()
    for fn, args in jobs:
        while len(running) >= 2:
            running.discard(os.wait()[0])
        pid = os.fork()
        if pid == 0:
            fn(*args)
        running.add(pid)
    while running:
        running.discard(os.wait()[0])

read, OUT = os.pipe()
os.set_inheritable(OUT, True)
if os.fork() == 0:
    os.close(read)
    node([], json.loads(sys.argv[1]))
    os._exit(0)
os.close(OUT)
with os.fdopen(read) as fh:
    lines = fh.read().splitlines()
os.wait()
results = {}
for line in lines:
    results.update(json.loads(line))
print(json.dumps(results))
"""


def first_import_failures(plan: dict[str, set[str]], cwd: str) -> dict[str, str]:
    """Import each module of ``plan`` first, each in its own process: a fresh interpreter
    imports nothing but the third-party packages the plan names (a module's own packages),
    then forks; each child imports its module. Returns {module: traceback} of those that fail.

    This is the check of one fresh interpreter per module, at a fraction of its cost (the
    import of torch, ray, mlflow is paid once per branch of a trie, not once per module),
    and it hides nothing that check would see: a child starts with no ald_tune module
    loaded (it checks), so every import cycle or missing import among the package's own
    modules shows as it would in a fresh interpreter; a name is bound per module, so a
    module that forgets ``import numpy`` fails here too, preloaded or not; and the
    statements run before the fork are copies of those the module's own import runs in
    any case (its body's third-party imports and those of the ald_tune modules it
    imports at its top, :func:`imported_anyway`), which leave the same ``sys.modules``
    whoever runs them: only their order may differ.
    """
    order = {p: -sum(p in s for s in plan.values()) for s in plan.values() for p in s}
    # the statements most modules share first: the trie's branches share their imports
    items = [[sorted(s, key=lambda p: (order[p], p)), m] for m, s in sorted(plan.items())]
    out = subprocess.run(
        [sys.executable, "-c", ZYGOTE, json.dumps(items)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip(), out.stdout[-2000:] + out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    silent = {m: "no result: its process died before reporting" for m in plan if m not in results}
    return {**{m: e for m, e in results.items() if e is not None}, **silent}
