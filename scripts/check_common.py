"""What scripts/check-includes.py and scripts/check-format.py share: their command line and the end of
their self-tests."""

import argparse
import os


def parse_args(doc):
    """--root DIR (default: the repository above scripts/) and --self-test."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--self-test", action="store_true")
    return parser.parse_args()


def self_test_result(check, failures):
    """Prints each failure of check's self-test; the exit status."""
    for f in failures:
        print(f"{check} self-test: FAILED: {f}")
    return 1 if failures else 0
