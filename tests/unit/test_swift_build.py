"""tools/swift_build.py: the checks that run before any Swift is built."""
import importlib.util
import os
import stat

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def swift_build():
    path = os.path.join(ROOT, "tools", "swift_build.py")
    spec = importlib.util.spec_from_file_location("waitress_swift_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_swift(tmp_path, output):
    exe = tmp_path / "swift"
    # printf is a shell builtin: PATH holds only this folder.
    exe.write_text("#!/bin/sh\nprintf '%%s\\n' '%s'\n" % output)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(tmp_path)


@pytest.mark.parametrize(
    "text, major",
    [
        ("Swift version 6.3.1 (swift-6.3.1-RELEASE)\nTarget: x86_64-unknown-linux-gnu", 6),
        ("Apple Swift version 5.10 (swiftlang-5.10.0.13)", 5),
        ("Swift version 10.0-dev (LLVM abc)", 10),
        ("swift-driver version: 1.90.11.1 Swift version 6.0.3 (swift-6.0.3-RELEASE)", 6),
        ("no version here", None),
        ("Swift version x", None),
    ],
)
def test_swift_major_version(swift_build, text, major):
    assert swift_build.swift_major_version(text) == major


def test_no_swift_on_path_names_version_and_url(swift_build, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(swift_build.SwiftMissing) as info:
        swift_build.find_swift()
    message = str(info.value)
    assert "Swift 6" in message
    assert "https://www.swift.org/install/" in message
    assert "\n" not in message


def test_swift_5_is_refused(swift_build, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", fake_swift(tmp_path, "Swift version 5.10.1 (swift-5.10.1-RELEASE)"))
    with pytest.raises(swift_build.SwiftMissing) as info:
        swift_build.find_swift()
    assert "Swift version 5.10.1" in str(info.value)
    assert "Swift 6" in str(info.value)


def test_swift_6_is_accepted(swift_build, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", fake_swift(tmp_path, "Swift version 6.0.3 (swift-6.0.3-RELEASE)"))
    assert swift_build.find_swift() == str(tmp_path / "swift")


def test_build_command_links_compat_and_exports_only_on_linux_x86_64(swift_build, monkeypatch):
    monkeypatch.setattr(swift_build, "compat_object", lambda swift, scratch: "/s/glibc_compat.o")
    monkeypatch.setattr(swift_build, "glibc_compat", lambda: True)
    command = swift_build.swift_build_command("swift", "/s")
    assert command[:3] == ["swift", "build", "-c"]
    assert "-static-stdlib" in command
    assert "/s/glibc_compat.o" in command
    assert "-l:libpthread.so.0" in command
    monkeypatch.setattr(swift_build, "glibc_compat", lambda: False)
    assert "/s/glibc_compat.o" not in swift_build.swift_build_command("swift", "/s")


def test_glibc_compat_can_be_switched_off(swift_build, monkeypatch):
    monkeypatch.setenv("WAITRESS_GLIBC_COMPAT", "0")
    assert swift_build.glibc_compat() is False
