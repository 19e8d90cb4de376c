"""The speed-versus-optimality comparison, as a file: the ``ray submit`` target.

The Ray cluster launcher copies only this one file to the head node and runs it there,
so it holds no logic: it calls :func:`ald_tune.cli.compare.main` of the installed
package::

    python ald_tune/run.py                                  # digits, this machine
    python ald_tune/run.py --space search_spaces/mnist.yaml --preset quick
    ray submit cluster.yaml ald_tune/run.py -- --space search_spaces/mnist.yaml
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # pragma: no cover - script start-up
    # Run as a file, Python puts this folder first on sys.path, where the subpackages
    # config/, data/... would shadow top-level packages; the installed package is wanted.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    from ald_tune.cli.compare import main

    sys.exit(main())
