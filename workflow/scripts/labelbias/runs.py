"""Runs: the grid of models the config asks for, beyond one model per scenario.

A run is one density model: a scenario, a bias rate (the dose-response axis) and a
replicate (the seeds axis). The scenario's own run keeps the scenario's name and
the seeds it always had, so switching the axes on adds jobs and reruns none.
Other runs are named ``{scenario}@rate{rate}`` and ``...@seed{k}``; ``@`` never
appears in a scenario name (the schema forbids it), so names cannot collide.

The same grammar names subgroup classifiers: ``{attribute}``, ``{attribute}@{perturbation}``
and ``...@seed{k}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RATE_MARK = "@rate"
SEED_MARK = "@seed"


@dataclass(frozen=True)
class Run:
    name: str
    scenario: str
    rate: float | None  # the bias rate of this run; None for a clean scenario
    replicate: int  # 0 is the scenario's own seed
    base_rate: bool  # True when the rate is the scenario's own


def _rate_text(rate: float) -> str:
    return f"{rate:g}"


def run_name(scenario: str, rate: float | None = None, replicate: int = 0) -> str:
    """``scenario`` for its own rate and seed; ``scenario@rate0.1``, ``scenario@seed2``, ``scenario@rate0.1@seed2``."""
    name = scenario if rate is None else f"{scenario}{RATE_MARK}{_rate_text(rate)}"
    return name if replicate == 0 else f"{name}{SEED_MARK}{replicate}"


def scenario_rate(config: dict[str, Any], scenario: str) -> float | None:
    """The bias rate a scenario has by itself (None for a clean scenario)."""
    spec = config["scenarios"][scenario] or {}
    return float(spec.get("rate", config["bias"]["rate"])) if spec.get("attribute") else None


def dose_scenarios(config: dict[str, Any]) -> list[str]:
    """Bias scenarios on the dose-response axis (all bias scenarios unless the config names some)."""
    dose = config["dose_response"]
    if not dose["enabled"]:
        return []
    biased = [name for name in config["scenarios"] if scenario_rate(config, name) is not None]
    return [name for name in biased if not dose["scenarios"] or name in dose["scenarios"]]


def plan_runs(config: dict[str, Any]) -> dict[str, Run]:
    """Every run, scenario by scenario: its own rate first, then the dose-response rates, each for every seed."""
    replicates = int(config["replicates"]["seeds"])
    dosed = set(dose_scenarios(config))
    runs: dict[str, Run] = {}
    for scenario in config["scenarios"]:
        own = scenario_rate(config, scenario)
        rates: list[float | None] = [own]
        if scenario in dosed:
            rates += [float(r) for r in config["dose_response"]["rates"] if own is None or abs(float(r) - own) > 1e-12]
        for rate in rates:
            for replicate in range(replicates):
                is_own = rate == own
                name = run_name(scenario, None if is_own else rate, replicate)
                runs[name] = Run(name, scenario, rate, replicate, is_own)
    return runs


def replicate_seed_key(stage: str, replicate: int) -> str:
    """The key a replicate's seed is derived from; replicate 0 keeps the stage's own key."""
    return stage if replicate == 0 else f"{stage}{SEED_MARK}{replicate}"


def classifier_runs(attributes: list[str], perturbations: list[str], replicates: int) -> dict[str, tuple[str, str, int]]:
    """Subgroup-classifier run name -> (attribute, perturbation or "", replicate)."""
    runs: dict[str, tuple[str, str, int]] = {}
    for attribute in attributes:
        for perturbation in ["", *perturbations]:
            for replicate in range(replicates):
                base = attribute if not perturbation else f"{attribute}@{perturbation}"
                runs[base if replicate == 0 else f"{base}{SEED_MARK}{replicate}"] = (attribute, perturbation, replicate)
    return runs
