"""Logger and Metrics, created once and shared by every function (Powertools)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="vidrelay")
metrics = Metrics(namespace="vidrelay", service="vidrelay")
