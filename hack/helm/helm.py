#!/usr/bin/env python3
"""hack/helm/helm.py — the few `helm` commands the chart tests need, run by the real Helm engine.

No `helm` binary can be installed here, so this drives Helm 4's Go SDK through the Python
library helm-python-sdk (installed by hack/helm/venv.sh; run this file with that virtualenv's
python). Output follows the helm CLI so that results read the same:

    helm.py lint CHART [-f VALUES.yaml]... [--values-json JSON] [--namespace NS]
        `helm lint --strict`: prints every finding; exits 1 on any warning or error.
    helm.py template CHART [--name NAME] [--namespace NS] [-f ...] [--values-json ...]
                     [--include-crds] [--notes] [--kube-version V] [--api-versions GV/KIND]...
        `helm template`: a YAML stream with `# Source:` comments, files in name order, CRDs
        (from the chart's crds/ folder) first with --include-crds; --notes prints only NOTES.txt.
        --kube-version and --api-versions set .Capabilities as helm's flags of the same names
        do (the library's render() does not expose them; its native call takes them).
    helm.py validate CHART [-f ...] [--values-json ...]
        `values.schema.json` check alone; exits 1 with Helm's message on bad values.

Values: each -f file is YAML (or JSON); --values-json is applied last. Later sources win, maps
merge key by key, as with helm's -f/--set-json.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

try:
    import helm_python as helm
    from helm_python import _native
except ImportError:
    sys.exit(
        "error: the helm_python module is missing. Run this script with the python printed by "
        "hack/helm/venv.sh (it installs Helm into a cached virtualenv)."
    )

# `helm lint` severities (helm_python reports them as numbers).
INFO, WARNING, ERROR = 1, 2, 3
SEVERITY_NAMES = {0: "UNKNOWN", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merges maps as Helm merges several values sources (the override wins)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def user_values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in args.values or []:
        with open(path, encoding="utf-8") as f:
            values = merge(values, helm.values_from_yaml(f.read()) or {})
    if args.values_json:
        values = merge(values, json.loads(args.values_json))
    return values


def cmd_lint(args: argparse.Namespace) -> int:
    report = helm.lint(
        args.chart, user_values(args), strict=True, namespace=args.namespace
    )
    worst = 0
    for message in report.get("messages", []):
        severity = message.get("severity", 0)
        worst = max(worst, severity)
        name = SEVERITY_NAMES.get(severity, str(severity))
        print(f"[{name}] {message.get('path')}: {message.get('error')}")
    for error in report.get("errors", []):
        print(f"[ERROR] {error}")
        worst = ERROR
    if worst >= WARNING:
        print(f"Error: 1 chart(s) linted, 1 chart(s) failed ({args.chart})", file=sys.stderr)
        return 1
    print(f"1 chart(s) linted, 0 chart(s) failed ({args.chart})")
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    with helm.Chart.load(args.chart) as chart:
        options = {"name": args.name, "namespace": args.namespace, "is_install": True}
        if args.kube_version:
            options["kube_version"] = args.kube_version
        if args.api_versions:
            options["api_versions"] = args.api_versions
        rendered = json.loads(
            _native.call_string(
                "helm_render", chart._raw(), json.dumps(user_values(args)), json.dumps(options)
            )
        )
        notes = {k: v for k, v in rendered.items() if k.endswith("NOTES.txt")}
        if args.notes:
            sys.stdout.write("".join(notes.values()))
            return 0
        out = []
        if args.include_crds:
            for crd in sorted(chart.crds, key=lambda c: c["name"]):
                out.append(f"---\n# Source: {crd['name']}\n{crd['data'].rstrip()}\n")
        for path in sorted(rendered):
            body = rendered[path].strip()
            # Templates that render to nothing (disabled features) produce no document.
            if path in notes or path.rsplit("/", 1)[-1].startswith("_") or not body:
                continue
            out.append(f"---\n# Source: {path}\n{body}\n")
        sys.stdout.write("".join(out))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    with helm.Chart.load(args.chart) as chart:
        chart.validate_schema(user_values(args))
    print("values are valid")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name)
        p.add_argument("chart", help="chart directory")
        p.add_argument("-f", "--values", action="append", help="values file (YAML)")
        p.add_argument("--values-json", help="values as one JSON object, applied last")
        p.set_defaults(func=func)
        return p

    lint = command("lint", cmd_lint)
    lint.add_argument("--namespace", default="default")
    template = command("template", cmd_template)
    template.add_argument("--name", default="tfjob-operator", help="release name")
    template.add_argument("--namespace", default="default", help="release namespace")
    template.add_argument("--include-crds", action="store_true")
    template.add_argument("--notes", action="store_true", help="print only NOTES.txt")
    template.add_argument("--kube-version", help="Kubernetes version for .Capabilities")
    template.add_argument(
        "--api-versions", action="append", help="an API (group/version[/Kind]) the cluster has"
    )
    command("validate", cmd_validate)

    args = parser.parse_args()
    try:
        return args.func(args)
    except helm.HelmError as error:
        # Helm's own message, as the helm CLI prints it.
        print(f"Error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
