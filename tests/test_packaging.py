"""What the installed package carries: its license, the bundled data's licenses, and type information."""

from __future__ import annotations

import configparser
import hashlib
import re

import pytest

from tests.conftest import REPO

APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"  # apache.org LICENSE-2.0.txt
DATA_SOURCES = sorted([*REPO.glob("sim/workload/traces/*/SOURCE.md"), *REPO.glob("sim/facility/data/*/SOURCE.md"),
                       *REPO.glob("benchmarks/data/*/SOURCE.md")])


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config


def test_license_is_the_full_apache_2_text():
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256
    assert _setup_cfg()["metadata"]["license"] == "Apache-2.0"


@pytest.mark.parametrize("source", DATA_SOURCES, ids=lambda p: p.parent.name)
def test_notice_names_each_bundled_data_set_and_its_license(source):
    spdx_id = r"[A-Za-z]+(?:-[A-Za-z0-9]+)*(?:\.\d+)*"  # MIT, Apache-2.0, CC-BY-4.0
    (license_name,) = set(re.findall(rf"^ *- License: ({spdx_id})", source.read_text(), re.M))
    notice = (REPO / "NOTICE").read_text()
    entry = re.search(rf"^- {re.escape(source.parent.name)}/:.*?(?=^- |\Z)", notice, re.M | re.S)
    assert entry, f"NOTICE has no entry for {source.parent.name}/"
    assert f"License: {license_name}" in entry.group(0)


def test_package_data_ships_sources_and_type_marker():
    config = _setup_cfg()
    assert set(config["metadata"]["license_files"].split()) == {"LICENSE", "NOTICE"}
    assert config["options"]["python_requires"] == ">=3.11"
    package_data = {key: [p.strip() for p in value.split(",")] for key, value in config["options.package_data"].items()}
    shipped = {path for package, patterns in package_data.items() for pattern in patterns
               for path in (REPO / package.replace(".", "/")).glob(pattern)}
    assert REPO / "sim" / "py.typed" in shipped
    assert {p for p in DATA_SOURCES if "sim" in p.parts} <= shipped


def test_version_has_one_source():
    import sim

    assert _setup_cfg()["metadata"]["version"] == "attr: sim.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", sim.__version__)
