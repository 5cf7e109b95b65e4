"""Build hook: compiles the Swift core and installs it as ``waitress._native``.

``swift build -c release`` builds the dynamic library with the Swift runtime
linked statically (so the installed module needs no Swift toolchain) and
CPython's symbols left undefined (resolved from the interpreter that imports
it; libpython is never linked). Each Python version gets its own SwiftPM
scratch directory because the clang module cache is not keyed by the include
path (DESIGN.md §6).
"""
import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class SwiftBuildExt(build_ext):
    def build_extension(self, ext):
        swift = shutil.which("swift")
        if swift is None:
            raise RuntimeError("building waitress needs the Swift toolchain ('swift' on PATH)")
        version = "py%d%d" % sys.version_info[:2]
        scratch = os.path.join(ROOT, ".build-" + version)
        env = dict(os.environ)
        env["WAITRESS_PYTHON_INCLUDE"] = sysconfig.get_path("include")
        command = [
            swift, "build", "-c", "release",
            "--package-path", ROOT,
            "--scratch-path", scratch,
            "--product", "WaitressNative",
            "-Xswiftc", "-static-stdlib",
            # Also for SwiftNIO: its dynamic exclusivity checks cost ~2k instructions
            # per request (callgrind).
            "-Xswiftc", "-enforce-exclusivity=unchecked",
        ]
        self.announce("running " + " ".join(command), level=2)
        subprocess.run(command, check=True, env=env, cwd=ROOT)
        built = os.path.join(scratch, "release", "libWaitressNative.so")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)
        strip = shutil.which("strip")
        if strip:
            subprocess.run([strip, "--strip-debug", target], check=True)


setup(
    ext_modules=[Extension("waitress._native", sources=[])],
    cmdclass={"build_ext": SwiftBuildExt},
)
