"""Summarize a sweep: `python scripts/summarize.py outputs/multirun/<stamp>`.

Prints each job's overrides, status and final metrics (best optimized metric first) and writes
summary.csv and summary.md into the sweep dir.
"""

import argparse

from handgrad.errors import exit_for_user_error
from handgrad.run.sweep_summary import summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a dir made by `python scripts/train.py -m ...`")
    args = parser.parse_args()
    try:
        print(summarize(args.sweep_dir))
    except Exception as exc:
        exit_for_user_error(exc)


if __name__ == "__main__":
    main()
