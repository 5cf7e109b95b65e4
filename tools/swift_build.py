"""Builds the Swift core for one Python and copies it to where Python imports it.

setup.py's build hook calls ``build()``; ``make install`` runs this file first
(``python tools/swift_build.py``) so that a first build shows swift build's
progress lines, which pip hides, and pip's own build is then a no-op link.

What the build does and why (docs/packaging.md):

- ``swift build -c release`` of the dynamic library, the Swift runtime linked
  statically (``-static-stdlib``), CPython's symbols left undefined (libpython
  is never linked), one SwiftPM scratch folder per Python version (the clang
  module cache is not keyed by the include path).
- On x86_64 glibc Linux, ``tools/glibc_compat.c`` is linked in so that every
  glibc/libstdc++ symbol version needed is at most glibc 2.28's / GCC 8's
  (manylinux_2_28), and libpthread.so.0 / libdl.so.2 are recorded as needed
  (glibc before 2.34 keeps the old pthread and dl symbols there).
- ``tools/exports.map`` exports only ``PyInit__native`` and the copy is
  stripped with ``--strip-unneeded``: 16.8 MB became 10.5 MB (measured with
  Swift 6.3.1 on Debian 12).

Without ``swift`` on PATH it raises ``SwiftMissing`` with a short message.
"""
import glob
import os
import platform
import shutil
import subprocess
import sys
import sysconfig

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)

SWIFT_NEEDED = (
    "building waitress from source needs the Swift 6 toolchain ('swift' on PATH, "
    "Swift 6.0 or later); get it from https://www.swift.org/install/ -- or install "
    "a prebuilt wheel, which needs no Swift"
)


class SwiftMissing(Exception):
    """No usable Swift toolchain; the message says which and where to get it."""


def find_swift():
    swift = shutil.which("swift")
    if swift is None:
        raise SwiftMissing(SWIFT_NEEDED)
    try:
        out = subprocess.run(
            [swift, "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SwiftMissing(f"{swift} --version failed ({exc}); " + SWIFT_NEEDED)
    major = swift_major_version(out)
    if major is None or major < 6:
        first = out.strip().splitlines()[0] if out.strip() else "no version"
        raise SwiftMissing(f"found {swift} ({first}); " + SWIFT_NEEDED)
    return swift


def swift_major_version(text):
    """The major version in ``swift --version`` output, or None."""
    marker = "Swift version "
    at = text.find(marker)
    if at < 0:
        return None
    digits = ""
    for ch in text[at + len(marker):]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def glibc_compat():
    """True where tools/glibc_compat.c applies: x86_64 Linux with glibc."""
    if os.environ.get("WAITRESS_GLIBC_COMPAT", "1") == "0":
        return False
    return (
        sys.platform.startswith("linux")
        and platform.machine() == "x86_64"
        and platform.libc_ver()[0] == "glibc"
    )


def compat_object(swift, scratch):
    """Compile glibc_compat.c (with the toolchain's clang) unless up to date."""
    source = os.path.join(TOOLS, "glibc_compat.c")
    target = os.path.join(scratch, "glibc_compat.o")
    if (
        os.path.exists(target)
        and os.path.getmtime(target) >= os.path.getmtime(source)
    ):
        return target
    clang = os.path.join(os.path.dirname(os.path.realpath(swift)), "clang")
    if not os.path.exists(clang):
        clang = shutil.which("cc") or "cc"
    os.makedirs(scratch, exist_ok=True)
    subprocess.run(
        [clang, "-c", "-O2", "-fPIC", "-Wall", "-Werror", "-o", target, source],
        check=True,
    )
    return target


def scratch_path():
    return os.path.join(ROOT, ".build-py%d%d" % sys.version_info[:2])


def swift_build_command(swift, scratch):
    command = [
        swift, "build", "-c", "release",
        "--package-path", ROOT,
        "--scratch-path", scratch,
        "--product", "WaitressNative",
        "-Xswiftc", "-static-stdlib",
        # Also for SwiftNIO: its dynamic exclusivity checks cost ~2k
        # instructions per request (callgrind).
        "-Xswiftc", "-enforce-exclusivity=unchecked",
    ]
    if sys.platform.startswith("linux"):
        command += ["-Xlinker", "--version-script=" + os.path.join(TOOLS, "exports.map")]
    if glibc_compat():
        command += [
            "-Xlinker", compat_object(swift, scratch),
            "-Xlinker", "--no-as-needed",
            "-Xlinker", "-l:libpthread.so.0",
            "-Xlinker", "-l:libdl.so.2",
        ]
    return command


def force_relink_if_link_inputs_changed(command, scratch):
    """SwiftPM does not see files passed with -Xlinker (the compat object, the
    export list): when they or the command change, drop the built library so
    that swift build links it again."""
    import hashlib

    digest = hashlib.sha256("\0".join(command).encode())
    for path in (os.path.join(TOOLS, "exports.map"), os.path.join(scratch, "glibc_compat.o")):
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(f.read())
    stamp = os.path.join(scratch, "link-inputs.sha256")
    previous = open(stamp).read() if os.path.exists(stamp) else None
    if previous != digest.hexdigest():
        for built in glob.glob(os.path.join(scratch, "*", "release", "libWaitressNative.so")):
            os.remove(built)
    return stamp, digest.hexdigest()


def build(target=None, announce=print):
    """Build the core for the running Python; copy it to ``target`` if given.

    Returns the path of the built (unstripped) library.
    """
    swift = find_swift()
    scratch = scratch_path()
    env = dict(os.environ)
    env["WAITRESS_PYTHON_INCLUDE"] = sysconfig.get_path("include")
    command = swift_build_command(swift, scratch)
    stamp, digest = force_relink_if_link_inputs_changed(command, scratch)
    announce("running " + " ".join(command))
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    with open(stamp, "w") as f:
        f.write(digest)
    built = os.path.join(scratch, "release", "libWaitressNative.so")
    if target is not None:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copyfile(built, target)
        strip = shutil.which("strip")
        if strip:
            subprocess.run([strip, "--strip-unneeded", target], check=True)
    return built


def main():
    if not os.path.exists(scratch_path()):
        print(
            "Building the Swift core (swift build -c release, with SwiftNIO) for "
            "Python %d.%d into %s: the first build takes a few minutes (2-9 on 2 "
            "cores); later ones take seconds." % (sys.version_info[:2] + (scratch_path(),)),
            flush=True,
        )
    try:
        build()
    except SwiftMissing as exc:
        print("error: " + str(exc), file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
