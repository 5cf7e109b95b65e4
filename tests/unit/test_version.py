"""The version: Waitress's, with a PEP 440 local label for this implementation."""
import subprocess
import sys
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

import waitress
from waitress import runner


def test_version_has_local_label_on_waitress_release():
    version = Version(waitress.__version__)
    assert version.public == "3.0.2"
    assert version.local is not None and version.local.startswith("swift.")
    assert str(version) == "3.0.2+swift.1"


def test_installed_distribution_reports_the_same_version():
    # The distribution keeps Waitress's name (PasteDeploy's egg:waitress#main).
    assert metadata.version("waitress") == waitress.__version__


def test_waitress_pins_are_still_satisfied():
    version = Version(waitress.__version__)
    assert version in SpecifierSet("==3.0.2")
    assert version in SpecifierSet(">=3.0,<4")
    assert version not in SpecifierSet("==3.0.1")
    # A pin on the local label itself is exact.
    assert version in SpecifierSet("==3.0.2+swift.1")
    assert version not in SpecifierSet("==3.0.2+swift.2")


def test_runner_version_flag(capsys):
    calls = []
    status = runner.run(["waitress-serve", "--version"], _serve=lambda *a, **k: calls.append(a))
    assert status == 0
    assert calls == []
    assert capsys.readouterr().out == "waitress-serve 3.0.2+swift.1\n"


def test_runner_version_flag_among_other_options(capsys):
    status = runner.run(["waitress-serve", "--port=1", "--version", "x:y"], _serve=None)
    assert status == 0
    assert capsys.readouterr().out == "waitress-serve 3.0.2+swift.1\n"


def test_version_after_double_dash_is_not_an_option(capsys):
    # After "--" it is an argument like any other: two arguments, one app only.
    status = runner.run(["waitress-serve", "--", "x:y", "--version"], _serve=None)
    assert status == 1
    assert "Specify one application only" in capsys.readouterr().err


def test_unknown_option_still_an_error(capsys):
    status = runner.run(["waitress-serve", "--versio"], _serve=None)
    assert status == 1
    assert "Error: option --versio not recognized" in capsys.readouterr().err


def test_console_script_prints_version():
    # The installed waitress-serve entry point, as a user runs it.
    exe = sys.executable.rsplit("/", 1)[0] + "/waitress-serve"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out == "waitress-serve 3.0.2+swift.1\n"
