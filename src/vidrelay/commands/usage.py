"""`vidrelay usage`: the estimated spend and job count per UTC day and model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidrelay.commands.videos import api_parent, client_for, json_option


def register(sub: Any) -> None:
    from vidrelay.commands.parsing import command

    usage = command(sub, "usage", "estimated spend and jobs per UTC day and model", parents=[api_parent()])
    usage.add_argument("--from", dest="first_day", metavar="YYYY-MM-DD", help="first day (default: this month's 1st)")
    usage.add_argument("--to", dest="last_day", metavar="YYYY-MM-DD", help="last day, included (default: today)")
    json_option(usage)
    usage.set_defaults(run=run_usage)


def run_usage(args: argparse.Namespace) -> int:
    from vidrelay.console import show, table, usd

    report = client_for(args).usage(first_day=args.first_day, last_day=args.last_day)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    grid = table("DAY", "MODEL", "JOBS", "ESTIMATED")
    for row in report["data"]:
        grid.add_row(row["day"], row["model"], str(row["jobs"]), usd(row["estimated_usd"]))
    grid.add_section()
    grid.add_row("total", f"{report['from']} to {report['to']}", str(report["jobs"]), usd(report["total_usd"]))
    show(grid)
    return 0
