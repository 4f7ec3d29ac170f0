# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Requirements parsing, OSV matching and the pip-audit report (offline)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from ansible_collections.prodready.deploy.plugins.module_utils._gate import deps
from ansible_collections.prodready.deploy.plugins.module_utils._gate.model import (
    FAIL,
    PASS,
    WARN,
    InputError,
    ReportError,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(("name", "normal"), [
    ("Flask", "flask"), ("typing_extensions", "typing-extensions"),
    ("zope.interface", "zope-interface"), ("Foo__Bar-.baz", "foo-bar-baz"),
])
def test_normalise_name(name, normal):
    assert deps.normalise_name(name) == normal


def test_parse_requirements_lines_includes_and_pins(tmp_path):
    (tmp_path / "constraints.txt").write_text("# constraints\nurllib3==1.26.5\n")
    (tmp_path / "requirements.txt").write_text(
        "# a comment\n"
        "Flask==2.2.0  # trailing comment\n"
        "\n"
        "requests[socks]==2.31.0 ; python_version >= '3.8' \\\n"
        "    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
        "click>=8\n"
        "-c constraints.txt\n"
        "--index-url https://pypi.example/simple\n"
        "Django===4.2.0\n"
        "numpy==1.*\n")
    pins = deps.parse_requirements(str(tmp_path / "requirements.txt"), str(tmp_path))
    got = [(p.name, p.version, p.file, p.line) for p in pins]
    assert got == [
        ("Flask", "2.2.0", "requirements.txt", 2),
        ("requests", "2.31.0", "requirements.txt", 4),
        ("click", None, "requirements.txt", 6),
        ("urllib3", "1.26.5", "constraints.txt", 2),
        ("Django", "4.2.0", "requirements.txt", 9),
        ("numpy", None, "requirements.txt", 10),
    ]


def test_parse_requirements_include_loop_and_missing(tmp_path):
    (tmp_path / "a.txt").write_text("-r b.txt\nsix==1.16.0\n")
    (tmp_path / "b.txt").write_text("-r a.txt\n")
    assert [p.name for p in deps.parse_requirements(str(tmp_path / "a.txt"), str(tmp_path))] \
        == ["six"]
    with pytest.raises(InputError, match=r"cannot read the requirements file .*nope.txt"):
        deps.parse_requirements(str(tmp_path / "nope.txt"), str(tmp_path))


# (version, events, affected, fixed)
RANGES = [
    ("1.0", [{"introduced": "0"}, {"fixed": "1.2"}], True, "1.2"),
    ("1.2", [{"introduced": "0"}, {"fixed": "1.2"}], False, None),
    ("0.9", [{"introduced": "1.0"}, {"fixed": "1.2"}], False, None),
    ("1.0", [{"introduced": "1.0"}, {"fixed": "1.2"}], True, "1.2"),
    ("2.0", [{"introduced": "1.0"}, {"last_affected": "2.0"}], True, None),
    ("2.0.1", [{"introduced": "1.0"}, {"last_affected": "2.0"}], False, None),
    # two affected windows in one range
    ("1.5", [{"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "1.4"}, {"fixed": "1.6"}],
     True, "1.6"),
    ("1.2", [{"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "1.4"}, {"fixed": "1.6"}],
     False, None),
    # events out of order are sorted; pre-releases compare as PEP 440 says
    ("2.0rc1", [{"fixed": "2.0"}, {"introduced": "0"}], True, "2.0"),
    ("10.0", [{"introduced": "9.0"}, {"fixed": "9.10"}], False, None),
    ("9.9", [{"introduced": "9.0"}, {"fixed": "9.10"}], True, "9.10"),
    # introduced only: every later version
    ("99", [{"introduced": "3.0"}], True, None),
    # an unparsable event is ignored
    ("1.0", [{"introduced": "0"}, {"fixed": "not a version"}], True, None),
]


@pytest.mark.parametrize(("version", "events", "affected", "fixed"), RANGES)
def test_range_match(version, events, affected, fixed):
    assert deps.range_match(Version(version), events) == (affected, fixed)


@pytest.mark.parametrize(("version", "expected"), [
    ("2.2.0", (True, "2.2.5")),      # in the versions list; fixed from the ranges
    ("2.2", (True, "2.2.5")),        # equal as PEP 440 versions
    ("2.3.0", (True, "2.3.2")),      # in the SEMVER range
    ("2.3.2", (False, None)),
    ("2.1.0", (False, None)),        # only the GIT range names it: ignored
])
def test_affected_by(version, expected):
    affected = {
        "package": {"ecosystem": "PyPI", "name": "flask"},
        "versions": ["2.2.0"],
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.2.0"},
                                                    {"fixed": "2.2.5"}]},
                   {"type": "SEMVER", "events": [{"introduced": "2.3.0"}, {"fixed": "2.3.2"}]},
                   {"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}],
    }
    assert deps.affected_by(version, affected) == expected


def _advisory(id_, name, events, **extra):
    return {"id": id_, "summary": f"test fixture advisory {id_}", "aliases": [f"CVE-0000-{id_}"],
            "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}], **extra}


def test_load_advisories_file_dir_zip_and_withdrawn(tmp_path):
    one = _advisory("T-1", "Foo_Bar", [{"introduced": "0"}, {"fixed": "2.0"}])
    gone = _advisory("T-2", "foo-bar", [{"introduced": "0"}], withdrawn="2026-01-01T00:00:00Z")
    npm = {"id": "T-3", "affected": [{"package": {"ecosystem": "npm", "name": "foo-bar"}}]}
    folder = tmp_path / "db" / "nested"
    folder.mkdir(parents=True)
    (folder / "T-1.json").write_text(json.dumps(one))
    (tmp_path / "db" / "T-2.json").write_text(json.dumps(gone))
    (tmp_path / "db" / "T-3.json").write_text(json.dumps(npm))
    (tmp_path / "db" / "README.md").write_text("not an advisory")
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("T-1.json", json.dumps(one))
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"vulns": [one, gone]}))
    for path in (tmp_path / "db", archive, batch):
        index = deps.load_advisories(str(path))
        assert list(index) == ["foo-bar"], path
        assert [a.id for a in index["foo-bar"]] == ["T-1"]
        assert index["foo-bar"][0].summary == "test fixture advisory T-1"


def test_load_advisories_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"the advisory file .*bad.json is not JSON"):
        deps.load_advisories(str(bad))
    with pytest.raises(InputError, match=r"cannot read the advisories .*missing"):
        deps.load_advisories(str(tmp_path / "missing"))


def test_match_and_gate_name_the_line_the_advisory_and_the_fix(tmp_path):
    (tmp_path / "requirements.txt").write_text("Foo.Bar==1.5\nsafe==1.0\nloose>=1\n")
    pins = deps.parse_requirements(str(tmp_path / "requirements.txt"), str(tmp_path))
    db = tmp_path / "osv.json"
    db.write_text(json.dumps([
        _advisory("T-1", "foo-bar", [{"introduced": "0"}, {"fixed": "2.0"}],
                  database_specific={"severity": "HIGH"}),
        _advisory("T-9", "safe", [{"introduced": "0"}, {"fixed": "1.0"}]),
    ]))
    vulns = deps.match(pins, deps.load_advisories(str(db)))
    assert [(v.pin.name, v.id, v.fixed) for v in vulns] == [("Foo.Bar", "T-1", "2.0")]
    gate = deps.gate(pins, vulns, [], ["OSV"])
    assert gate.status == FAIL
    assert gate.message.startswith("1 vulnerable pin(s) among 2 pinned requirements: "
                                   "requirements.txt:1 T-1")
    finding = gate.findings[0].as_dict()
    assert finding == {"file": "requirements.txt", "line": 1, "rule": "T-1", "severity": "high",
                       "message": "Foo.Bar==1.5 is affected by T-1 (CVE-0000-T-1); fixed in "
                                  "2.0: test fixture advisory T-1"}
    assert gate.findings[1].rule == "unpinned" and gate.findings[1].line == 3
    # accepted by alias: a warning, not a failure
    accepted = deps.gate(pins, vulns, ["CVE-0000-T-1"], ["OSV"])
    assert accepted.status == WARN
    assert "ignored" in accepted.findings[0].message


@pytest.mark.parametrize(("pins", "sources", "status"), [
    ([deps.Pin("a", "1", "r.txt", 1, "a==1")], ["OSV"], PASS),
    ([deps.Pin("a", "1", "r.txt", 1, "a==1")], [], WARN),
    ([deps.Pin("a", None, "r.txt", 1, "a")], ["OSV"], WARN),
])
def test_gate_without_vulnerabilities(pins, sources, status):
    assert deps.gate(pins, [], [], sources).status == status


def test_pip_audit_argv_is_accepted_by_pip_audit(tmp_path):
    """The argument list parses (pip-audit exits 2 on an unknown argument); a missing file
    stops it before it asks any service."""
    program = str(Path(sys.executable).parent / "pip-audit")
    argv = deps.pip_audit_argv(program, [str(tmp_path / "missing.txt")], "osv",
                               str(tmp_path / "out.json"))
    assert argv[1:] == ["--requirement", str(tmp_path / "missing.txt"), "--no-deps",
                        "--disable-pip", "--format", "json", "--output",
                        str(tmp_path / "out.json"), "--progress-spinner", "off",
                        "--vulnerability-service", "osv"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "invalid requirements input" in proc.stderr


def test_parse_pip_audit_fixture():
    """The fixture is pip-audit's own JSON formatter's output (see fixtures/README.md)."""
    pins = [deps.Pin("Flask", "2.2.0", "requirements.txt", 3, "Flask==2.2.0"),
            deps.Pin("Jinja2", "3.1.6", "requirements.txt", 4, "Jinja2==3.1.6")]
    vulns, skipped = deps.parse_pip_audit((FIXTURES / "pip-audit.json").read_text(), pins)
    assert [(v.pin.file, v.pin.line, v.id, v.aliases, v.fixed) for v in vulns] == [
        ("requirements.txt", 3, "GHSA-m2qf-hxjv-5gpq", ("CVE-2023-30861", "PYSEC-2023-62"),
         "2.2.5")]
    assert vulns[0].summary.startswith("Flask vulnerable to possible disclosure")
    assert [(f.file, f.rule) for f in skipped] == [("<pip-audit>", "pip-audit-skip")]
    gate = deps.gate(pins, vulns, [], ["pip-audit (pypi)"], skipped)
    assert gate.status == FAIL
    assert "requirements.txt:3 GHSA-m2qf-hxjv-5gpq" in gate.message


@pytest.mark.parametrize("text", ["", "[]", '{"deps": []}'])
def test_parse_pip_audit_errors(text):
    with pytest.raises(ReportError, match="pip-audit's JSON report"):
        deps.parse_pip_audit(text, [])
