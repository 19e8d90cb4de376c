"""`make results`: the digits section of docs/results.md, generated from a run.

After `make demo`, the newest complete comparison in `runs/mlflow.db` (experiment
`ald-tune-digits`) is rebuilt from MLflow, exactly as `ald-tune report` prints it, and put
between the two markers in docs/results.md; the rest of the page (the MNIST and
FashionMNIST measurements, taken by hand earlier, with their dates) is left as it is. A
test checks that every line the README quotes from the demo is in this page, so the
README, the page and the run cannot drift apart.

    python benchmarks/results_page.py [--tracking-uri URI] [--experiment E] [--page FILE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- make results: digits (generated; edit benchmarks/results_page.py, not here) -->"
END = "<!-- end of make results -->"


def section(uri: str, experiment: str, today: str) -> str:
    """The generated section: how it was made, then what `ald-tune report` prints."""
    from ald_tune.report.comparison import render
    from ald_tune.report.mlflow_rebuild import comparison_from_mlflow
    from ald_tune.tracking.store import check_tracking

    check_tracking(uri, create=False)
    comp = comparison_from_mlflow(uri, experiment)
    return "\n".join(
        [
            BEGIN,
            "",
            f"`make demo` (`python ald_tune/run.py --space search_spaces/digits.yaml`), then "
            f"`make results` ({today}): the comparison `{comp.compare}` as `ald-tune report "
            f"--experiment {experiment}` prints it from MLflow, every rule's report, the rules "
            "side by side and the recommended n_z.",
            "",
            "```markdown",
            render(comp).strip(),
            "```",
            "",
            END,
        ]
    )


def replace_section(page: str, new: str) -> str:
    """``page`` with the text between the markers (markers included) replaced by ``new``.

    Raises:
        SystemExit: a page without both markers, in order.
    """
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"the page lacks the markers {BEGIN!r} ... {END!r}: add them once")
    return page[:start] + new + page[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tracking-uri", default="sqlite:///" + os.path.join(ROOT, "runs", "mlflow.db"))
    p.add_argument("--experiment", default="ald-tune-digits")
    p.add_argument("--page", default=os.path.join(ROOT, "docs", "results.md"))
    args = p.parse_args(argv)
    today = datetime.date.today().isoformat()
    with open(args.page, encoding="utf-8") as fh:
        page = fh.read()
    page = replace_section(page, section(args.tracking_uri, args.experiment, today))
    with open(args.page, "w", encoding="utf-8") as fh:
        fh.write(page)
    print(f"wrote the digits section of {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
