"""Build hook: compiles the Swift core and installs it as ``waitress._native``.

The build itself is tools/swift_build.py (shared with ``make install``, which
runs it first to show swift build's progress); see its docstring and
docs/packaging.md. Without Swift this stops with a short message naming the Swift
version needed and where to get it.
"""
import importlib.util
import os

from setuptools import Extension, setup
from setuptools.command.build import build
from setuptools.command.build_ext import build_ext
from setuptools.errors import PlatformError

ROOT = os.path.dirname(os.path.abspath(__file__))


def load_swift_build():
    # Loaded by path: a "tools" package on sys.path could be anyone's.
    path = os.path.join(ROOT, "tools", "swift_build.py")
    spec = importlib.util.spec_from_file_location("waitress_swift_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CheckSwiftFirst(build):
    # Before build_py's lines, so that the message ends a short output.
    def run(self):
        swift_build = load_swift_build()
        try:
            swift_build.find_swift()
        except swift_build.SwiftMissing as exc:
            raise PlatformError(str(exc)) from None
        super().run()


class SwiftBuildExt(build_ext):
    def build_extension(self, ext):
        swift_build = load_swift_build()
        try:
            swift_build.build(
                self.get_ext_fullpath(ext.name),
                announce=lambda text: self.announce(text, level=2),
            )
        except swift_build.SwiftMissing as exc:
            # setuptools prints a PlatformError as one "error: ..." line.
            raise PlatformError(str(exc)) from None


setup(
    ext_modules=[Extension("waitress._native", sources=[])],
    cmdclass={"build": CheckSwiftFirst, "build_ext": SwiftBuildExt},
)
