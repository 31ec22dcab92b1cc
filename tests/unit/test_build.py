"""`make build` finds a Python 3.13 wherever it is installed, and says what to do when there is none."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vidrelay import build


def _interpreter(path: Path, *, prints: str, exit_code: int = 0) -> Path:
    """A stand-in for an interpreter: answers the version question as a real one (or a broken shim) would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{prints}'\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_pyenv_shim_that_fails_is_passed_over_for_pyenvs_own_313(tmp_path: Path) -> None:
    # Given a python3.13 shim on PATH that fails (pyenv has another version selected) and pyenv's 3.13 install
    shims = tmp_path / "shims"
    _interpreter(shims / "python3.13", prints="pyenv: python3.13: command not found", exit_code=127)
    pyenv = tmp_path / "pyenv"
    real = _interpreter(pyenv / "versions" / "3.13.0" / "bin" / "python3.13", prints="3 13")
    # When the build looks for an interpreter, then it takes the real one
    found = build.find_python(build.candidates(path_env=str(shims), pyenv=pyenv, home=tmp_path / "home", common=()))
    assert found == real


def test_a_python313_elsewhere_is_found_in_uv_or_common_places(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uv = _interpreter(home / ".local/share/uv/python/cpython-3.13.1-linux-x86_64-gnu/bin/python3.13", prints="3 13")
    assert build.find_python(build.candidates(path_env="", pyenv=None, home=home, common=())) == uv
    usr = _interpreter(tmp_path / "usr-local-bin" / "python3.13", prints="3 13")
    empty_home = tmp_path / "nobody"
    common = [str(tmp_path / "usr-local-bin")]
    assert build.find_python(build.candidates(path_env="", pyenv=None, home=empty_home, common=common)) == usr


def test_a_python313_name_on_another_version_is_not_taken(tmp_path: Path) -> None:
    liar = _interpreter(tmp_path / "bin" / "python3.13", prints="3 12")
    assert build.find_python([liar]) is None


def test_without_any_313_the_build_says_how_to_get_one_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main([], search=[]) == 1
    message = capsys.readouterr().err
    assert message.startswith("make build: no Python 3.13 found (looked on PATH, in ")
    assert "`pyenv install 3.13`" in message and "--use-container" in message
    assert message.count("\n") == 1  # one line
