# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release report as JSON, JUnit XML, Markdown and the plain-text table the callback
prints; all from the document ``steps.build_report`` makes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # nosec B405 - builds XML, parses none
from collections.abc import Mapping
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._report.steps import count_text

TABLE_DETAIL_WIDTH = 160
# Characters XML 1.0 cannot hold at all, even escaped (ANSI colour codes in a module's
# message, for one); ElementTree would write them and the file would not parse.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def format_duration(step: Mapping[str, Any]) -> str:
    """``0.4s``, ``2m 03.0s``, ``1h 02m``; ``-`` for a step that never started."""
    if step.get("started") is None:
        return "-"
    seconds = float(step.get("duration") or 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {seconds % 60:04.1f}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def one_line(text: Any, width: int | None = None) -> str:
    text = " ".join(str(text).split())
    if width is not None and len(text) > width:
        text = text[:width - 3] + "..."
    return text


def detail(step: Mapping[str, Any]) -> str:
    """The step's detail for the tables, marked when a rescue caught the failure."""
    text = step.get("detail") or ""
    return f"[rescued] {text}" if step.get("rescued") else text


def title(report: Mapping[str, Any]) -> str:
    names = " ".join(str(report[k]) for k in ("app", "release_id") if report.get(k))
    return f"Release report{' ' + names if names else ''}: {report['outcome'].upper()}"


def summary_line(report: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in report["summary"].items())
    return (f"Started {report['started']}, finished {report['finished']} "
            f"({report['duration']:.1f}s): {counts}.")


def render_json(report: Mapping[str, Any]) -> bytes:
    return (json.dumps(report, indent=2) + "\n").encode()


def _xml_text(text: Any) -> str:
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def render_junit(report: Mapping[str, Any]) -> bytes:
    """JUnit XML (what Jenkins, GitLab and GitHub read): one testsuite, one testcase per step;
    ``fail`` is a <failure>, ``skipped`` a <skipped>, a warning goes to <system-out>."""
    steps = report["steps"]
    suite = " ".join(["release", *(str(report[k]) for k in ("app", "release_id")
                                   if report.get(k))])
    attrs = {"name": _xml_text(suite), "tests": str(len(steps)),
             "failures": str(report["summary"]["fail"]), "errors": "0",
             "skipped": str(report["summary"]["skipped"]), "time": f"{report['duration']:.3f}"}
    root = ET.Element("testsuites", attrs)
    # JUnit's timestamp has no zone; the report's times are UTC.
    testsuite = ET.SubElement(root, "testsuite", {
        **attrs, "timestamp": (report["started"] or "").rstrip("Z")})
    properties = ET.SubElement(testsuite, "properties")
    for key in ("release_id", "app", "outcome"):
        if report.get(key) is not None:
            ET.SubElement(properties, "property", {"name": key,
                                                   "value": _xml_text(report[key])})
    classname = "release." + ("".join(c if c.isalnum() else "_" for c in str(report["app"]))
                              if report.get("app") else "checklist")
    for step in steps:
        case = ET.SubElement(testsuite, "testcase", {
            "classname": classname, "name": _xml_text(step["name"]),
            "time": f"{step['duration']:.3f}"})
        text = _xml_text(step["detail"])
        if step["status"] == "fail":
            failure = ET.SubElement(case, "failure", {
                "message": one_line(text), "type": "rescued" if step["rescued"] else "failed"})
            failure.text = text
        elif step["status"] == "skipped":
            ET.SubElement(case, "skipped", {"message": one_line(text)})
        out = ET.SubElement(case, "system-out")
        out.text = f"{step['status'].upper()}: {text}"
        if step["status"] != "pass":  # a pass's detail is already the count
            out.text += f"\n{count_text(step['tasks'], step['changed'])}"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def markdown_cell(text: Any) -> str:
    """One table cell: one line, HTML inert, pipes escaped."""
    text = one_line(text)
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, entity)
    return text.replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(report: Mapping[str, Any]) -> bytes:
    lines = [f"# {markdown_cell(title(report))}", "", summary_line(report), "",
             "| Step | Status | Duration | Detail |", "| --- | --- | --- | --- |"]
    for step in report["steps"]:
        lines.append(f"| {markdown_cell(step['name'])} | {step['status'].upper()} | "
                     f"{format_duration(step)} | {markdown_cell(detail(step))} |")
    return ("\n".join(lines) + "\n").encode()


def render_table(report: Mapping[str, Any], width: int = TABLE_DETAIL_WIDTH) -> list[str]:
    """Fixed-width lines ``step | STATUS | duration | detail`` under the title."""
    steps = report["steps"]
    durations = [format_duration(s) for s in steps]
    name_width = max([len("STEP")] + [len(s["name"]) for s in steps])
    status_width = max(len(s) for s in ("STATUS", "SKIPPED"))
    duration_width = max([len("DURATION")] + [len(d) for d in durations])
    rule = f"{'-' * name_width}-+-{'-' * status_width}-+-{'-' * duration_width}-+-{'-' * 6}"
    lines = [title(report), summary_line(report),
             f"{'STEP':<{name_width}} | {'STATUS':<{status_width}} | "
             f"{'DURATION':>{duration_width}} | DETAIL", rule]
    for step, duration in zip(steps, durations, strict=True):
        lines.append(f"{one_line(step['name']):<{name_width}} | "
                     f"{step['status'].upper():<{status_width}} | "
                     f"{duration:>{duration_width}} | {one_line(detail(step), width)}")
    lines.append(rule)
    return lines
