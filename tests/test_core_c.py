"""Builds the C unit tests of csrc/core (tests/c/) and runs each binary.

Built three times: with ASan/UBSan, with TSan (the cross-thread queue, the
doorbell and the scheduler are concurrent code), and optimized without
sanitizers ("none"), where the scheduler's stress test runs at full size. A binary exiting 77 means io_uring is
unavailable on this machine, which is reported as a skip with that reason.
"""

import fcntl
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = sorted(p.stem for p in (ROOT / "tests" / "c").glob("test_*.c"))
SANITIZERS = ["address,undefined", "thread", "none"]


def _build(sanitize: str) -> pathlib.Path:
    build = ROOT / "build" / f"ctest-{sanitize.replace(',', '-')}"
    cmake = shutil.which("cmake")
    assert cmake, "cmake is required to build the C unit tests"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build.mkdir(parents=True, exist_ok=True)
    # Test runs in other shells (another Python version, say) share build/.
    with open(build.parent / f"{build.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _configure_and_build(cmake, generator, build, sanitize)
    return build


def _configure_and_build(cmake, generator, build, sanitize):
    subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), *generator,
         "-DRINGLOOP_BUILD_MODULE=OFF", "-DRINGLOOP_BUILD_CTESTS=ON",
         "-DRINGLOOP_WERROR=ON",
         f"-DRINGLOOP_SANITIZE={'' if sanitize == 'none' else sanitize}",
         f"-DCMAKE_BUILD_TYPE={'RelWithDebInfo' if sanitize == 'none' else 'Debug'}"],
        check=True, capture_output=True, text=True,
    )
    subprocess.run([cmake, "--build", str(build)], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module", params=SANITIZERS)
def build_dir(request):
    try:
        return _build(request.param)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"building the C tests failed:\n{e.stdout}\n{e.stderr}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", TESTS)
def test_c(build_dir, name):
    # The binaries carry their own sanitizer runtime: drop a preloaded one
    # (scripts/run-asan.sh) and its options.
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env.update(TSAN_OPTIONS="halt_on_error=1", ASAN_OPTIONS="detect_leaks=1")
    proc = subprocess.run([str(build_dir / name)], capture_output=True,
                          text=True, timeout=240, env=env)
    if proc.returncode == 77:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout, proc.stdout
