"""Runs: the grid of models the config asks for, beyond one model per scenario.

A run is one density model: a scenario, a bias rate (the dose-response axis) and a
replicate (the seeds axis). The scenario's own run keeps the scenario's name and
the seeds it always had, so switching the axes on adds jobs and reruns none.
Other runs are named ``{scenario}@rate{rate}`` and ``...@seed{k}``; ``@`` never
appears in a scenario name (the schema forbids it), so names cannot collide.
A remedy run retrains a bias scenario's run on remedied labels (``labelbias.detection.remedy``):
``{scenario}@{remedy}{budget}`` for the audits, ``{scenario}@{remedy}`` for the others,
then ``@seed{k}`` as every run.

The same grammar names subgroup classifiers: ``{attribute}``, ``{attribute}@{perturbation}``
and ``...@seed{k}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .detection.remedy import REMEDIES

RATE_MARK = "@rate"
SEED_MARK = "@seed"


@dataclass(frozen=True)
class Run:
    name: str
    scenario: str
    rate: float | None  # the bias rate of this run; None for a clean scenario
    replicate: int  # 0 is the scenario's own seed
    base_rate: bool  # True when the rate is the scenario's own
    remedy: str | None = None  # the remedy its labels went through; None for a scenario's labels
    budget: float | None = None  # share of patients audited, for the remedies that audit

    @property
    def source_run(self) -> str:
        """The run whose labels and detection this remedy run starts from (itself when not a remedy)."""
        return run_name(self.scenario, None, self.replicate)


def _rate_text(rate: float) -> str:
    return f"{rate:g}"


def run_name(scenario: str, rate: float | None = None, replicate: int = 0) -> str:
    """``scenario`` for its own rate and seed; ``scenario@rate0.1``, ``scenario@seed2``, ``scenario@rate0.1@seed2``."""
    name = scenario if rate is None else f"{scenario}{RATE_MARK}{_rate_text(rate)}"
    return name if replicate == 0 else f"{name}{SEED_MARK}{replicate}"


def remedy_run_name(scenario: str, remedy: str, budget: float | None, replicate: int) -> str:
    """``FUJI@relabel_suspect0.05``, ``FUJI@drop_flagged@seed1``."""
    name = f"{scenario}@{remedy}{'' if budget is None else _rate_text(budget)}"
    return name if replicate == 0 else f"{name}{SEED_MARK}{replicate}"


def remedy_grid(config: dict[str, Any]) -> list[tuple[str, float | None]]:
    """(remedy, budget) of every remedy run of a scenario, budgets in the config's order."""
    grid: list[tuple[str, float | None]] = []
    for remedy in config["remedies"]["methods"]:
        budgets = [float(b) for b in config["remedies"]["budgets"]] if REMEDIES[remedy].budgeted else [None]
        grid += [(remedy, budget) for budget in budgets]
    return grid


def scenario_rate(config: dict[str, Any], scenario: str) -> float | None:
    """The bias rate a scenario has by itself (None for a clean scenario)."""
    spec = config["scenarios"][scenario] or {}
    return float(spec.get("rate", config["bias"]["rate"])) if spec.get("attribute") else None


def chosen_bias_scenarios(config: dict[str, Any], section: str) -> list[str]:
    """The bias scenarios a grid section (``dose_response``, ``remedies``) covers when enabled:
    every bias scenario unless its ``scenarios`` names some."""
    chosen = config[section]
    if not chosen["enabled"]:
        return []
    biased = [name for name in config["scenarios"] if scenario_rate(config, name) is not None]
    return [name for name in biased if not chosen["scenarios"] or name in chosen["scenarios"]]


def dose_scenarios(config: dict[str, Any]) -> list[str]:
    """Bias scenarios on the dose-response axis."""
    return chosen_bias_scenarios(config, "dose_response")


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
    # Remedies retrain a scenario's own runs, those of the first remedies.seeds replicates (0: all).
    replicates_remedied = min(replicates, int(config["remedies"]["seeds"]) or replicates)
    for scenario in chosen_bias_scenarios(config, "remedies"):
        for remedy, budget in remedy_grid(config):
            for replicate in range(replicates_remedied):
                name = remedy_run_name(scenario, remedy, budget, replicate)
                runs[name] = Run(name, scenario, scenario_rate(config, scenario), replicate, True, remedy, budget)
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
