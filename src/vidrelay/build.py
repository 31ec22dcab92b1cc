"""`make build`: `sam build` with a Python 3.13 wherever one is installed.

The template's functions and layer are built for the Lambda runtime python3.13 (BuildMethod python3.13), and
`sam build` insists on a `python3.13` on PATH that really is 3.13 ("Binary validation failed" otherwise), even
though the project itself runs on 3.11+. So this looks on PATH, in pyenv's and uv's installs and in the usual
system places, checks each candidate by running it (a pyenv shim for a version not selected fails), and runs
`sam build` with the one found first on PATH under that name; when there is none it says how to get one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

WANTED = (3, 13)
NAME = "python3.13"
COMMON_PLACES = (
    "/usr/local/bin",
    "/opt/homebrew/bin",
    "/usr/bin",
    "/opt/python/3.13*/bin",
    "/Library/Frameworks/Python.framework/Versions/3.13/bin",
)
NONE_FOUND = (
    "make build: no Python 3.13 found (looked on PATH, in {pyenv}, in uv's pythons and in {common}). "
    "sam build needs one to build the functions and the layer for the python3.13 Lambda runtime. Install one "
    "(`pyenv install 3.13`, `uv python install 3.13`, `brew install python@3.13` or your package manager's "
    "python3.13) and run `make build` again, or build inside Docker with `.venv/bin/sam build --use-container`."
)


def pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    done = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=10, check=False)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def _glob(pattern: str) -> list[Path]:
    """Expands one `*` pattern of an absolute path, newest version names first."""
    path = Path(pattern)
    anchor = Path(path.anchor)
    return sorted(anchor.glob(str(path.relative_to(anchor))), reverse=True) if "*" in pattern else [path]


def candidates(
    *, path_env: str, pyenv: Path | None, home: Path, common: Iterable[str] = COMMON_PLACES
) -> Iterator[Path]:
    for folder in path_env.split(os.pathsep):
        if folder:
            yield Path(folder) / NAME
    for root in dict.fromkeys(r for r in (pyenv, home / ".pyenv") if r is not None):
        yield from _glob(f"{root}/versions/3.13*/bin/{NAME}")
    yield from _glob(f"{home}/.local/share/uv/python/cpython-3.13*/bin/{NAME}")
    for place in common:
        for found in _glob(place):
            yield found / NAME


def version_of(executable: Path) -> tuple[int, int] | None:
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        return None
    try:
        done = subprocess.run(
            [str(executable), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    numbers = done.stdout.split()
    if done.returncode != 0 or len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        return None
    return int(numbers[0]), int(numbers[1])


def find_python(executables: Iterable[Path]) -> Path | None:
    seen: set[Path] = set()
    for executable in executables:
        if executable in seen:
            continue
        seen.add(executable)
        if version_of(executable) == WANTED:
            return executable
    return None


def main(argv: Sequence[str] = (), *, search: Iterable[Path] | None = None) -> int:
    root = pyenv_root()
    found = find_python(
        search if search is not None else candidates(path_env=os.environ.get("PATH", ""), pyenv=root, home=Path.home())
    )
    if found is None:
        print(
            NONE_FOUND.format(pyenv=f"{root or '~/.pyenv'}/versions", common=", ".join(COMMON_PLACES)),
            file=sys.stderr,
        )
        return 1
    sam = Path(sys.executable).with_name("sam")
    with tempfile.TemporaryDirectory(prefix="vidrelay-build-") as shim:
        # Under the name sam looks for, first on PATH: whatever the interpreter's own file is called.
        (Path(shim) / NAME).symlink_to(found)
        path = os.pathsep.join([shim, str(sam.parent), os.environ.get("PATH", "")])
        print(f"make build: sam build with {found}", flush=True)
        return subprocess.run([str(sam), "build", *argv], env={**os.environ, "PATH": path}, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
