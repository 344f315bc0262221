"""Imports on demand: the package, `--version` and `status` load no framework, no pandas, SciPy or matplotlib."""

import json
import pathlib
import subprocess
import sys

import pytest

RELEASE_0_3 = pathlib.Path(__file__).resolve().parent / "data" / "release-0.3.0" / "tiny"
HEAVY = ("jax", "keras", "tensorflow", "tf_keras", "keras_tuner", "sklearn", "pandas", "scipy", "matplotlib")

PROBE = f"HEAVY = {HEAVY!r}\n" + """
import contextlib, io, json, sys
from widthvsprune import cli

out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        code = cli.main(sys.argv[1:]) or 0
except SystemExit as stop:  # argparse's --version
    code = stop.code or 0
print(json.dumps({"code": code, "out": out.getvalue(), "loaded": [m for m in HEAVY if m in sys.modules]}))
"""


def loaded(*args, cwd=None):
    result = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True,
                            timeout=300, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_package_loads_none_of_the_heavy_libraries():
    code = f"import sys, widthvsprune; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("args", [("--version",), ("status", RELEASE_0_3)])
def test_version_and_status_load_none_of_the_heavy_libraries(args):
    found = loaded(*args)
    assert found["code"] == 0 and found["loaded"] == []
    assert "0 missing" in found["out"] if args[0] == "status" else found["out"].startswith("widthvsprune 0.")


def test_the_comparison_utilities_load_on_first_use():
    import widthvsprune
    from widthvsprune.analysis import compare, summary, tables

    assert widthvsprune.compare is compare.compare and widthvsprune.load_results is tables.load_results
    assert widthvsprune.compare_studies is summary.compare_studies
    assert {"compare", "compare_studies", "load_results"} <= set(dir(widthvsprune))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        widthvsprune.nothing  # noqa: B018
