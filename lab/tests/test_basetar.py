"""The stand-in base.txz: FreeBSD's shape where haelk reads it (no lab needed)."""
import io
import os
import subprocess
import tarfile
import tempfile

import pytest

from haelklab import basetar
from haelklab.freebsd import misc

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone


def test_freebsd_version_names_its_userland_on_a_line_haelk_reads_and_prints_it():
    with tarfile.open(fileobj=io.BytesIO(basetar.build()), mode="r:xz") as tar:
        member = tar.getmember("./bin/freebsd-version")
        script = tar.extractfile(member).read().decode()
    assert member.mode == 0o755
    assert f'\nUSERLAND_VERSION="{misc.RELEASE}"\n' in script
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "freebsd-version")
        with open(path, "w") as f:
            f.write(script)
        out = subprocess.run(["sh", path], capture_output=True, text=True, check=True)
    assert out.stdout == misc.RELEASE + "\n"
